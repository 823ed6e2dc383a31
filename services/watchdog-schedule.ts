// The SLA watchdog runs on a Temporal Schedule (services/schedules.ts), created idempotently
// when a worker starts: one schedule per task queue, overlapping runs skipped. It looks at
// least three times within `lifecycle.grantSla`, and at most once a second.
import type { Client } from '@temporalio/client';
import { ensureIntervalSchedule } from './schedules.js';

export const watchdogScheduleId = (taskQueue: string) => `sla-watchdog:${taskQueue}`;

export function watchdogInterval(grantSlaMs: number): number {
  return Math.min(60_000, Math.max(1_000, Math.floor(grantSlaMs / 3 / 1_000) * 1_000));
}

/** Creates the schedule, or updates its interval when the config changed. */
export function ensureWatchdogSchedule(temporal: Client, taskQueue: string, grantSlaMs: number): Promise<void> {
  return ensureIntervalSchedule(temporal, { scheduleId: watchdogScheduleId(taskQueue), workflowType: 'slaWatchdog', taskQueue, everyMs: watchdogInterval(grantSlaMs) });
}
