// The one entry point for feeds of HR events (a CSV import, a SCIM bulk, an API batch, a
// burst of webhook terminations) and the mass-leaver brake that guards them.
//
// A feed is stored as one hr_batches row and its events, in one transaction. When the feed
// would terminate more than `brake.maxTerminations` people, or more than `brake.maxShare`
// of the active identities, the batch is `held`: its terminations are stored with status
// `held`, which the dispatcher never picks up, and a critical alert is raised. An admin
// then releases the batch (its terminations become `received` and flow on) or discards it
// (they become `rejected`). Nothing accepted is lost either way.
import type { Queue } from 'bullmq';
import { and, count, desc, eq, gt, inArray, sql } from 'drizzle-orm';
import { raiseAlert } from './alerts.js';
import type { BrakeConfig, JmlConfig } from '../domain/config.js';
import { HR_EVENT_TYPES, type HrEventSource, type HrEventStatus, type HrEventType } from '../domain/types.js';
import { enqueueHrEvent, type HrEventJob } from './hr-event-queue.js';
import { writeAuditBatch, type AuditEntry } from '../db/audit.js';
import type { Db, Tx } from '../db/client.js';
import type { HrEventRow, NewHrEvent } from '../db/inbox.js';
import { alerts, hrBatches, hrEvents, identities } from '../db/schema.js';

export type HrBatchRow = typeof hrBatches.$inferSelect;

export interface FeedDeps {
  db: Db;
  queue: Queue<HrEventJob>;
  config: JmlConfig;
}

export interface FeedInput {
  source: HrEventSource;
  /** Who submitted the feed, for the audit log (`cli`, `api:<token name>`, ...). */
  actor: string;
  /** Each event's own `source` is replaced by the feed's, so a batch never mixes sources. */
  events: NewHrEvent[];
}

export interface FeedResult {
  batchId: string;
  status: 'accepted' | 'held';
  /** Events this feed stored, by type (repeated ids are not counted: they changed nothing). */
  counts: Record<HrEventType, number>;
  /** One per distinct event id, in input order; a repeated id answers its stored row. */
  results: Array<{ id: string; created: boolean; status: HrEventStatus }>;
}

/** Why a release or discard was refused: no such batch, or it is not waiting for a decision. */
export class BatchStateError extends Error {
  constructor(
    readonly batchId: string,
    readonly code: 'not_found' | 'not_held',
    readonly status: string | null,
  ) {
    super(code === 'not_found' ? `no batch ${batchId}` : `batch ${batchId} is ${status}, not held`);
    this.name = 'BatchStateError';
  }
}

/** Identities that a termination would take access from. */
export const ACTIVE_STATUSES = ['active', 'on_leave', 'pre_hire'] as const;

/** Postgres takes at most 65,535 parameters per statement; hr_events rows carry ~9. */
const INSERT_CHUNK = 1_000;
/** Serialises webhook terminations while they find their window's batch (any constant). */
const WEBHOOK_BRAKE_LOCK = 7_310_002;
const ALERT_KIND = 'mass_leaver_brake';

export function emptyCounts(): Record<HrEventType, number> {
  return Object.fromEntries(HR_EVENT_TYPES.map((type) => [type, 0])) as Record<HrEventType, number>;
}

/** The brake rule; `terminations` are those the feed newly brings. */
export function brakeTrips(brake: BrakeConfig, terminations: number, activeIdentities: number): boolean {
  if (brake.maxTerminations > 0 && terminations > brake.maxTerminations) return true;
  // With no active identities any share is 100%: a feed of leavers into an empty engine
  // is exactly what the brake is for, once it reaches minTerminations.
  return brake.maxShare > 0 && terminations >= brake.minTerminations && terminations > brake.maxShare * activeIdentities;
}

function brakeReason(brake: BrakeConfig, terminations: number, activeIdentities: number): string {
  const share = activeIdentities > 0 ? `${((100 * terminations) / activeIdentities).toFixed(1)}%` : 'all';
  return `${terminations} terminations (${share} of ${activeIdentities} active identities) exceed the mass-leaver brake (more than ${brake.maxTerminations} or ${(100 * brake.maxShare).toFixed(1)}%)`;
}

async function countActiveIdentities(tx: Tx): Promise<number> {
  const [row] = await tx.select({ n: count() }).from(identities).where(inArray(identities.status, [...ACTIVE_STATUSES]));
  return row?.n ?? 0;
}

