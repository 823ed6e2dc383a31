import { and, inArray, sql } from 'drizzle-orm';
import type { Tx } from '../db/client.js';
import { writeAudit } from '../db/audit.js';
import { alerts } from '../db/schema.js';
import type { AlertSeverity } from '../domain/types.js';
import { ENGINE_ACTOR } from '../domain/types.js';

export interface NewAlert {
  kind: string;
  severity: AlertSeverity;
  subject: string;
  details: Record<string, unknown>;
  /** One open alert per cause; raising it again while open changes nothing. */
  dedupeKey: string;
}

/** Raises an alert inside the caller's transaction, so the alert and its cause commit together. */
export async function raiseAlert(tx: Tx, alert: NewAlert, correlationId?: string): Promise<string | null> {
  const [row] = await tx
    .insert(alerts)
    .values(alert)
    .onConflictDoUpdate({
      target: alerts.dedupeKey,
      // One problem, one alert: raised again while open or acknowledged (a retry) it counts and
      // is seen later, and keeps the latest details; a resolved alert whose cause comes back
      // opens again, to be delivered again. Only the first raising and a reopening are audited.
      set: {
        count: sql`case when ${alerts.status} = 'resolved' then 1 else ${alerts.count} + 1 end`,
        lastSeenAt: sql`now()`,
        details: alert.details,
        status: sql`case when ${alerts.status} = 'resolved' then 'open' else ${alerts.status} end`,
        resolvedAt: null,
        acknowledgedAt: sql`case when ${alerts.status} = 'resolved' then null else ${alerts.acknowledgedAt} end`,
        deliveryStatus: sql`case when ${alerts.status} = 'resolved' then 'pending' else ${alerts.deliveryStatus} end`,
      },
    })
    .returning({ id: alerts.id, count: alerts.count });
  if (!row) return null;
  if (row.count > 1) return row.id;
  await writeAudit(tx, { actor: ENGINE_ACTOR, action: 'alert.raised', subjectType: 'alert', subjectId: row.id, after: alert, correlationId });
  return row.id;
}

/** Resolves the open alerts with these dedupe keys because their cause is gone, audited in the caller's transaction. */
export async function resolveAlerts(tx: Tx, dedupeKeys: string[], because: string, correlationId?: string): Promise<number> {
  if (dedupeKeys.length === 0) return 0;
  const resolved = await tx
    .update(alerts)
    .set({ status: 'resolved', resolvedAt: new Date() })
    .where(and(inArray(alerts.dedupeKey, dedupeKeys), sql`${alerts.status} <> 'resolved'`))
    .returning({ id: alerts.id });
  for (const { id } of resolved) {
    await writeAudit(tx, { actor: ENGINE_ACTOR, action: 'alert.resolved', subjectType: 'alert', subjectId: id, after: { status: 'resolved', because }, correlationId });
  }
  return resolved.length;
}
