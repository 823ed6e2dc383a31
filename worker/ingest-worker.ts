// Process wiring for ingestion: the BullMQ worker that dispatches each nudge, and the
// timer that re-enqueues rows that never got one (services/dispatch.ts does the work).
import { Worker as BullWorker, type ConnectionOptions, type Queue } from 'bullmq';
import type { Logger } from 'pino';
import { runPeriodically } from '../services/periodic.js';
import type { Db } from '../db/client.js';
import { dispatchHrEvent, redispatchStranded, type IngestDeps } from '../services/dispatch.js';
import { HR_EVENTS_QUEUE, type HrEventJob } from '../services/hr-event-queue.js';

// A job whose worker died (a crash, a kill) keeps its lock until the lock expires, and is
// taken back by the next stalled check: BullMQ's 30 s and 30 s left such events waiting
// about a minute after a restart. A dispatch takes milliseconds and the lock is renewed
// every half lock, so 5 s is ample; should a busy event loop miss a renewal, the job runs
// twice, which dispatchHrEvent makes harmless (it skips an event no longer `received`).
const LOCK_DURATION_MS = 5_000;
const STALLED_INTERVAL_MS = 2_000;

export function createIngestWorker(deps: IngestDeps & { connection: ConnectionOptions; prefix: string; concurrency?: number }): BullWorker<HrEventJob> {
  const worker = new BullWorker<HrEventJob>(HR_EVENTS_QUEUE, async (job) => dispatchHrEvent(deps, job.data.eventId), {
    connection: deps.connection,
    prefix: deps.prefix,
    concurrency: deps.concurrency ?? 20,
    lockDuration: LOCK_DURATION_MS,
    stalledInterval: STALLED_INTERVAL_MS,
  });
  worker.on('stalled', (jobId) => deps.logger.info({ jobId }, 'hr event dispatch was left unfinished by a stopped worker; dispatching it again'));
  worker.on('failed', (job, err) => deps.logger.warn({ jobId: job?.id, attempts: job?.attemptsMade, err }, 'hr event dispatch failed; will retry'));
  worker.on('error', (err) => deps.logger.warn({ err }, 'ingest worker error'));
  return worker;
}

/** Runs redispatchStranded every `intervalMs` until stopped; errors (Redis still down) are logged and retried. Logs only what it did. */
export function startDispatcher(db: Db, queue: Queue<HrEventJob>, logger: Logger, intervalMs = 5_000, graceMs = 5_000): { stop(): Promise<void> } {
  return runPeriodically(
    async () => {
      const { enqueued, retried } = await redispatchStranded(db, queue, { graceMs });
      if (enqueued || retried) logger.info({ enqueued, retried }, 'handed stranded hr events back to the queue');
    },
    intervalMs,
    (err) => logger.warn({ err }, 'dispatcher pass failed; will retry'),
  );
}
