// The delay before a target is tried again: what the target asked for (Retry-After), else the
// capped exponential backoff with equal jitter; and the Temporal failure each connector error
// becomes carries it (activities/grants.ts toActivityFailure).
import { ApplicationFailure } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { ConnectorError, TargetUnavailableError } from '../../activities/connectors/types.js';
import { PERMANENT, toActivityFailure } from '../../activities/grants.js';
import { exponentialBackoffMs, retryDelayMs } from '../../domain/retry-delay.js';
import { TARGET_UNAVAILABLE } from '../../workflows/target-recovery.js';

const intervals = { initialInterval: 1_000, maximumInterval: 60_000 };

describe('exponentialBackoffMs', () => {
  it('doubles from the initial interval and stops at the cap, even after very many failures', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8].map((n) => exponentialBackoffMs(n, intervals))).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000]);
    expect(exponentialBackoffMs(10_000, intervals)).toBe(60_000);
    expect(exponentialBackoffMs(0, intervals)).toBe(1_000);
  });
});

describe('retryDelayMs', () => {
  it('spreads each attempt over the upper half of its backoff (equal jitter)', () => {
    for (const attempt of [1, 2, 3, 6, 7, 20]) {
      const backoff = exponentialBackoffMs(attempt, intervals);
      expect(retryDelayMs(attempt, intervals, 0)).toBe(backoff / 2);
      expect(retryDelayMs(attempt, intervals, 0.5)).toBe((backoff * 3) / 4);
      const top = retryDelayMs(attempt, intervals, 0.999999);
      expect(top).toBeLessThanOrEqual(backoff);
      expect(top).toBeGreaterThan(backoff * 0.99);
    }
  });

  it('never exceeds the maximum interval, and different draws give different delays', () => {
    const delays = new Set(Array.from({ length: 50 }, (_, i) => retryDelayMs(30, intervals, i / 50)));
    expect(Math.max(...delays)).toBeLessThanOrEqual(60_000);
    expect(Math.min(...delays)).toBe(30_000);
    expect(delays.size).toBe(50);
  });

  it('honours what the target asked for (Retry-After), jitter or not, even past the cap', () => {
    expect(retryDelayMs(1, intervals, 0.3, 5_000)).toBe(5_000);
    expect(retryDelayMs(9, intervals, 0.9, 120_000)).toBe(120_000);
    // "Retry-After: 0" still waits a moment; a nonsensical value is ignored.
    expect(retryDelayMs(1, intervals, 0.5, 0)).toBe(1);
    expect(retryDelayMs(2, intervals, 0, Number.NaN)).toBe(1_000);
    expect(retryDelayMs(2, intervals, 0, -5)).toBe(1_000);
  });
});

describe('toActivityFailure', () => {
  const delayOf = (failure: Error) => (failure as ApplicationFailure).nextRetryDelay;

  it('gives a retryable connector error the Retry-After delay when the target sent one, else a jittered backoff', () => {
    const throttled = toActivityFailure(new ConnectorError('429', true, 'RATE_LIMITED', 7_000), 'app', intervals);
    expect(throttled).toBeInstanceOf(ApplicationFailure);
    expect(throttled).toMatchObject({ type: 'RATE_LIMITED', nonRetryable: false });
    expect(delayOf(throttled)).toBe(7_000);

    // Outside an activity the attempt counts as the first: half to all of initialInterval.
    const flaky = toActivityFailure(new ConnectorError('busy', true, 'LDAP_51'), 'directory', intervals);
    expect(delayOf(flaky)).toBeGreaterThanOrEqual(500);
    expect(delayOf(flaky)).toBeLessThanOrEqual(1_000);
  });

  it('keeps an unreachable target typed for its recovery workflow, with its Retry-After when it gave one', () => {
    const down = toActivityFailure(new TargetUnavailableError('503', 'HTTP_503', 30_000), 'app', intervals) as ApplicationFailure;
    expect(down).toMatchObject({ type: TARGET_UNAVAILABLE, details: ['app'], nonRetryable: false });
    expect(down.nextRetryDelay).toBe(30_000);
    const refused = toActivityFailure(new TargetUnavailableError('ECONNREFUSED', 'ECONNREFUSED'), 'directory', intervals) as ApplicationFailure;
    expect(refused.type).toBe(TARGET_UNAVAILABLE);
    expect(refused.nextRetryDelay).toBeGreaterThanOrEqual(500);
  });

  it('gives a permanent failure no delay: it is not retried at all', () => {
    const permanent = toActivityFailure(new ConnectorError('no such group', false, 'LDAP_32', 5_000), 'directory', intervals) as ApplicationFailure;
    expect(permanent).toMatchObject({ type: PERMANENT, nonRetryable: true });
    expect(permanent.nextRetryDelay).toBeUndefined();
  });
});
