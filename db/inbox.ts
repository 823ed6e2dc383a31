// The durable HR event inbox. Every input (webhook, SCIM, CSV, API) stores here first; the
// queue and the workflows come after, so an accepted event survives any of them dying.
import { eq, inArray, sql } from 'drizzle-orm';
import type { HrEventSignal, HrEventSource, HrEventStatus, HrEventType, IdentityAttributes } from '../domain/types.js';
import { writeAudit, writeAuditBatch } from './audit.js';
import { DATABASE_WAIT_MS, DatabaseUnavailableError, sqlStateOf, type Db, type DbOrTx, type Tx } from './client.js';
import { hrEvents } from './schema.js';

export type HrEventRow = typeof hrEvents.$inferSelect;

export interface NewHrEvent {
  id: string;
  employeeId: string;
  type: HrEventType;
  effectiveAt: Date;
  payload: unknown;
  source: HrEventSource;
  /** 'held' only for terminations the mass-leaver brake stopped (services/feeds.ts); default 'received'. */
  status?: Extract<HrEventStatus, 'received' | 'held'>;
  /** The feed this event came in with (hr_batches), when it came in one. */
  batchId?: string;
}

/**
 * Stores an event once. A repeated id changes nothing and returns the first row with
 * `created: false`, so the caller answers what it answered the first time.
 */
export async function storeHrEvent(db: Db, event: NewHrEvent, actor: string): Promise<{ row: HrEventRow; created: boolean }> {
  return db.transaction(async (tx) => {
    const [inserted] = await tx.insert(hrEvents).values(event).onConflictDoNothing({ target: hrEvents.id }).returning();
    if (inserted) {
      await writeAudit(tx, receivedAudit(inserted, actor));
      return { row: inserted, created: true };
    }
    const [existing] = await tx.select().from(hrEvents).where(eq(hrEvents.id, event.id));
    if (!existing) throw new Error(`hr event ${event.id} vanished during insert`);
    return { row: existing, created: false };
  });
}

export type StoreResult = { row: HrEventRow; created: boolean };

export interface InboxWriterOptions {
  maxBatch?: number;
  /** How long an event may wait for its transaction to begin before it is refused (DatabaseUnavailableError); DATABASE_WAIT_MS. */
  waitMs?: number;
  /** statement_timeout of the write transaction, so a begun write cannot hang on a lock either; 10 s (a busy audit chain must not be refused). */
  statementTimeoutMs?: number;
}

/** A data error (class 22) or a constraint the row broke (class 23): the data's fault, not the server's. */
const refusedData = (err: unknown) => /^2[23]/.test(sqlStateOf(err) ?? '');

/**
 * Group commit for the inbox: events that arrive while a write is in flight are stored
 * together in one transaction (one multi-row insert, one turn at the audit chain lock, one
 * commit). At low load a batch is one event and nothing waits; under load the chain lock
 * is taken once per batch instead of once per event. If Postgres refuses a batch's data,
 * its events are stored one by one, so one bad event cannot fail the others (and an id
 * stored at the same moment by another path is answered as a repeat).
 *
 * Fail fast: an event whose transaction has not begun within `waitMs` (Postgres down,
 * restarting, unreachable) is refused with DatabaseUnavailableError, which the API answers
 * 503; should that transaction begin later after all, it leaves the refused events out, so a
 * refused event is never stored behind the caller's back. A begun transaction runs under
 * `statementTimeoutMs`.
 */
