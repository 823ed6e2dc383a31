// One workflow per target that is down (`target-recovery:<task queue>:<target>`), started by the first
// person's workflow whose step found the target unreachable after its whole retry budget.
// It probes the target on a capped backoff; when the target answers, it releases the people
// waiting for it in the order they arrived, leavers first: their locks and revocations are
// tried, and answered, before anyone waiting for a grant is released. It ends when nobody
// waits any more; the next outage starts a new run.
import {
  allHandlersFinished,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  getExternalWorkflowHandle,
  log,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';

/** The failure type of a step whose target could not be reached (activities/grants.ts); its detail is the target id. */
export const TARGET_UNAVAILABLE = 'TargetUnavailable';

export interface TargetWaiter {
  /** The person's lifecycle workflow. */
  workflowId: string;
  /** Whether what it waits to do takes access away (a lock, a revocation, an erasure). */
  revoking: boolean;
}

export interface TargetRecoveryInput {
  target: string;
  /** Carried over continue-as-new. */
  waiting?: TargetWaiter[];
}

/** Sent by a person's workflow (through signalWithStart): it waits for this target. */
export const targetWaitingSignal = defineSignal<[TargetWaiter]>('targetWaiting');
/** Sent by a released person's workflow once it has tried its step again. */
export const targetAttemptedSignal = defineSignal<[{ workflowId: string }]>('targetAttempted');
/** Sent to a person's workflow: the target answers again, try now. */
export const targetRecoveredSignal = defineSignal<[{ target: string; recoveryId: string }]>('targetRecovered');
export const targetWaitingQuery = defineQuery<TargetWaiter[]>('waiting');

/** Per task queue too: engines that share a Temporal namespace have their own targets. */
export const targetRecoveryWorkflowId = (taskQueue: string, target: string) => `target-recovery:${taskQueue}:${target}`;

const HISTORY_LIMIT = 5_000;
/** How long the leavers released together may take before the others are released anyway. */
const LEAVERS_ANSWER_WITHIN_MS = 2 * 60_000;

const read = proxyLocalActivities<Activities>({ startToCloseTimeout: '30s', retry: { initialInterval: '1s', maximumInterval: '1m' } });
// One attempt per probe: the backoff between probes is this workflow's own.
const probe = proxyActivities<Activities>({ startToCloseTimeout: '1m', retry: { maximumAttempts: 1 } });

export async function targetRecovery(input: TargetRecoveryInput): Promise<void> {
  const { target } = input;
  const recoveryId = workflowInfo().workflowId;
  // Insertion order is arrival order: the backlog drains in the order it built up.
  const waiting = new Map<string, TargetWaiter>((input.waiting ?? []).map((w) => [w.workflowId, w]));
  const unanswered = new Set<string>();
  setHandler(targetWaitingSignal, (waiter) => {
    const known = waiting.get(waiter.workflowId);
    waiting.set(waiter.workflowId, { workflowId: waiter.workflowId, revoking: waiter.revoking || (known?.revoking ?? false) });
  });
  setHandler(targetAttemptedSignal, ({ workflowId }) => {
    unanswered.delete(workflowId);
  });
  setHandler(targetWaitingQuery, () => [...waiting.values()]);

  const { retries } = await read.getPolicy();
  let delay = retries.initialInterval;
  while (waiting.size > 0) {
    await sleep(delay);
    if (!(await probe.probeTarget(target))) {
      delay = Math.min(delay * 2, retries.maximumInterval);
      continue;
    }
    delay = retries.initialInterval;
    const everyone = [...waiting.values()];
    const leavers = everyone.filter((w) => w.revoking);
    log.info('target answers again: releasing who waited for it, leavers first', { target, leavers: leavers.length, others: everyone.length - leavers.length });
    await release(leavers);
    await condition(() => unanswered.size === 0, LEAVERS_ANSWER_WITHIN_MS);
    unanswered.clear();
    await release(everyone.filter((w) => !w.revoking));

    const info = workflowInfo();
    if (waiting.size > 0 && (info.continueAsNewSuggested || info.historyLength > HISTORY_LIMIT)) {
      await condition(allHandlersFinished);
      await continueAsNew<typeof targetRecovery>({ target, waiting: [...waiting.values()] });
    }
  }

  /** Tells each to try again now. One that re-registers (still failing) waits for the next probe. */
  async function release(batch: TargetWaiter[]): Promise<void> {
    for (const waiter of batch) {
      waiting.delete(waiter.workflowId);
      unanswered.add(waiter.workflowId);
    }
    await Promise.all(
      batch.map((waiter) =>
        getExternalWorkflowHandle(waiter.workflowId)
          .signal(targetRecoveredSignal, { target, recoveryId })
          .catch(() => unanswered.delete(waiter.workflowId)), // its workflow is gone: nothing to wait for
      ),
    );
  }
}
