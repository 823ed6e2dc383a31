// The BullMQ queue between the inbox and the lifecycle workflows. Its jobs carry only the
// event id: the inbox row is the truth, the job is a nudge.
import { createHash } from 'node:crypto';
import { Queue, type ConnectionOptions } from 'bullmq';
import { withTimeout } from './with-timeout.js';

export const HR_EVENTS_QUEUE = 'hr-events';
export interface HrEventJob {
  eventId: string;
}

/** BullMQ job ids may not contain ':' and source ids can; a hash is safe and stable. */
export function hrEventJobId(eventId: string): string {
  return `ev-${createHash('sha256').update(eventId).digest('base64url')}`;
}

export function createHrEventQueue(connection: ConnectionOptions, prefix: string): Queue<HrEventJob> {
  return new Queue<HrEventJob>(HR_EVENTS_QUEUE, {
    connection,
    prefix,
    defaultJobOptions: {
      attempts: 10,
      backoff: { type: 'exponential', delay: 1_000 },
      removeOnComplete: { age: 3_600, count: 10_000 },
      removeOnFail: { age: 7 * 86_400 },
    },
  });
}

/**
 * Enqueues once per event: BullMQ ignores a second add with the same job id. While Redis
 * is unreachable BullMQ waits for it indefinitely, so give up after `timeoutMs`: the event
 * is already safe in the inbox and the dispatcher will enqueue it later.
 */
export async function enqueueHrEvent(queue: Queue<HrEventJob>, eventId: string, timeoutMs = 1_000): Promise<void> {
  await withTimeout(queue.add('hr-event', { eventId }, { jobId: hrEventJobId(eventId) }), timeoutMs, `enqueue timed out after ${timeoutMs} ms (is Redis up?)`);
}
