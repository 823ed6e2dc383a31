// The SLA watchdog (`sla-watchdog:<taskQueue>`), started by a Temporal Schedule at the
// interval services/watchdog-schedule.ts derives from `lifecycle.grantSla`: one check per run.
import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';

const db = proxyActivities<Activities>({ startToCloseTimeout: '1m', retry: { initialInterval: '1s', maximumInterval: '10s', maximumAttempts: 5 } });

export async function slaWatchdog(): Promise<{ stuck: number; resolved: number }> {
  return db.checkGrantSla();
}
