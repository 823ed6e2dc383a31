// Pausing and resuming a target (the kill switch), read by the workers' connectors
// (activities/connectors/pausable.ts) through a short cache, so a pause takes effect within a
// second in every worker process and costs one indexed read per second per target.
import { eq } from 'drizzle-orm';
import { writeAudit } from '../db/audit.js';
import type { Db } from '../db/client.js';
import { targetControls } from '../db/schema.js';
import type { PausedCheck } from '../activities/connectors/pausable.js';

export interface TargetControl {
  targetId: string;
  paused: boolean;
  reason: string | null;
  changedBy: string | null;
  changedAt: string | null;
}

/** Pauses or resumes a target; audited. Returns the control as it is now. */
export async function setTargetPaused(db: Db, targetId: string, paused: boolean, change: { actor: string; reason?: string | null }): Promise<TargetControl> {
  return db.transaction(async (tx) => {
    const [before] = await tx.select().from(targetControls).where(eq(targetControls.targetId, targetId)).for('update');
    const values = { targetId, paused, reason: change.reason ?? null, changedBy: change.actor, changedAt: new Date() };
    const [row] = await tx.insert(targetControls).values(values).onConflictDoUpdate({ target: targetControls.targetId, set: values }).returning();
    await writeAudit(tx, {
      actor: change.actor,
      action: paused ? 'target.paused' : 'target.resumed',
      subjectType: 'target',
      subjectId: targetId,
      before: { paused: before?.paused ?? false },
      after: { paused, reason: change.reason ?? null },
    });
    return controlOf(targetId, row);
  });
}

function controlOf(targetId: string, row: typeof targetControls.$inferSelect | undefined): TargetControl {
  return { targetId, paused: row?.paused ?? false, reason: row?.reason ?? null, changedBy: row?.changedBy ?? null, changedAt: row?.changedAt.toISOString() ?? null };
}

/** Each target's switch (a target never switched is running). */
export async function targetControlsOf(db: Db, targetIds: readonly string[]): Promise<TargetControl[]> {
  const rows = await db.select().from(targetControls);
  return targetIds.map((id) => controlOf(id, rows.find((r) => r.targetId === id)));
}

/** Whether a target is paused, read at most once per `ttlMs` per target. A failed read keeps the last answer (or running). */
export function pausedCheck(db: Db, ttlMs = 1_000): PausedCheck {
  const cache = new Map<string, { paused: boolean; at: number }>();
  return async (targetId) => {
    const hit = cache.get(targetId);
    if (hit && Date.now() - hit.at < ttlMs) return hit.paused;
    try {
      const [row] = await db.select({ paused: targetControls.paused }).from(targetControls).where(eq(targetControls.targetId, targetId));
      const paused = row?.paused ?? false;
      cache.set(targetId, { paused, at: Date.now() });
      return paused;
    } catch {
      // Postgres away: the activities that would use the target fail on Postgres anyway.
      return hit?.paused ?? false;
    }
  };
}
