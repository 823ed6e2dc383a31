// Access requests as domain/request-view.ts shows them: the request row with its subject,
// its grant (if one was made), its approval stages and, for one request, its timeline from
// the audit log. The API, the CLI and the approval page read requests through these only,
// so the three statuses are put side by side in one place.
//
// Lists are keyset-paginated on (created_at desc, id desc), newest first. The cursor is
// opaque base64url JSON of the last row's position; one this module did not write is a
// BadRequestCursor (the API answers 400 naming `cursor`).
import { and, asc, desc, eq, exists, inArray, isNull, ne, or, sql, type SQL } from 'drizzle-orm';
import { canonicalEmployeeId } from '../domain/employee-id.js';
import { formatDuration } from '../domain/duration.js';
import type { ApprovalDecision, ApprovalRole, ApprovalView, RequestView, RevocationStatus, TimelineEntry } from '../domain/request-view.js';
import type { GrantStatus, RequestKind, RequestStatus } from '../domain/types.js';
import type { DbOrTx } from './client.js';
import { accessRequests, approvals, auditLog, grants, identities } from './schema.js';

/** A request in a list: everything but the timeline, which only the one-request view reads. */
export type RequestSummary = Omit<RequestView, 'timeline'>;

/** The most audit rows one request's timeline shows (oldest first). */
export const TIMELINE_LIMIT = 200;

export interface RequestFilter {
  status?: RequestStatus;
  /**
   * Absent: requested access only. Birthright requests are the engine's (listed per person
   * elsewhere) and elevations are listed by the JIT API; each is listed when asked for.
   */
  kind?: RequestKind;
  /** The subject (any case). */
  employeeId?: string;
  entitlementId?: string;
  /** A person who is or was an approver of one of its stages (escalations included). */
  approver?: string;
  /** A person with an undecided approval on it: what awaits their decision. */
  awaiting?: string;
  /** A person the request concerns: its subject, its requester or one of its approvers. */
  involving?: string;
  /** A person whose own request it is: its subject or its requester (not its approvers). */
  subjectOrRequester?: string;
  /** Only elevations (or requests) still in force: granted, not yet removed, not yet expired. */
  active?: boolean;
  limit: number;
  cursor?: string;
}

/** A cursor that this module did not write (or that does not decode). */
export class BadRequestCursor extends Error {
  constructor() {
    super('is not a cursor this API returned');
    this.name = 'BadRequestCursor';
  }
}

type RequestRow = typeof accessRequests.$inferSelect;
type GrantRow = typeof grants.$inferSelect;
type ApprovalRow = typeof approvals.$inferSelect;

const iso = (date: Date | null) => (date === null ? null : date.toISOString());

function approvalView(row: ApprovalRow): ApprovalView {
  return {
    id: row.id,
    stage: row.stage,
    // Check constraints allow these values only.
    role: row.role as ApprovalRole,
    approver: row.approver,
    fallbackReason: row.fallbackReason,
    escalatedFrom: row.escalatedFrom,
    dueAt: row.dueAt.toISOString(),
    remindersSent: row.remindersSent,
    escalatedTo: row.escalatedTo,
    escalatedAt: iso(row.escalatedAt),
    escalationNote: row.escalationNote,
    decision: row.decision as ApprovalDecision | null,
    decidedBy: row.decidedBy,
    decidedAt: iso(row.decidedAt),
    decidedVia: row.decidedVia,
    comment: row.comment,
  };
}

function summaryOf(row: RequestRow, employeeId: string, grant: GrantRow | undefined, stages: ApprovalRow[]): RequestSummary {
  const grantStatus = (grant?.status ?? null) as GrantStatus | null;
  return {
    id: row.id,
    employeeId,
    entitlementId: row.entitlementId,
    kind: row.kind as RequestKind,
    requestedBy: row.requestedBy,
    justification: row.justification,
    duration: row.durationMs === null ? null : formatDuration(row.durationMs),
    createdAt: row.createdAt.toISOString(),
    requestStatus: row.status as RequestStatus,
    statusReason: row.reason,
    decidedAt: iso(row.decidedAt),
    grantStatus,
    revocationStatus: row.revocationStatus as RevocationStatus | null,
    retainedBy: row.retainedBy ?? [],
    expiresAt: iso(row.expiresAt ?? grant?.expiresAt ?? null),
    revokedAt: iso(row.revokedAt),
    revocationLagMs: row.revocationLagMs,
    ticket: row.ticket,
    breakGlass: row.breakGlass,
    extensions: row.extensions,
    grant: grant
      ? {
          id: grant.id,
          status: grant.status as GrantStatus,
          attempts: grant.attempts,
          lastError: grant.lastError,
          verifiedAt: iso(grant.verifiedAt),
          revokedAt: iso(grant.revokedAt),
          revokeReason: grant.revokeReason,
        }
      : null,
    approvals: stages.map(approvalView),
  };
}