function chunks<T>(items: readonly T[], size = INSERT_CHUNK): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

function eventAudit(row: HrEventRow, actor: string): AuditEntry {
  return {
    actor,
    action: row.status === 'held' ? 'hr_event.held' : 'hr_event.received',
    subjectType: 'hr_event',
    subjectId: row.id,
    after: { type: row.type, employeeId: row.employeeId, effectiveAt: row.effectiveAt, source: row.source, status: row.status, batchId: row.batchId },
    correlationId: row.id,
  };
}

/** The alert says how many, never who: no personal data leaves through alert channels. */
async function raiseBrakeAlert(tx: Tx, batch: HrBatchRow, brake: BrakeConfig, counts: Record<string, number>): Promise<void> {
  await raiseAlert(
    tx,
    {
      kind: ALERT_KIND,
      severity: 'critical',
      subject: `Mass-leaver brake held a ${batch.source} feed: ${batch.terminations} terminations wait for a decision`,
      details: {
        batchId: batch.id,
        source: batch.source,
        terminations: batch.terminations,
        activeIdentities: batch.activeIdentities,
        maxTerminations: brake.maxTerminations,
        maxShare: brake.maxShare,
        counts,
        release: `jml release ${batch.id}`,
        discard: `jml discard ${batch.id} --reason ...`,
      },
      dedupeKey: `brake:${batch.id}`,
    },
    batch.id,
  );
}

/**
 * Nudges stored events onto the queue, a few at a time. The first failure stops it: Redis
 * is likely down, every further try would wait out its timeout, and the dispatcher
 * re-enqueues whatever is still `received` anyway.
 */
export async function enqueueEvents(queue: Queue<HrEventJob>, ids: readonly string[], parallel = 20): Promise<boolean> {
  for (const group of chunks(ids, parallel)) {
    try {
      await Promise.all(group.map((id) => enqueueHrEvent(queue, id)));
    } catch {
      return false;
    }
  }
  return true;
}

/**
 * Stores a feed as one batch, behind the brake, in one transaction; then nudges the queue.
 *
 * When the brake holds a batch only its terminations wait. Its joiners, movers and the
 * rest go through: holding them would delay day-one access for every joiner in the feed
 * because of a problem with its leavers, and none of them takes access away wholesale.
 */
export async function submitFeed(deps: FeedDeps, input: FeedInput): Promise<FeedResult> {
  const { brake } = deps.config;
  // The same id twice in one feed is one event (the first wins), as for repeated webhooks.
  const byId = new Map<string, NewHrEvent>();
  for (const event of input.events) if (!byId.has(event.id)) byId.set(event.id, event);
  const events = [...byId.values()];

  const outcome = await deps.db.transaction(async (tx) => {
    const stored = new Map<string, HrEventRow>();
    for (const ids of chunks(events.map((e) => e.id))) {
      for (const row of await tx.select().from(hrEvents).where(inArray(hrEvents.id, ids))) stored.set(row.id, row);
    }
    // Only new terminations count: re-sending a feed must not trip the brake a second time.
    const fresh = events.filter((e) => !stored.has(e.id));
    const terminations = fresh.filter((e) => e.type === 'terminate').length;
    const activeIdentities = await countActiveIdentities(tx);
    const held = brakeTrips(brake, terminations, activeIdentities);

    const [batch] = await tx
      .insert(hrBatches)
      .values({
        source: input.source,
        status: held ? 'held' : 'accepted',
        events: fresh.length,
        terminations,
        activeIdentities,
        reason: held ? brakeReason(brake, terminations, activeIdentities) : null,
      })
      .returning();
    if (!batch) throw new Error('hr batch insert returned nothing');

    const created = new Map<string, HrEventRow>();
    for (const group of chunks(fresh)) {
      const values = group.map((e) => ({
        ...e,
        source: input.source,
        batchId: batch.id,
        status: held && e.type === 'terminate' ? ('held' as const) : ('received' as const),
      }));
      const rows = await tx.insert(hrEvents).values(values).onConflictDoNothing({ target: hrEvents.id }).returning();
      for (const row of rows) created.set(row.id, row);
    }
    // Stored concurrently by someone else between our look and our insert: answer theirs.
    const raced = fresh.filter((e) => !created.has(e.id)).map((e) => e.id);
    for (const ids of chunks(raced)) {
      for (const row of await tx.select().from(hrEvents).where(inArray(hrEvents.id, ids))) stored.set(row.id, row);
    }
    if (raced.length) {
      const createdTerminations = [...created.values()].filter((row) => row.type === 'terminate').length;
      await tx.update(hrBatches).set({ events: created.size, terminations: createdTerminations }).where(eq(hrBatches.id, batch.id));
    }

    const counts = emptyCounts();
    for (const row of created.values()) counts[row.type as HrEventType] += 1;
    const audit: AuditEntry[] = [
      {
        actor: input.actor,
        action: held ? 'hr_batch.held' : 'hr_batch.accepted',
        subjectType: 'hr_batch',
        subjectId: batch.id,
        after: { source: batch.source, status: batch.status, events: created.size, terminations, activeIdentities, counts },
        correlationId: batch.id,
      },
      ...[...created.values()].map((row) => eventAudit(row, input.actor)),
    ];
    for (const group of chunks(audit)) await writeAuditBatch(tx, group);
    if (held) await raiseBrakeAlert(tx, batch, brake, counts);

    const results = events.map((e) => {
      const row = created.get(e.id) ?? stored.get(e.id);
      if (!row) throw new Error(`hr event ${e.id} vanished during insert`);
      return { id: row.id, created: created.has(e.id), status: row.status as HrEventStatus };
    });
    return { batch, counts, results };
  });

  await enqueueEvents(
    deps.queue,
    outcome.results.filter((r) => r.created && r.status === 'received').map((r) => r.id),
  );
  return { batchId: outcome.batch.id, status: outcome.batch.status as 'accepted' | 'held', counts: outcome.counts, results: outcome.results };
}

