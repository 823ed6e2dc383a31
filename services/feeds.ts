// The one entry point for feeds of HR events (a CSV import, a SCIM bulk, an API batch, a
// webhook termination) and the mass-leaver brake that guards them.
//
// The brake counts ONE rolling window across every source: the terminations received
// within the last `brake.window`, plus the ones a new feed brings. When that count trips it
// (brakeTrips), the feed that tripped it is stored as a `held` batch: its terminations get
// status `held`, which the dispatcher never picks up, and one critical alert is raised.
// Terminations let through before the trip have gone on; the alert says how many. While a
// batch is held the window stays tripped: every later termination, whatever feed brings
// it, is held IN THAT SAME BATCH, so one decision covers the whole incident. An admin
// releases it (its terminations become `received` and flow on) or discards it (they become
// `rejected`), and the count starts afresh from that decision: terminations received
// before it no longer count. Nothing accepted is lost either way.
//
// Counting and storing take turns on one advisory transaction lock, so two feeds that
// commit at the same moment cannot both slip under the threshold; a decision takes the
// same lock, so no termination joins a batch that is being released or discarded.
import type { Queue } from 'bullmq';
import { and, asc, count, eq, gt, inArray, sql } from 'drizzle-orm';
import { raiseAlert } from './alerts.js';
import type { BrakeConfig, JmlConfig } from '../domain/config.js';
import { formatDuration } from '../domain/duration.js';
import { HR_EVENT_TYPES, type HrEventSource, type HrEventStatus, type HrEventType } from '../domain/types.js';
import { enqueueHrEvent, type HrEventJob } from './hr-event-queue.js';
import { writeAuditBatch, type AuditEntry } from '../db/audit.js';
import { sqlStateOf, type Db, type Tx } from '../db/client.js';
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
  /** Each event's own `source` is replaced by the feed's. */
  events: NewHrEvent[];
}

