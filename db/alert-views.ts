// Alerts as people read and handle them: the API and the CLI list, read, acknowledge and
// resolve alerts through these only. An alert is raised (and counted, and resolved when its
// cause is gone) by the engine (services/alerts.ts); a person moves it along its status
// machine here: open -> acknowledged -> resolved, or open -> resolved. Each move is audited
// with who made it and their note, in the transaction that makes it, under a row lock, so
// two operators (or an operator and the engine) never both move the same alert.
//
// Lists are keyset-paginated on (created_at desc, id desc), newest first, with the same
// opaque cursor as the request lists (db/request-views.ts): one this module did not write is
// a BadRequestCursor (the API answers 400 naming `cursor`).
import { and, asc, desc, eq, inArray, sql, type SQL } from 'drizzle-orm';
import { canonicalEmployeeId } from '../domain/employee-id.js';
import type { AlertSeverity, AlertStatus } from '../domain/types.js';
import { writeAudit } from './audit.js';
import type { DbOrTx } from './client.js';
import { decodeRequestCursor, encodeRequestCursor } from './request-views.js';
import { alerts, auditLog } from './schema.js';

export { BadRequestCursor } from './request-views.js';

/** Delivery to people: pending until handed to every channel, delivered, failed (retried), or none (no channel configured). */
export const ALERT_DELIVERY_STATUSES = ['pending', 'delivered', 'failed', 'none'] as const;
export type AlertDeliveryStatus = (typeof ALERT_DELIVERY_STATUSES)[number];

/** The moves a person can make. */
export type AlertAction = 'acknowledge' | 'resolve';

/** The statuses each move may start from; anything else is refused (AlertMoveRefused). */
const ALERT_MOVES: Record<AlertAction, { from: readonly AlertStatus[]; to: AlertStatus }> = {
  // Only an open alert is acknowledged: a second acknowledgement would say nothing new, and
  // a resolved alert has nobody left to tell.
  acknowledge: { from: ['open'], to: 'acknowledged' },
  resolve: { from: ['open', 'acknowledged'], to: 'resolved' },
};

/** Whether `action` may move an alert in status `from` (pure: the status machine). */
export function canMoveAlert(from: AlertStatus, action: AlertAction): boolean {
  return ALERT_MOVES[action].from.includes(from);
}

export interface AlertNotification {
  channel: string;
  at: string;
  ok: boolean;
  error?: string;
}

export interface AlertView {
  id: string;
  kind: string;
  severity: AlertSeverity;
  subject: string;
  details: Record<string, unknown>;
  status: AlertStatus;
  /** How often its cause was seen while unresolved (one problem, one alert). */
  count: number;
  createdAt: string;
  lastSeenAt: string;
  acknowledgedAt: string | null;
  resolvedAt: string | null;
  delivery: { status: AlertDeliveryStatus; deliveredAt: string | null; notifications: AlertNotification[] };
}

/** One entry of an alert's history, from the audit log: raised, reopened, acknowledged, resolved. */
export interface AlertHistoryEntry {
  at: string;
  actor: string;
  action: string;
  note: string | null;
}

/** One alert with its history (oldest first). */
export interface AlertDetail extends AlertView {
  history: AlertHistoryEntry[];
}

/** The most audit rows one alert's history shows (oldest first). */
export const ALERT_HISTORY_LIMIT = 100;

export interface AlertFilter {
  /** Any of these statuses; absent or empty: every status. */
  status?: readonly AlertStatus[];
  kind?: string;
  severity?: AlertSeverity;
  /** The person the alert is about (details.employeeId), any case. */
  employeeId?: string;
  /** The grant the alert is about (details.grantId). */
  grantId?: string;
  limit: number;
  cursor?: string;
}

/** A move the alert's status does not allow (`conflict`), or no alert with the id (`not_found`). */
export class AlertMoveRefused extends Error {
  constructor(
    readonly alertId: string,
    readonly code: 'not_found' | 'conflict',
    /** The alert's status now; null when there is no such alert. */
    readonly status: AlertStatus | null,
    readonly action: AlertAction,
  ) {
    super(code === 'not_found' ? `no alert ${alertId}` : `alert ${alertId} is ${status}; it cannot be ${action === 'acknowledge' ? 'acknowledged' : 'resolved'}`);
    this.name = 'AlertMoveRefused';
  }
}

type AlertRow = typeof alerts.$inferSelect;

const iso = (date: Date | null) => (date === null ? null : date.toISOString());

function viewOf(row: AlertRow): AlertView {
  const details = row.details;
  return {
    id: row.id,
    kind: row.kind,
    // Check constraints allow these values only.
    severity: row.severity as AlertSeverity,
    subject: row.subject,
    details: details !== null && typeof details === 'object' && !Array.isArray(details) ? (details as Record<string, unknown>) : {},
    status: row.status as AlertStatus,
    count: row.count,
    createdAt: row.createdAt.toISOString(),
    lastSeenAt: row.lastSeenAt.toISOString(),
    acknowledgedAt: iso(row.acknowledgedAt),
    resolvedAt: iso(row.resolvedAt),
    delivery: { status: row.deliveryStatus as AlertDeliveryStatus, deliveredAt: iso(row.deliveredAt), notifications: row.notifications },
  };
}

