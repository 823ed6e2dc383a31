// Hands stored HR events to their person's lifecycle workflow. Used by the ingestion worker
// (each BullMQ nudge), the dispatcher (rows that never got a nudge) and the retry route.
import type { Queue } from 'bullmq';
import type { Client } from '@temporalio/client';
import { and, eq, lt } from 'drizzle-orm';
import type { Logger } from 'pino';
import type { Db } from '../db/client.js';
import { getHrEvent, hrEventSignalOf, setHrEventStatus } from '../db/inbox.js';
import { hrEvents } from '../db/schema.js';
import { hrEventSignal, lifecycle, retryEventSignal } from '../workflows/index.js';
import { withTimeout } from './with-timeout.js';
import { enqueueHrEvent, hrEventJobId, type HrEventJob } from './hr-event-queue.js';

export const lifecycleWorkflowId = (employeeId: string) => `lifecycle:${employeeId}`;

export interface IngestDeps {
  db: Db;
  temporal: Client;
  taskQueue: string;
  logger: Logger;
}

/** Signals one stored event into its workflow, starting the workflow if needed. Idempotent. */
export async function dispatchHrEvent(deps: IngestDeps, eventId: string): Promise<'dispatched' | 'skipped'> {
  const row = await getHrEvent(deps.db, eventId);
  if (!row) throw new Error(`hr event ${eventId} is not in the inbox`);
  if (row.status !== 'received') return 'skipped'; // already with its workflow
  const signal = hrEventSignalOf(row);
  await deps.temporal.workflow.signalWithStart(lifecycle, {
    workflowId: lifecycleWorkflowId(row.employeeId),
    taskQueue: deps.taskQueue,
    args: [{ employeeId: row.employeeId }],
    signal: hrEventSignal,
    signalArgs: [signal],
  });
  await setHrEventStatus(deps.db, row.id, 'dispatched', null, 'ingest', { onlyFrom: ['received'] });
  return 'dispatched';
}

/** What one pass of redispatchStranded did: rows it looked at, jobs it added, failed jobs it retried. */
export interface RedispatchCounts {
  scanned: number;
  enqueued: number;
  retried: number;
}

/**
 * Re-enqueues inbox rows still `received` after `graceMs`: the API could not reach Redis,
 * or a job ran out of attempts (say Temporal was down for a long time). Failed jobs are
 * retried rather than re-added, since BullMQ keeps their id. A row whose job is waiting,
 * delayed or active is left to it (a job stranded by a dead worker comes back through
 * BullMQ's stalled check), and counts as scanned only.
 */
export async function redispatchStranded(db: Db, queue: Queue<HrEventJob>, options: { graceMs?: number; batch?: number } = {}): Promise<RedispatchCounts> {
  const cutoff = new Date(Date.now() - (options.graceMs ?? 5_000));
  const rows = await db
    .select({ id: hrEvents.id })
    .from(hrEvents)
    .where(and(eq(hrEvents.status, 'received'), lt(hrEvents.receivedAt, cutoff)))
    .orderBy(hrEvents.receivedAt)
    .limit(options.batch ?? 500);
  const counts: RedispatchCounts = { scanned: rows.length, enqueued: 0, retried: 0 };
  for (const { id } of rows) {
    const job = await withTimeout(queue.getJob(hrEventJobId(id)), 2_000, 'Redis did not answer within 2000 ms');
    if (!job) {
      await enqueueHrEvent(queue, id);
      counts.enqueued += 1;
    } else if (await job.isFailed()) {
      await job.retry();
      counts.retried += 1;
    }
  }
  return counts;
}

/** Why a retry was refused: no such event, or it has not failed. */
export class RetryRefused extends Error {
  constructor(
    readonly eventId: string,
    readonly code: 'not_found' | 'not_failed',
    readonly status: string | null,
  ) {
    super(code === 'not_found' ? `no hr event ${eventId}` : `hr event ${eventId} is ${status}, not failed`);
    this.name = 'RetryRefused';
  }
}

/**
 * An operator retries a failed event: it is marked `dispatched` (audited, with who asked)
 * and its person's workflow decides it afresh. A workflow that is no longer running is
 * started again and rebuilds the person from the database first.
 */
export async function retryHrEvent(deps: Pick<IngestDeps, 'db' | 'temporal' | 'taskQueue'>, eventId: string, actor: string): Promise<void> {
  const row = await getHrEvent(deps.db, eventId);
  if (!row) throw new RetryRefused(eventId, 'not_found', null);
  if (row.status !== 'failed') throw new RetryRefused(eventId, 'not_failed', row.status);
  await setHrEventStatus(deps.db, row.id, 'dispatched', `retry requested by ${actor}`, actor, { onlyFrom: ['failed'] });
  await deps.temporal.workflow.signalWithStart(lifecycle, {
    workflowId: lifecycleWorkflowId(row.employeeId),
    taskQueue: deps.taskQueue,
    args: [{ employeeId: row.employeeId }],
    signal: retryEventSignal,
    signalArgs: [{ eventId: row.id }],
  });
}
