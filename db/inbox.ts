// The durable HR event inbox. Every input (webhook, SCIM, CSV, API) stores here first; the
// queue and the workflows come after, so an accepted event survives any of them dying.
import { eq } from 'drizzle-orm';
import type { HrEventSource, HrEventStatus, HrEventType } from '../domain/types.js';
import { writeAudit } from './audit.js';
import type { Db, DbOrTx } from './client.js';
import { hrEvents } from './schema.js';

export type HrEventRow = typeof hrEvents.$inferSelect;

export interface NewHrEvent {
  id: string;
  employeeId: string;
  type: HrEventType;
  effectiveAt: Date;
  payload: unknown;
  source: HrEventSource;
}

/**
 * Stores an event once. A repeated id changes nothing and returns the first row with
 * `created: false`, so the caller answers what it answered the first time.
 */
export async function storeHrEvent(db: Db, event: NewHrEvent, actor: string): Promise<{ row: HrEventRow; created: boolean }> {
  return db.transaction(async (tx) => {
    const [inserted] = await tx.insert(hrEvents).values(event).onConflictDoNothing({ target: hrEvents.id }).returning();
    if (inserted) {
      await writeAudit(tx, {
        actor,
        action: 'hr_event.received',
        subjectType: 'hr_event',
        subjectId: inserted.id,
        after: { type: inserted.type, employeeId: inserted.employeeId, effectiveAt: inserted.effectiveAt, source: inserted.source },
        correlationId: inserted.id,
      });
      return { row: inserted, created: true };
    }
    const [existing] = await tx.select().from(hrEvents).where(eq(hrEvents.id, event.id));
    if (!existing) throw new Error(`hr event ${event.id} vanished during insert`);
    return { row: existing, created: false };
  });
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
  options: { onlyFrom?: HrEventStatus[] } = {},
): Promise<void> {
  await db.transaction(async (tx) => {
    const [before] = await tx.select().from(hrEvents).where(eq(hrEvents.id, id)).for('update');
    if (!before || (before.status === status && before.reason === reason)) return;
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
  });
}
