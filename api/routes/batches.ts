// Feeds of HR events and the mass-leaver brake's decisions (services/feeds.ts). A held batch
// holds every termination that arrived while the brake was tripped, from any feed; one
// decision covers them all, and the brake's count starts afresh from it.
//   GET  /api/v1/hr/batches               newest first, cursor-paginated; ?status= ?source=   (admin or events:write)
//   GET  /api/v1/hr/batches/:id           one batch with its events counted by type and status (admin or events:write)
//   POST /api/v1/hr/batches/:id/release   a held batch's terminations go on (admin)
//   POST /api/v1/hr/batches/:id/discard   a held batch's terminations are rejected; body { reason } (admin)
// Releasing or discarding a batch that is not held is a 409.
import type { Queue } from 'bullmq';
import { and, count, desc, eq, sql, type SQL } from 'drizzle-orm';
import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { HR_EVENT_SOURCES } from '../../domain/types.js';
import type { Db } from '../../db/client.js';
import { BatchStateError, discardBatch, releaseBatch, type HrBatchRow } from '../../services/feeds.js';
import { hrBatches, hrEvents } from '../../db/schema.js';
import type { HrEventJob } from '../../services/hr-event-queue.js';
import { requireScope } from '../auth.js';
import { bearer } from '../openapi.js';
import { ProblemError, problems } from '../problem.js';
import { cursorInt8, decodeCursor, encodeCursor } from '../cursor.js';

export const BATCHES_PATH = '/api/v1/hr/batches';
const BATCH_STATUSES = ['accepted', 'held', 'released', 'discarded'] as const;

export interface BatchRoutesOptions {
  db: Db;
  queue: Queue<HrEventJob>;
}

const idParams = z.object({ id: z.guid('must be a UUID') });
/** Position: created_at in microseconds since the epoch (text, lossless), then id. */
const batchCursor = z.tuple([cursorInt8, z.guid()]);
const listQuery = z.object({
  limit: z.coerce.number('must be a number').int('must be an integer').min(1, 'must be at least 1').max(200, 'must be at most 200').default(50),
  cursor: z.string().max(512, 'is too long').optional(),
  status: z.enum(BATCH_STATUSES, `must be one of ${BATCH_STATUSES.join(', ')}`).optional(),
  source: z.enum(HR_EVENT_SOURCES, `must be one of ${HR_EVENT_SOURCES.join(', ')}`).optional(),
});
const discardBody = z.preprocess(
  // No body at all reads as an empty one: the answer names `reason`.
  (body) => body ?? {},
  z.object({ reason: z.string('is required').trim().min(1, 'is required').max(1_000, 'must be at most 1000 characters') }),
);

const batchSchema = z.object({
  id: z.guid(),
  source: z.enum(HR_EVENT_SOURCES),
  status: z.enum(BATCH_STATUSES),
  events: z.number().int(),
  terminations: z.number().int(),
  activeIdentities: z.number().int().describe('Active identities when the brake looked: the base of the share.'),
  reason: z.string().nullable(),
  createdAt: z.date(),
  decidedAt: z.date().nullable(),
  decidedBy: z.string().nullable(),
});
type BatchAnswer = z.output<typeof batchSchema>;

export function batchView(row: HrBatchRow): BatchAnswer {
  return {
    id: row.id,
    // Text columns whose check constraints allow these values only.
    source: row.source as BatchAnswer['source'],
    status: row.status as BatchAnswer['status'],
    events: row.events,
    terminations: row.terminations,
    activeIdentities: row.activeIdentities,
    reason: row.reason,
    createdAt: row.createdAt,
    decidedAt: row.decidedAt,
    decidedBy: row.decidedBy,
  };
}

/** The audit actor for a decision made through the API: the token's name. */
const actorOf = (request: FastifyRequest) => `api:${request.principal?.name ?? 'unknown'}`;

function stateProblem(err: unknown): never {
  if (err instanceof BatchStateError) {
    if (err.code === 'not_found') throw problems.notFound(`No batch with id ${err.batchId}.`);
    throw new ProblemError({
      status: 409,
      title: 'Batch is not held',
      type: 'urn:jml:problem:batch-not-held',
      detail: `Batch ${err.batchId} is ${err.status}; only a held batch can be released or discarded.`,
      extensions: { batchStatus: err.status },
    });
  }
  throw err;
}

