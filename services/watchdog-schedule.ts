// The SLA watchdog runs on a Temporal Schedule, created idempotently when a worker starts
// (never a setInterval in a process): one schedule per task queue, overlapping runs skipped.
// It looks at least three times within `lifecycle.grantSla`, and at most once a second.
import { ScheduleAlreadyRunning, ScheduleOverlapPolicy, type Client } from '@temporalio/client';

export const watchdogScheduleId = (taskQueue: string) => `sla-watchdog:${taskQueue}`;

export function watchdogInterval(grantSlaMs: number): number {
  return Math.min(60_000, Math.max(1_000, Math.floor(grantSlaMs / 3 / 1_000) * 1_000));
}

/** Creates the schedule, or updates its interval when the config changed. */
export async function ensureWatchdogSchedule(temporal: Client, taskQueue: string, grantSlaMs: number): Promise<void> {
  const every = watchdogInterval(grantSlaMs);
  const scheduleId = watchdogScheduleId(taskQueue);
  try {
    await temporal.schedule.create({
      scheduleId,
      spec: { intervals: [{ every }] },
      action: { type: 'startWorkflow', workflowType: 'slaWatchdog', taskQueue, workflowId: scheduleId, args: [] },
      policies: { overlap: ScheduleOverlapPolicy.SKIP },
    });
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
    await temporal.schedule.getHandle(scheduleId).update((previous) => ({ ...previous, spec: { intervals: [{ every }] } }));
  }
}