/**
 * Each request's grant and approval rows, by request id. The grant is the request's own (at
 * most one: grants_request_idx), or, for an approved request whose access another reason's
 * live grant already gave (birthright, an overlapping elevation), that shared grant: what the
 * target holds for it.
 */
async function partsOf(db: DbOrTx, requests: RequestRow[]): Promise<{ grantOf: Map<string, GrantRow>; approvalsOf: Map<string, ApprovalRow[]> }> {
  const ids = requests.map((r) => r.id);
  if (ids.length === 0) return { grantOf: new Map(), approvalsOf: new Map() };
  const approved = requests.filter((r) => r.status === 'approved' || r.status === 'auto_approved');
  const [grantRows, approvalRows, shared] = await Promise.all([
    db.select().from(grants).where(inArray(grants.requestId, ids)),
    db.select().from(approvals).where(inArray(approvals.requestId, ids)).orderBy(asc(approvals.stage), asc(approvals.createdAt), asc(approvals.id)),
    approved.length === 0
      ? Promise.resolve([] as GrantRow[])
      : db
          .select()
          .from(grants)
          .where(and(inArray(grants.identityId, [...new Set(approved.map((r) => r.identityId))]), ne(grants.status, 'revoked'))),
  ]);
  const approvalsOf = new Map<string, ApprovalRow[]>();
  for (const row of approvalRows) {
    const list = approvalsOf.get(row.requestId) ?? [];
    list.push(row);
    approvalsOf.set(row.requestId, list);
  }
  const grantOf = new Map(grantRows.map((g) => [g.requestId, g]));
  for (const r of approved) {
    const covering = grantOf.has(r.id) ? undefined : shared.find((g) => g.identityId === r.identityId && g.entitlementId === r.entitlementId);
    if (covering) grantOf.set(r.id, covering);
  }
  return { grantOf, approvalsOf };
}

function timelineEntry(row: typeof auditLog.$inferSelect): TimelineEntry {
  const after = row.after;
  const detail = after !== null && typeof after === 'object' && !Array.isArray(after) ? (after as Record<string, unknown>) : after === null ? {} : { value: after };
  return { at: row.at.toISOString(), actor: row.actor, action: row.action, detail };
}

/** One request with its timeline; null when no request has the id. */
export async function requestView(db: DbOrTx, requestId: string): Promise<RequestView | null> {
  const [found] = await db
    .select({ request: accessRequests, employeeId: identities.employeeId })
    .from(accessRequests)
    .innerJoin(identities, eq(identities.id, accessRequests.identityId))
    .where(eq(accessRequests.id, requestId));
  if (!found) return null;
  const [{ grantOf, approvalsOf }, audit] = await Promise.all([
    partsOf(db, [found.request]),
    db
      .select()
      .from(auditLog)
      .where(or(and(eq(auditLog.subjectType, 'access_request'), eq(auditLog.subjectId, requestId)), eq(auditLog.correlationId, requestId)))
      .orderBy(asc(auditLog.seq))
      .limit(TIMELINE_LIMIT),
  ]);
  return { ...summaryOf(found.request, found.employeeId, grantOf.get(requestId), approvalsOf.get(requestId) ?? []), timeline: audit.map(timelineEntry) };
}

// --- lists ------------------------------------------------------------------------------

/** Position of a row: created_at to the microsecond (as UTC text, what Postgres printed) and id. */
interface Position {
  at: string;
  id: string;
}

const POSITION_AT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const CURSOR_MAX_LENGTH = 512;

export function encodeRequestCursor(position: Position): string {
  return Buffer.from(JSON.stringify([position.at, position.id]), 'utf8').toString('base64url');
}