export const batchRoutes: FastifyPluginAsyncZod<BatchRoutesOptions> = async (app, { db, queue }) => {
  // preValidation: the token is checked before the route's schemas look at the input.
  const read = { preValidation: requireScope('admin', 'events:write') };
  const readDoc = { tags: ['Batches'], security: bearer('admin', 'events:write') };
  const decide = { preValidation: requireScope('admin') };
  const decideDoc = { tags: ['Batches'], security: bearer('admin'), params: idParams };

  const listSchema = {
    ...readDoc,
    summary: 'List feeds of HR events, newest first',
    querystring: listQuery,
    response: { 200: z.object({ items: z.array(batchSchema), nextCursor: z.string().nullable().describe('Pass as `cursor` for the next page; null on the last page.') }) },
  };
  app.get(BATCHES_PATH, { ...read, schema: listSchema }, async (request) => {
    const query = request.query;
    const atUs = sql<string>`(extract(epoch from ${hrBatches.createdAt}) * 1000000)::bigint`;
    const conditions: SQL[] = [];
    if (query.status) conditions.push(eq(hrBatches.status, query.status));
    if (query.source) conditions.push(eq(hrBatches.source, query.source));
    if (query.cursor) {
      const [us, id] = decodeCursor(query.cursor, batchCursor);
      conditions.push(sql`(${atUs}, ${hrBatches.id}) < (${us}::bigint, ${id}::uuid)`);
    }
    const rows = await db
      .select({ batch: hrBatches, atUs })
      .from(hrBatches)
      .where(and(...conditions))
      .orderBy(desc(atUs), desc(hrBatches.id))
      .limit(query.limit + 1);
    const page = rows.slice(0, query.limit);
    const last = page.at(-1);
    return {
      items: page.map((r) => batchView(r.batch)),
      nextCursor: rows.length > query.limit && last ? encodeCursor([String(last.atUs), last.batch.id]) : null,
    };
  });

  const oneSchema = {
    ...readDoc,
    summary: 'One feed, its events counted by type and status',
    params: idParams,
    response: { 200: batchSchema.extend({ eventsByType: z.record(z.string(), z.record(z.string(), z.number().int())).describe('Event type -> status -> count.') }) },
  };
  app.get(`${BATCHES_PATH}/:id`, { ...read, schema: oneSchema }, async (request) => {
    const { id } = request.params;
    const [batch] = await db.select().from(hrBatches).where(eq(hrBatches.id, id));
    if (!batch) throw problems.notFound(`No batch with id ${id}.`);
    const tally = await db
      .select({ type: hrEvents.type, status: hrEvents.status, n: count() })
      .from(hrEvents)
      .where(eq(hrEvents.batchId, id))
      .groupBy(hrEvents.type, hrEvents.status);
    const byType: Record<string, Record<string, number>> = {};
    for (const { type, status, n } of tally) (byType[type] ??= {})[status] = n;
    return { ...batchView(batch), eventsByType: byType };
  });

  const releaseSchema = {
    ...decideDoc,
    summary: 'Release a held batch: its terminations go on',
    response: { 200: batchSchema.extend({ released: z.number().int() }) },
  };
  app.post(`${BATCHES_PATH}/:id/release`, { ...decide, schema: releaseSchema }, async (request) => {
    const { id } = request.params;
    const { batch, released } = await releaseBatch({ db, queue }, id, actorOf(request)).catch(stateProblem);
    return { ...batchView(batch), released };
  });

  const discardSchema = {
    ...decideDoc,
    summary: 'Discard a held batch: its terminations are rejected',
    body: discardBody,
    response: { 200: batchSchema.extend({ discarded: z.number().int() }) },
  };
  app.post(`${BATCHES_PATH}/:id/discard`, { ...decide, schema: discardSchema }, async (request) => {
    const { id } = request.params;
    const { reason } = request.body;
    const { batch, discarded } = await discardBatch(db, id, actorOf(request), reason).catch(stateProblem);
    return { ...batchView(batch), discarded };
  });
};