/** Locks a batch for a decision; refuses one that is missing or not held. */
async function lockHeldBatch(tx: Tx, batchId: string): Promise<HrBatchRow> {
  const [batch] = await tx.select().from(hrBatches).where(eq(hrBatches.id, batchId)).for('update');
  if (!batch) throw new BatchStateError(batchId, 'not_found', null);
  if (batch.status !== 'held') throw new BatchStateError(batchId, 'not_held', batch.status);
  return batch;
}

/** The brake alert has done its job once someone decided: resolve it, audited. */
async function resolveBrakeAlert(tx: Tx, batchId: string, actor: string, decision: string): Promise<AuditEntry[]> {
  const rows = await tx
    .update(alerts)
    .set({ status: 'resolved', resolvedAt: new Date() })
    .where(and(eq(alerts.dedupeKey, `brake:${batchId}`), sql`${alerts.status} <> 'resolved'`))
    .returning({ id: alerts.id });
  return rows.map((row) => ({ actor, action: 'alert.resolved', subjectType: 'alert', subjectId: row.id, after: { status: 'resolved', decision }, correlationId: batchId }));
}

async function decide(
  db: Db,
  batchId: string,
  actor: string,
  decision: { batchStatus: 'released' | 'discarded'; eventStatus: 'received' | 'rejected'; reason: string | null },
): Promise<{ batch: HrBatchRow; eventIds: string[] }> {
  return db.transaction(async (tx) => {
    const before = await lockHeldBatch(tx, batchId);
    const [batch] = await tx
      .update(hrBatches)
      .set({ status: decision.batchStatus, decidedAt: new Date(), decidedBy: actor, ...(decision.reason !== null ? { reason: decision.reason } : {}) })
      .where(eq(hrBatches.id, batchId))
      .returning();
    if (!batch) throw new BatchStateError(batchId, 'not_found', null);
    const events = await tx
      .update(hrEvents)
      .set({ status: decision.eventStatus, reason: decision.reason })
      .where(and(eq(hrEvents.batchId, batchId), eq(hrEvents.status, 'held')))
      .returning({ id: hrEvents.id });
    const audit: AuditEntry[] = [
      {
        actor,
        action: `hr_batch.${decision.batchStatus}`,
        subjectType: 'hr_batch',
        subjectId: batchId,
        before: { status: before.status },
        after: { status: batch.status, events: events.length, reason: decision.reason },
        correlationId: batchId,
      },
      ...events.map(({ id }) => ({
        actor,
        action: `hr_event.${decision.eventStatus}`,
        subjectType: 'hr_event',
        subjectId: id,
        before: { status: 'held' },
        after: { status: decision.eventStatus, reason: decision.reason },
        correlationId: batchId,
      })),
      ...(await resolveBrakeAlert(tx, batchId, actor, decision.batchStatus)),
    ];
    for (const group of chunks(audit)) await writeAuditBatch(tx, group);
    return { batch, eventIds: events.map((e) => e.id) };
  });
}