export interface FeedResult {
  /** The feed's own batch, or the held batch it joined because the brake was tripped. */
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
const ACTIVE_STATUSES = ['active', 'on_leave', 'pre_hire'] as const;

/** Postgres takes at most 65,535 parameters per statement; hr_events rows carry ~9. */
const INSERT_CHUNK = 1_000;
/** Serialises the brake: counting and storing terminations, and deciding on a held batch (any constant). */
const BRAKE_LOCK = 7_310_002;
const ALERT_KIND = 'brake_held';
/** SQLSTATE unique_violation. */
const UNIQUE_VIOLATION = '23505';

export function emptyCounts(): Record<HrEventType, number> {
  return Object.fromEntries(HR_EVENT_TYPES.map((type) => [type, 0])) as Record<HrEventType, number>;
}

/** The brake rule; `terminations` are those within the window, the new feed's included. */
function brakeTrips(brake: BrakeConfig, terminations: number, activeIdentities: number): boolean {
  if (brake.maxTerminations > 0 && terminations > brake.maxTerminations) return true;
  // With no active identities any share is 100%: a feed of leavers into an empty engine
  // is exactly what the brake is for, once it reaches minTerminations.
  return brake.maxShare > 0 && terminations >= brake.minTerminations && terminations > brake.maxShare * activeIdentities;
}

function brakeReason(brake: BrakeConfig, terminations: number, activeIdentities: number): string {
  const share = activeIdentities > 0 ? `${((100 * terminations) / activeIdentities).toFixed(1)}%` : 'all';
  return `${terminations} terminations within ${formatDuration(brake.window)} (${share} of ${activeIdentities} active identities) exceed the mass-leaver brake (more than ${brake.maxTerminations} or ${(100 * brake.maxShare).toFixed(1)}%)`;
}

async function countActiveIdentities(tx: Tx): Promise<number> {
  const [row] = await tx.select({ n: count() }).from(identities).where(inArray(identities.status, [...ACTIVE_STATUSES]));
  return row?.n ?? 0;
}

async function takeBrakeLock(tx: Tx): Promise<void> {
  await tx.execute(sql`select pg_advisory_xact_lock(${BRAKE_LOCK})`);
}

/**
 * Terminations received within the window and after the latest decision on a held batch,
 * from every source (hr_events_terminations_idx). Times are the database's clock, read
 * under the brake lock (clock_timestamp(), also stamped on what the brake stores), so they
 * follow the order in which feeds and decisions took their turns.
 */
async function terminationsInWindow(tx: Tx, brake: BrakeConfig): Promise<number> {
  const since = sql`(select greatest(clock_timestamp() - make_interval(secs => ${brake.window / 1000}), (select max(${hrBatches.decidedAt}) from ${hrBatches})))`;
  const [row] = await tx.select({ n: count() }).from(hrEvents).where(and(eq(hrEvents.type, 'terminate'), gt(hrEvents.receivedAt, since)));
  return row?.n ?? 0;
}

/** The held batch, if any: while it waits for a decision the window is tripped. */
async function trippedBatch(tx: Tx): Promise<HrBatchRow | undefined> {
  // Only ever one under the lock; the oldest should an older version have left several.
  const [batch] = await tx.select().from(hrBatches).where(eq(hrBatches.status, 'held')).orderBy(asc(hrBatches.createdAt)).limit(1);
  return batch;
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

/** Why a feed tripped the brake: the window's count, its own terminations included. */
interface Trip {
  terminationsInWindow: number;
}

/** What the brake makes of `terminations` arriving now; acted on only under the brake lock. */
interface Verdict {
  /** The held batch they join: while it waits for a decision the window is tripped. */
  heldBatch: HrBatchRow | undefined;
  /** Set when they trip the brake. */
  trip: Trip | null;
  activeIdentities: number;
}

async function judge(tx: Tx, brake: BrakeConfig, terminations: number): Promise<Verdict> {
  const heldBatch = terminations > 0 ? await trippedBatch(tx) : undefined;
  const activeIdentities = await countActiveIdentities(tx);
  if (heldBatch || terminations === 0) return { heldBatch, trip: null, activeIdentities };
  const inWindow = (await terminationsInWindow(tx, brake)) + terminations;
  return { heldBatch, trip: brakeTrips(brake, inWindow, activeIdentities) ? { terminationsInWindow: inWindow } : null, activeIdentities };
}

/**
 * What the brake would do now with a feed bringing `terminations`, for a dry run: hold it
 * when the window is tripped or they would trip it. Stores nothing.
 */
export async function brakeOutlook(db: Db, brake: BrakeConfig, terminations: number): Promise<{ terminations: number; activeIdentities: number; wouldHold: boolean }> {
  const { heldBatch, trip, activeIdentities } = await db.transaction((tx) => judge(tx, brake, terminations));
  return { terminations, activeIdentities, wouldHold: heldBatch !== undefined || trip !== null };
}

/** The alert says how many, never who: no personal data leaves through alert channels. */
async function raiseBrakeAlert(tx: Tx, batch: HrBatchRow, brake: BrakeConfig, trip: Trip, counts: Record<string, number>): Promise<void> {
  const window = formatDuration(brake.window);
  const alreadyGoneOn = trip.terminationsInWindow - batch.terminations;
  await raiseAlert(
    tx,
    {
      kind: ALERT_KIND,
      severity: 'critical',
      subject: `Mass-leaver brake tripped by a ${batch.source} feed: its ${batch.terminations} terminations are held; the ${alreadyGoneOn} received before them within ${window} had already gone on`,
      details: {
        batchId: batch.id,
        source: batch.source,
        terminations: batch.terminations,
        terminationsInWindow: trip.terminationsInWindow,
        alreadyGoneOn,
        window,
        activeIdentities: batch.activeIdentities,
        maxTerminations: brake.maxTerminations,
        maxShare: brake.maxShare,
        minTerminations: brake.minTerminations,
        counts,
        meanwhile: 'Every later termination, from any feed, is held in this batch until it is released or discarded.',
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

interface StoredFeed {
  /** Null only for a webhook termination that went through: it is in no batch. */
  batch: HrBatchRow | null;
  counts: Record<HrEventType, number>;
  /** One per distinct event id, in input order; a repeated id answers its stored row. */
  results: Array<{ row: HrEventRow; created: boolean }>;
}

/**
 * Stores a feed behind the brake, in the caller's transaction. The feed's batch is the held
 * one when the window is tripped and the feed brings terminations; a new held batch when
 * they trip it; otherwise a new accepted batch, or none for a webhook termination
 * (`ownBatch` false): a batch is something to look at or decide on, and one termination
 * that went through is neither.
 *
 * Only terminations wait. A held feed's joiners, movers and the rest go through: holding
 * them would delay day-one access for every joiner in the feed because of a problem with
 * its leavers, and none of them takes access away wholesale.
 */
async function storeBehindBrake(tx: Tx, brake: BrakeConfig, input: FeedInput, options: { ownBatch: boolean }): Promise<StoredFeed> {
  await takeBrakeLock(tx);
  // The same id twice in one feed is one event (the first wins), as for repeated webhooks.
  const byId = new Map<string, NewHrEvent>();
  for (const event of input.events) if (!byId.has(event.id)) byId.set(event.id, event);
  const events = [...byId.values()];
  const stored = new Map<string, HrEventRow>();
  for (const ids of chunks(events.map((e) => e.id))) {
    for (const row of await tx.select().from(hrEvents).where(inArray(hrEvents.id, ids))) stored.set(row.id, row);
  }
  // Only new terminations count: re-sending a feed must not trip the brake a second time.
  const fresh = events.filter((e) => !stored.has(e.id));
  const terminations = fresh.filter((e) => e.type === 'terminate').length;

  const { heldBatch, trip, activeIdentities } = await judge(tx, brake, terminations);
  let batch = heldBatch;
  if (!batch && (trip || options.ownBatch)) {
    [batch] = await tx
      .insert(hrBatches)
      .values({ source: input.source, status: trip ? 'held' : 'accepted', activeIdentities, reason: trip ? brakeReason(brake, trip.terminationsInWindow, activeIdentities) : null })
      .returning();
    if (!batch) throw new Error('hr batch insert returned nothing');
  }
  const held = batch?.status === 'held';

  const created = new Map<string, HrEventRow>();
  for (const group of chunks(fresh)) {
    const values = group.map((e) => ({
      ...e,
      source: input.source,
      batchId: batch?.id ?? null,
      status: held && e.type === 'terminate' ? ('held' as const) : ('received' as const),
      receivedAt: sql`clock_timestamp()`,
    }));
    const rows = await tx.insert(hrEvents).values(values).onConflictDoNothing({ target: hrEvents.id }).returning();
    for (const row of rows) created.set(row.id, row);
  }
  // Stored concurrently by a path outside the brake between our look and our insert: answer theirs.
  const raced = fresh.filter((e) => !created.has(e.id)).map((e) => e.id);
  for (const ids of chunks(raced)) {
    for (const row of await tx.select().from(hrEvents).where(inArray(hrEvents.id, ids))) stored.set(row.id, row);
  }

  const counts = emptyCounts();
  for (const row of created.values()) counts[row.type as HrEventType] += 1;
  const audit: AuditEntry[] = [];
  if (batch) {
    const before = batch;
    [batch] = await tx
      .update(hrBatches)
      .set({ events: sql`${hrBatches.events} + ${created.size}`, terminations: sql`${hrBatches.terminations} + ${counts.terminate}` })
      .where(eq(hrBatches.id, before.id))
      .returning();
    if (!batch) throw new Error('hr batch update returned nothing');
    audit.push(
      heldBatch
        ? {
            actor: input.actor,
            action: 'hr_batch.joined',
            subjectType: 'hr_batch',
            subjectId: batch.id,
            before: { events: before.events, terminations: before.terminations },
            after: { source: input.source, events: batch.events, terminations: batch.terminations, counts },
            correlationId: batch.id,
          }
        : {
            actor: input.actor,
            action: held ? 'hr_batch.held' : 'hr_batch.accepted',
            subjectType: 'hr_batch',
            subjectId: batch.id,
            after: { source: batch.source, status: batch.status, events: batch.events, terminations: batch.terminations, activeIdentities: batch.activeIdentities, counts, ...trip },
            correlationId: batch.id,
          },
    );
  }
  audit.push(...[...created.values()].map((row) => eventAudit(row, input.actor)));
  for (const group of chunks(audit)) await writeAuditBatch(tx, group);
  if (batch && trip) await raiseBrakeAlert(tx, batch, brake, trip, counts);

  const results = events.map((e) => {
    const row = created.get(e.id) ?? stored.get(e.id);
    if (!row) throw new Error(`hr event ${e.id} vanished during insert`);
    return { row, created: created.has(e.id) };
  });
  return { batch: batch ?? null, counts, results };
}

/** Stores a feed as one batch, behind the brake, in one transaction; then nudges the queue. */
export async function submitFeed(deps: FeedDeps, input: FeedInput): Promise<FeedResult> {
  const { batch, counts, results } = await deps.db.transaction((tx) => storeBehindBrake(tx, deps.config.brake, input, { ownBatch: true }));
  if (!batch) throw new Error('a feed was stored without its batch');
  await enqueueEvents(
    deps.queue,
    results.filter((r) => r.created && r.row.status === 'received').map((r) => r.row.id),
  );
  return {
    batchId: batch.id,
    status: batch.status as FeedResult['status'],
    counts,
    results: results.map(({ row, created }) => ({ id: row.id, created, status: row.status as HrEventStatus })),
  };
}

/**
 * A webhook termination, behind the brake: it counts in the same window as every feed, is
 * held (in the held batch, or in a new one when it trips the brake) or goes through in no
 * batch. The caller nudges the queue for a `received` row.
 */
export async function brakeWebhookTerminate(db: Db, config: JmlConfig, event: NewHrEvent, actor = 'webhook'): Promise<{ row: HrEventRow; created: boolean }> {
  let results: StoredFeed['results'];
  try {
    ({ results } = await db.transaction((tx) => storeBehindBrake(tx, config.brake, { source: 'webhook', actor, events: [event] }, { ownBatch: false })));
  } catch (err) {
    // The same id stored at the same moment by the inbox writer (a hire with this id): the
    // id is taken, so answer the stored row as for any repeated id (the caller tells a
    // repeat from a conflict by the body).
    if (sqlStateOf(err) !== UNIQUE_VIOLATION) throw err;
    const [row] = await db.select().from(hrEvents).where(eq(hrEvents.id, event.id));
    if (!row) throw err;
    return { row, created: false };
  }
  const [result] = results;
  if (!result) throw new Error('hr event insert returned nothing');
  return result;
}

/** Loads a batch for a decision; refuses one that is missing or not held. */
async function heldBatch(tx: Tx, batchId: string): Promise<HrBatchRow> {
  const [batch] = await tx.select().from(hrBatches).where(eq(hrBatches.id, batchId));
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
    // In turn with the feeds: no termination joins the batch while it is being decided, and
    // decided_at, where the window's count starts afresh, is on the brake's clock.
    await takeBrakeLock(tx);
    const before = await heldBatch(tx, batchId);
    const [batch] = await tx
      .update(hrBatches)
      .set({ status: decision.batchStatus, decidedAt: sql`clock_timestamp()`, decidedBy: actor, ...(decision.reason !== null ? { reason: decision.reason } : {}) })
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
    if (decision.eventStatus === 'rejected') await raiseRejectedBatchAlert(tx, batch, events.length, actor);
    return { batch, eventIds: events.map((e) => e.id) };
  });
}

/**
 * Accepted HR events that end `rejected` (a held batch discarded): people HR said had left
 * are still here, by someone's decision. One alert per batch; how many and who, never whom.
 */
async function raiseRejectedBatchAlert(tx: Tx, batch: HrBatchRow, count: number, actor: string): Promise<void> {
  await raiseAlert(
    tx,
    {
      kind: 'event_rejected',
      severity: 'warning',
      subject: `${count} held termination${count === 1 ? '' : 's'} from a ${batch.source} feed ${count === 1 ? 'was' : 'were'} discarded by ${actor}; ${count === 1 ? 'it is' : 'they are'} stored as rejected and will not be applied`,
      details: { batchId: batch.id, source: batch.source, count, discardedBy: actor },
      dedupeKey: `event_rejected:batch:${batch.id}`,
    },
    batch.id,
  );
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
