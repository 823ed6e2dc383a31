import { sql } from 'drizzle-orm';
import type { Tx } from '../db/client.js';
import { writeAudit } from '../db/audit.js';
import { alerts } from '../db/schema.js';
import type { AlertSeverity } from '../domain/types.js';
import { ENGINE_ACTOR } from '../activities/deps.js';

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
      // A resolved alert whose cause comes back opens again; an open one is left as it is.
      set: { status: 'open', details: alert.details, resolvedAt: null, acknowledgedAt: null },
      setWhere: sql`${alerts.status} = 'resolved'`,
    })
    .returning({ id: alerts.id });
  if (!row) return null;
  await writeAudit(tx, { actor: ENGINE_ACTOR, action: 'alert.raised', subjectType: 'alert', subjectId: row.id, after: alert, correlationId });
  return row.id;
}