export function createInboxWriter(db: Db, options: InboxWriterOptions = {}) {
  type Waiter = {
    event: NewHrEvent;
    actor: string;
    resolve: (result: StoreResult) => void;
    reject: (err: unknown) => void;
    timer: NodeJS.Timeout;
    /** 'refused' once the wait ran out; 'begun' once its transaction began (no wait limit from then on). */
    state: 'waiting' | 'refused' | 'begun';
  };
  const maxBatch = options.maxBatch ?? 200;
  const waitMs = options.waitMs ?? DATABASE_WAIT_MS;
  const statementTimeoutMs = options.statementTimeoutMs ?? 10_000;
  let waiting: Waiter[] = [];
  let flushing = false;

  async function storeBatch(batch: Waiter[]): Promise<Map<string, StoreResult>> {
    return db.transaction(async (tx) => {
      const live = batch.filter((w) => w.state === 'waiting');
      for (const w of live) {
        w.state = 'begun';
        clearTimeout(w.timer);
      }
      const results = new Map<string, StoreResult>();
      if (live.length === 0) return results;
      // Sent together (postgres.js pipelines a transaction's queries): the limit costs no round trip.
      const [, inserted] = await Promise.all([
        tx.execute(sql`select set_config('statement_timeout', ${String(statementTimeoutMs)}, true)`),
        tx.insert(hrEvents).values(live.map((w) => w.event)).onConflictDoNothing({ target: hrEvents.id }).returning(),
      ]);
      const actorOf = new Map(live.map((w) => [w.event.id, w.actor]));
      await writeAuditBatch(tx, inserted.map((row) => receivedAudit(row, actorOf.get(row.id) ?? 'unknown')));
      for (const row of inserted) results.set(row.id, { row, created: true });
      const repeated = [...new Set(live.map((w) => w.event.id).filter((id) => !results.has(id)))];
      if (repeated.length) {
        for (const row of await tx.select().from(hrEvents).where(inArray(hrEvents.id, repeated))) results.set(row.id, { row, created: false });
      }
      return results;
    });
  }

  async function flush(): Promise<void> {
    flushing = true;
    while (waiting.length) {
      const batch = waiting.slice(0, maxBatch);
      waiting = waiting.slice(batch.length);
      try {
        const results = await storeBatch(batch);
        // The same id twice in one batch: the first is created, the later ones repeat it.
        const answered = new Set<string>();
        for (const w of batch) {
          if (w.state !== 'begun') continue; // refused while it waited: already answered
          const result = results.get(w.event.id);
          if (!result) w.reject(new Error(`hr event ${w.event.id} vanished during insert`));
          else w.resolve(answered.has(w.event.id) ? { row: result.row, created: false } : result);
          answered.add(w.event.id);
        }
      } catch (err) {
        for (const w of batch) {
          if (w.state === 'refused') continue;
          clearTimeout(w.timer);
          // Refused data: each event on its own, so only the bad one fails. Anything else (down,
          // restarting, timed out) stored nothing, and one by one would only hold the callers longer.
          if (refusedData(err)) storeHrEvent(db, w.event, w.actor).then(w.resolve, w.reject);
          else w.reject(err);
        }
      }
    }
    flushing = false;
  }

  return {
    store(_db: Db, event: NewHrEvent, actor: string): Promise<StoreResult> {
      return new Promise<StoreResult>((resolve, reject) => {
        const waiter: Waiter = {
          event,
          actor,
          resolve,
          reject,
          state: 'waiting',
          timer: setTimeout(() => {
            if (waiter.state !== 'waiting') return;
            waiter.state = 'refused';
            waiting = waiting.filter((w) => w !== waiter);
            reject(new DatabaseUnavailableError(waitMs));
          }, waitMs),
        };
        waiting.push(waiter);
        if (!flushing) void flush();
      });
    },
  };
}

function receivedAudit(row: HrEventRow, actor: string) {
  return {
    actor,
    action: 'hr_event.received',
    subjectType: 'hr_event',
    subjectId: row.id,
    after: { type: row.type, employeeId: row.employeeId, effectiveAt: row.effectiveAt, source: row.source },
    correlationId: row.id,
  };
}

export async function getHrEvent(db: DbOrTx, id: string): Promise<HrEventRow | undefined> {
  const [row] = await db.select().from(hrEvents).where(eq(hrEvents.id, id));
  return row;
}

/** Moves an event along; records why, and audits the change in the same transaction. */
export async function setHrEventStatus(
  db: Db,
  id: string,
  status: HrEventStatus,
  reason: string | null,
  actor: string,
  options: { onlyFrom?: HrEventStatus[]; alongside?: (tx: Tx, event: HrEventRow) => Promise<unknown> } = {},
): Promise<void> {
  await db.transaction(async (tx) => {
    const [before] = await tx.select().from(hrEvents).where(eq(hrEvents.id, id)).for('update');
    if (!before) return;
    // What must commit with the status (an alert raised or resolved) runs even when the status is unchanged.
    if (before.status === status && before.reason === reason) {
      await options.alongside?.(tx, before);
      return;
    }
    // The workflow may already have applied the event before the dispatcher records that it
    // handed it over: never move an event backwards.
    if (options.onlyFrom && !options.onlyFrom.includes(before.status as HrEventStatus)) return;
    const now = new Date();
    await tx
      .update(hrEvents)
      .set({
        status,
        reason,
        ...(status === 'dispatched' ? { dispatchedAt: now } : {}),
        ...(status === 'applied' || status === 'ignored' ? { appliedAt: now } : {}),
      })
      .where(eq(hrEvents.id, id));
    await writeAudit(tx, {
      actor,
      action: `hr_event.${status}`,
      subjectType: 'hr_event',
      subjectId: id,
      before: { status: before.status },
      after: { status, reason },
      correlationId: id,
    });
    await options.alongside?.(tx, before);
  });
}

/** The signal a stored event becomes for its lifecycle workflow. */
export function hrEventSignalOf(row: HrEventRow): HrEventSignal {
  const payload = row.payload as { attributes?: IdentityAttributes };
  return { eventId: row.id, employeeId: row.employeeId, type: row.type as HrEventType, effectiveAt: row.effectiveAt.toISOString(), attributes: payload.attributes ?? {} };
}
