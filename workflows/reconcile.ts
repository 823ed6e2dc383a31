// Reconcile (`reconcile:<taskQueue>` on a Temporal Schedule every `reconcile.interval`, or
// `jml reconcile` now): each target read whole and compared with the engine's view, one
// target after the other (activities/reconcile.ts). A target that cannot be read is reported
// in its result and does not stop the others.
import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { ReconcileResult } from '../activities/reconcile.js';

const db = proxyActivities<Activities>({ startToCloseTimeout: '1m', heartbeatTimeout: '20s', retry: { initialInterval: '1s', maximumInterval: '10s', maximumAttempts: 5 } });
// A large target takes a while to list; the heartbeat (activities/heartbeat.ts) says it is alive.
const reconciler = proxyActivities<Activities>({ startToCloseTimeout: '2h', heartbeatTimeout: '30s', retry: { initialInterval: '5s', maximumInterval: '1m', maximumAttempts: 3 } });

export interface ReconcileInput {
  /** One target only; absent: every target. */
  target?: string;
  /** Repair what is found (as if every target had autoRemediate). */
  repair?: boolean;
}

export async function reconcile(input: ReconcileInput = {}): Promise<ReconcileResult[]> {
  const targets = await db.reconcileTargetIds(input.target ?? null);
  const results: ReconcileResult[] = [];
  for (const target of targets) results.push(await reconciler.reconcileTarget({ target, repair: input.repair ?? false }));
  return results;
}
