// How long to wait before trying a target again. Pure (the randomness is passed in), so it is
// safe to import from workflows and easy to test; activities/grants.ts toActivityFailure
// hands the result to Temporal as the failure's `nextRetryDelay`.

export interface BackoffIntervals {
  /** Milliseconds before the second attempt. */
  initialInterval: number;
  /** Milliseconds the delay never exceeds. */
  maximumInterval: number;
}

/**
 * The capped exponential backoff after `failures` consecutive failures (1: the first):
 * initialInterval, doubled each time, never above maximumInterval.
 */
export function exponentialBackoffMs(failures: number, intervals: BackoffIntervals): number {
  const n = Math.max(1, Math.floor(failures));
  // 2^30 times any interval is past every cap: no overflow to Infinity on a long outage.
  return Math.min(intervals.maximumInterval, intervals.initialInterval * 2 ** Math.min(n - 1, 30));
}

/**
 * The delay before the attempt after `attempt` (1-based: the attempt that just failed).
 *
 * - The target said when to come back (429 / 503 `Retry-After`): exactly that.
 * - Otherwise "equal jitter": half of the capped exponential backoff, plus a random share of
 *   the other half. Workers that failed together (a target outage fails every grant at
 *   once) come back spread out instead of in lockstep, and none comes back sooner than half
 *   the backoff, which "full jitter" (anything from 0) would allow against a struggling target.
 *
 * `random` is a number in [0, 1) (Math.random() in an activity).
 */
export function retryDelayMs(attempt: number, intervals: BackoffIntervals, random: number, retryAfterMs?: number): number {
  if (retryAfterMs !== undefined && Number.isFinite(retryAfterMs) && retryAfterMs >= 0) return Math.max(1, Math.ceil(retryAfterMs));
  const backoff = exponentialBackoffMs(attempt, intervals);
  const share = Math.min(Math.max(random, 0), 1);
  return Math.max(1, Math.round(backoff / 2 + (backoff / 2) * share));
}