/** Newest first, `filter.limit` at a time; `nextCursor` is null on the last page. */
export async function listAlerts(db: DbOrTx, filter: AlertFilter): Promise<{ items: AlertView[]; nextCursor: string | null }> {
  const after = filter.cursor === undefined ? null : decodeRequestCursor(filter.cursor);
  const conditions: SQL[] = [];
  if (filter.status && filter.status.length > 0) conditions.push(inArray(alerts.status, [...filter.status]));
  if (filter.kind) conditions.push(eq(alerts.kind, filter.kind));
  if (filter.severity) conditions.push(eq(alerts.severity, filter.severity));
  // Alerts name their subject in details as the raising activity wrote it (canonical ids).
  if (filter.employeeId) conditions.push(sql`${alerts.details}->>'employeeId' = ${canonicalEmployeeId(filter.employeeId)}`);
  if (filter.grantId) conditions.push(sql`${alerts.details}->>'grantId' = ${filter.grantId}`);
  if (after) conditions.push(sql`(${alerts.createdAt}, ${alerts.id}) < (${after.at}::timestamptz, ${after.id}::uuid)`);

  const rows = await db
    .select({
      alert: alerts,
      // The position to the microsecond (a JS Date keeps milliseconds only).
      at: sql<string>`to_char(${alerts.createdAt} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`,
    })
    .from(alerts)
    .where(and(...conditions))
    .orderBy(desc(alerts.createdAt), desc(alerts.id))
    .limit(filter.limit + 1);
  const page = rows.slice(0, filter.limit);
  const last = page.at(-1);
  return {
    items: page.map((r) => viewOf(r.alert)),
    nextCursor: rows.length > filter.limit && last ? encodeRequestCursor({ at: last.at, id: last.alert.id }) : null,
  };
}

function historyEntry(row: typeof auditLog.$inferSelect): AlertHistoryEntry {
  const after = row.after as { note?: unknown; because?: unknown } | null;
  // A person's move carries their note; the engine's resolution says why (`because`).
  const text = after !== null && typeof after === 'object' ? (after.note ?? after.because) : null;
  return { at: row.at.toISOString(), actor: row.actor, action: row.action, note: typeof text === 'string' ? text : null };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** One alert with its history; null when no alert has the id. */
export async function alertView(db: DbOrTx, id: string): Promise<AlertDetail | null> {
  // Anything but a UUID names no alert (and the database would refuse to compare it).
  if (!UUID.test(id)) return null;
  const [row] = await db.select().from(alerts).where(eq(alerts.id, id));
  if (!row) return null;
  const audit = await db
    .select()
    .from(auditLog)
    .where(and(eq(auditLog.subjectType, 'alert'), eq(auditLog.subjectId, id)))
    .orderBy(asc(auditLog.seq))
    .limit(ALERT_HISTORY_LIMIT);
  return { ...viewOf(row), history: audit.map(historyEntry) };
}

export interface AlertMoveInput {
  /** Who moves it, as audited: `api:<token>`, an employee id, `cli:<user>`. */
  actor: string;
  /** Why, in their words (the caller bounds and checks it); null: none given. */
  note: string | null;
}

async function moveAlert(db: DbOrTx, id: string, action: AlertAction, input: AlertMoveInput): Promise<AlertDetail> {
  if (!UUID.test(id)) throw new AlertMoveRefused(id, 'not_found', null, action);
  await db.transaction(async (tx) => {
    // The lock orders this move after any other on the row (another operator, the engine
    // resolving or counting it), so the status checked is the one changed.
    const [row] = await tx.select({ status: alerts.status }).from(alerts).where(eq(alerts.id, id)).for('update');
    if (!row) throw new AlertMoveRefused(id, 'not_found', null, action);
    const from = row.status as AlertStatus;
    if (!canMoveAlert(from, action)) throw new AlertMoveRefused(id, 'conflict', from, action);
    const to = ALERT_MOVES[action].to;
    const now = new Date();
    await tx
      .update(alerts)
      .set(action === 'acknowledge' ? { status: to, acknowledgedAt: now } : { status: to, resolvedAt: now })
      .where(eq(alerts.id, id));
    await writeAudit(tx, {
      actor: input.actor,
      action: action === 'acknowledge' ? 'alert.acknowledged' : 'alert.resolved',
      subjectType: 'alert',
      subjectId: id,
      before: { status: from },
      after: { status: to, note: input.note },
    });
  });
  const view = await alertView(db, id);
  // Alerts are never deleted: one just moved is there.
  if (!view) throw new Error('an alert just moved could not be read back');
  return view;
}

/** open -> acknowledged: someone is on it. Audited (`alert.acknowledged`) with the note. */
export function acknowledgeAlert(db: DbOrTx, id: string, input: AlertMoveInput): Promise<AlertDetail> {
  return moveAlert(db, id, 'acknowledge', input);
}

/** open or acknowledged -> resolved, by a person. Audited (`alert.resolved`) with the note. */
export function resolveAlert(db: DbOrTx, id: string, input: AlertMoveInput): Promise<AlertDetail> {
  return moveAlert(db, id, 'resolve', input);
}