/** An admin lets a held batch's terminations through; they are dispatched like any event. */
export async function releaseBatch(deps: Pick<FeedDeps, 'db' | 'queue'>, batchId: string, actor: string): Promise<{ batch: HrBatchRow; released: number }> {
  const { batch, eventIds } = await decide(deps.db, batchId, actor, { batchStatus: 'released', eventStatus: 'received', reason: null });
  await enqueueEvents(deps.queue, eventIds);
  return { batch, released: eventIds.length };
}

/** An admin throws a held batch's terminations away; they stay stored as `rejected`, with why. */
export async function discardBatch(db: Db, batchId: string, actor: string, reason: string): Promise<{ batch: HrBatchRow; discarded: number }> {
  const { batch, eventIds } = await decide(db, batchId, actor, { batchStatus: 'discarded', eventStatus: 'rejected', reason: `batch discarded by ${actor}: ${reason}` });
  return { batch, discarded: eventIds.length };
}

/**
 * Webhook terminations arrive one by one, so the brake counts them per window: the first
 * termination opens a `webhook` batch for `brake.window`, later ones in that window join
 * it. Once the window's count trips the brake, the batch is held (one alert) and this and
 * every later termination in the window are stored `held`. Terminations stored before the
 * brake tripped have gone on; they are the price of acting on webhooks at once.
 * A released or discarded window is closed: the next termination opens a fresh one.
 */
export async function brakeWebhookTerminate(db: Db, config: JmlConfig, event: NewHrEvent, actor = 'webhook'): Promise<{ row: HrEventRow; created: boolean }> {
  const { brake } = config;
  return db.transaction(async (tx) => {
    // One termination at a time finds, counts and updates the window's batch; webhook
    // terminations are rare enough that taking turns costs nothing.
    await tx.execute(sql`select pg_advisory_xact_lock(${WEBHOOK_BRAKE_LOCK})`);
    const [existing] = await tx.select().from(hrEvents).where(eq(hrEvents.id, event.id));
    if (existing) return { row: existing, created: false };

    const now = new Date();
    let [batch] = await tx
      .select()
      .from(hrBatches)
      .where(and(eq(hrBatches.source, 'webhook'), inArray(hrBatches.status, ['accepted', 'held']), gt(hrBatches.windowEndsAt, now)))
      .orderBy(desc(hrBatches.createdAt))
      .limit(1)
      .for('update');
    const opened = !batch;
    if (!batch) {
      [batch] = await tx.insert(hrBatches).values({ source: 'webhook', windowEndsAt: new Date(now.getTime() + brake.window) }).returning();
      if (!batch) throw new Error('hr batch insert returned nothing');
    }
    const terminations = batch.terminations + 1;
    const activeIdentities = await countActiveIdentities(tx);
    const wasHeld = batch.status === 'held';
    const held = wasHeld || brakeTrips(brake, terminations, activeIdentities);
    const [updated] = await tx
      .update(hrBatches)
      .set({
        events: batch.events + 1,
        terminations,
        activeIdentities,
        status: held ? 'held' : batch.status,
        ...(held && !wasHeld ? { reason: brakeReason(brake, terminations, activeIdentities) } : {}),
      })
      .where(eq(hrBatches.id, batch.id))
      .returning();
    if (!updated) throw new Error('hr batch update returned nothing');

    const [row] = await tx
      .insert(hrEvents)
      .values({ ...event, source: 'webhook', batchId: batch.id, status: held ? 'held' : 'received' })
      .returning();
    if (!row) throw new Error('hr event insert returned nothing');

    const audit: AuditEntry[] = [];
    if (opened) audit.push({ actor, action: 'hr_batch.opened', subjectType: 'hr_batch', subjectId: batch.id, after: { source: 'webhook', windowEndsAt: updated.windowEndsAt }, correlationId: batch.id });
    if (held && !wasHeld) {
      audit.push({ actor, action: 'hr_batch.held', subjectType: 'hr_batch', subjectId: batch.id, before: { status: batch.status }, after: { status: 'held', terminations, activeIdentities }, correlationId: batch.id });
    }
    audit.push(eventAudit(row, actor));
    await writeAuditBatch(tx, audit);
    if (held && !wasHeld) await raiseBrakeAlert(tx, updated, brake, { terminate: terminations });
    return { row, created: true };
  });
}
