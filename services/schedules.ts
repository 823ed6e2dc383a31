// Temporal Schedules the workers make sure exist (never a setInterval in a process): created
// idempotently when a worker starts, their interval updated when the config changed, one per
// task queue, and overlapping runs skipped. The SLA watchdog and reconcile use this.
import { ScheduleAlreadyRunning, ScheduleOverlapPolicy, type Client } from '@temporalio/client';

export interface IntervalSchedule {
  scheduleId: string;
  workflowType: string;
  taskQueue: string;
  everyMs: number;
  args?: unknown[];
}

/** Creates the schedule, or updates its interval when it exists. */
export async function ensureIntervalSchedule(temporal: Client, schedule: IntervalSchedule): Promise<void> {
  const { scheduleId, workflowType, taskQueue, everyMs: every, args = [] } = schedule;
  try {
    await temporal.schedule.create({
      scheduleId,
      spec: { intervals: [{ every }] },
      action: { type: 'startWorkflow', workflowType, taskQueue, workflowId: scheduleId, args },
      policies: { overlap: ScheduleOverlapPolicy.SKIP },
    });
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
    await temporal.schedule.getHandle(scheduleId).update((previous) => ({ ...previous, spec: { intervals: [{ every }] } }));
  }
}

export const reconcileScheduleId = (taskQueue: string) => `reconcile:${taskQueue}`;

/** Reconcile every target every `reconcile.interval` (workflows/reconcile.ts). */
export function ensureReconcileSchedule(temporal: Client, taskQueue: string, intervalMs: number): Promise<void> {
  return ensureIntervalSchedule(temporal, { scheduleId: reconcileScheduleId(taskQueue), workflowType: 'reconcile', taskQueue, everyMs: intervalMs, args: [{}] });
}