/** The position a cursor names; anything else is a BadRequestCursor, never a database error. */
export function decodeRequestCursor(cursor: string): Position {
  if (cursor.length > CURSOR_MAX_LENGTH || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw new BadRequestCursor();
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new BadRequestCursor();
  }
  if (!Array.isArray(value) || value.length !== 2) throw new BadRequestCursor();
  const [at, id] = value as unknown[];
  if (typeof at !== 'string' || typeof id !== 'string' || !POSITION_AT.test(at) || !UUID.test(id)) throw new BadRequestCursor();
  // A calendar date and time (no 2026-13-45): the database would refuse it with an error.
  const millis = `${at.slice(0, 23)}Z`;
  const parsed = new Date(millis);
  if (Number.isNaN(parsed.getTime()) || parsed.toISOString() !== millis) throw new BadRequestCursor();
  return { at, id };
}

/** Newest first, `filter.limit` at a time; `nextCursor` is null on the last page. */
export async function listRequests(db: DbOrTx, filter: RequestFilter): Promise<{ items: RequestSummary[]; nextCursor: string | null }> {
  const after = filter.cursor === undefined ? null : decodeRequestCursor(filter.cursor);
  const approverIs = (who: string, undecided: boolean) =>
    exists(
      db
        .select({ one: sql`1` })
        .from(approvals)
        .where(and(eq(approvals.requestId, accessRequests.id), eq(approvals.approver, canonicalEmployeeId(who)), undecided ? isNull(approvals.decision) : undefined)),
    );

  const conditions: SQL[] = [eq(accessRequests.kind, filter.kind ?? 'requested')];
  if (filter.status) conditions.push(eq(accessRequests.status, filter.status));
  if (filter.employeeId) conditions.push(eq(identities.employeeId, canonicalEmployeeId(filter.employeeId)));
  if (filter.entitlementId) conditions.push(eq(accessRequests.entitlementId, filter.entitlementId));
  if (filter.approver) conditions.push(approverIs(filter.approver, false));
  if (filter.awaiting) conditions.push(approverIs(filter.awaiting, true));
  if (filter.involving) {
    const who = canonicalEmployeeId(filter.involving);
    conditions.push(or(eq(identities.employeeId, who), eq(accessRequests.requestedBy, who), approverIs(who, false))!);
  }
  if (filter.subjectOrRequester) {
    const who = canonicalEmployeeId(filter.subjectOrRequester);
    conditions.push(or(eq(identities.employeeId, who), eq(accessRequests.requestedBy, who))!);
  }
  if (filter.active) {
    // In force: approved, its removal not asked, and its end (if any) still ahead.
    conditions.push(
      inArray(accessRequests.status, ['approved', 'auto_approved']),
      isNull(accessRequests.revocationStatus),
      or(isNull(accessRequests.expiresAt), sql`${accessRequests.expiresAt} > now()`)!,
    );
  }
  if (after) conditions.push(sql`(${accessRequests.createdAt}, ${accessRequests.id}) < (${after.at}::timestamptz, ${after.id}::uuid)`);

  const rows = await db
    .select({
      request: accessRequests,
      employeeId: identities.employeeId,
      // The position to the microsecond (a JS Date keeps milliseconds only).
      at: sql<string>`to_char(${accessRequests.createdAt} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`,
    })
    .from(accessRequests)
    .innerJoin(identities, eq(identities.id, accessRequests.identityId))
    .where(and(...conditions))
    .orderBy(desc(accessRequests.createdAt), desc(accessRequests.id))
    .limit(filter.limit + 1);

  const page = rows.slice(0, filter.limit);
  const { grantOf, approvalsOf } = await partsOf(
    db,
    page.map((r) => r.request),
  );
  const last = page.at(-1);
  return {
    items: page.map((r) => summaryOf(r.request, r.employeeId, grantOf.get(r.request.id), approvalsOf.get(r.request.id) ?? [])),
    nextCursor: rows.length > filter.limit && last ? encodeRequestCursor({ at: last.at, id: last.request.id }) : null,
  };
}

/**
 * The lowest stage with an approval not yet decided: the one a decision now applies to.
 * null when every stage is decided (or none was opened yet).
 */
export async function openStage(db: DbOrTx, requestId: string): Promise<number | null> {
  const [row] = await db
    .select({ stage: sql<number>`min(${approvals.stage})` })
    .from(approvals)
    .where(and(eq(approvals.requestId, requestId), isNull(approvals.decision)));
  return row?.stage ?? null;
}
