// What the approval page (GET /approvals/<token>) shows, read by the emailed link's token:
// who is asking, for what, why, for how long, the risk, what the person already holds, and
// whether the link can still decide. Read only: opening the page (a mail scanner does) never
// changes a row. The token is looked up by its SHA-256, never compared as a string.
import { and, asc, eq, inArray, ne } from 'drizzle-orm';
import { formatDuration } from '../domain/duration.js';
import type { ApprovalRole } from '../domain/request-view.js';
import type { EntitlementKind, IdentityAttributes, IdentityStatus, RequestStatus } from '../domain/types.js';
import type { DbOrTx } from './client.js';
import { hashToken } from './token-hash.js';
import { accessRequests, approvals, approvalTokens, entitlements, grants, identities } from './schema.js';

/** The emailed token: 32 random bytes as base64url, 43 characters. Anything else is not a token. */
export const APPROVAL_TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;

export interface PersonRef {
  /** Canonical employee id, or the requester as recorded (`api:<token name>`) when it is no person. */
  id: string;
  /** Given and family name from HR; null when unknown. */
  name: string | null;
}

export type ApprovalTokenState =
  | { state: 'open' }
  /** The stage was decided (by this approver or, after an escalation, another), or the link was used. */
  | { state: 'used'; decision: 'approved' | 'denied' | null; decidedBy: PersonRef | null; decidedAt: Date | null }
  /** expired: the link or the stage ran out of time. withdrawn: the stage or request was cancelled. */
  | { state: 'expired'; reason: 'expired' | 'withdrawn' };

export interface ApprovalPageView {
  approvalId: string;
  requestId: string;
  stage: number;
  role: ApprovalRole;
  approver: PersonRef;
  dueAt: Date;
  subject: PersonRef & { status: IdentityStatus };
  /** Who asked, when it is not the subject; null when the subject asked. */
  requester: PersonRef | null;
  entitlement: { id: string; name: string | null; target: string; kind: EntitlementKind; risk: string };
  justification: string | null;
  durationMs: number | null;
  /** `8h`, `30d`...; `until removed` when the request gives no duration. */
  duration: string;
  /** The subject's live grants (every status but revoked). */
  held: Array<{ id: string; name: string | null }>;
  requestStatus: RequestStatus;
  tokenExpiresAt: Date;
  token: ApprovalTokenState;
}

function displayName(attributes: IdentityAttributes | null | undefined): string | null {
  if (!attributes) return null;
  const name = [attributes.givenName, attributes.familyName].filter((part): part is string => typeof part === 'string' && part.length > 0).join(' ');
  return name.length > 0 ? name : null;
}

/** Request statuses after which an undecided stage can no longer be decided. */
const ENDED_REQUEST: Partial<Record<RequestStatus, 'expired' | 'withdrawn'>> = { expired: 'expired', cancelled: 'withdrawn', denied: 'withdrawn' };

/**
 * The page's view of the approval an emailed token opens, or null when the token is malformed
 * or unknown (the caller says nothing more about it). `now` decides whether it has expired.
 */
export async function approvalByToken(db: DbOrTx, token: string, now: Date = new Date()): Promise<ApprovalPageView | null> {
  if (!APPROVAL_TOKEN_PATTERN.test(token)) return null;
  const [row] = await db
    .select({
      tokenExpiresAt: approvalTokens.expiresAt,
      tokenUsedAt: approvalTokens.usedAt,
      approval: {
        id: approvals.id,
        stage: approvals.stage,
        role: approvals.role,
        approver: approvals.approver,
        dueAt: approvals.dueAt,
        decision: approvals.decision,
      },
      request: {
        id: accessRequests.id,
        status: accessRequests.status,
        requestedBy: accessRequests.requestedBy,
        justification: accessRequests.justification,
        durationMs: accessRequests.durationMs,
      },
      subject: { id: identities.id, employeeId: identities.employeeId, status: identities.status, attributes: identities.attributes },
      entitlement: { id: entitlements.id, name: entitlements.name, target: entitlements.target, kind: entitlements.kind, risk: entitlements.risk },
    })
    .from(approvalTokens)
    .innerJoin(approvals, eq(approvals.id, approvalTokens.approvalId))
    .innerJoin(accessRequests, eq(accessRequests.id, approvals.requestId))
    .innerJoin(identities, eq(identities.id, accessRequests.identityId))
    .innerJoin(entitlements, eq(entitlements.id, accessRequests.entitlementId))
    .where(eq(approvalTokens.tokenHash, hashToken(token)));
  if (!row) return null;
  const { approval, request, subject, entitlement } = row;

  // The stage's decision, whichever of its approvers (the first, or the one it escalated to) made it.
  const [stageDecision] = await db
    .select({ decision: approvals.decision, decidedBy: approvals.decidedBy, decidedAt: approvals.decidedAt })
    .from(approvals)
    .where(and(eq(approvals.requestId, request.id), eq(approvals.stage, approval.stage), inArray(approvals.decision, ['approved', 'denied'])))
    .orderBy(asc(approvals.decidedAt))
    .limit(1);

  const held = await db
    .select({ id: grants.entitlementId, name: entitlements.name })
    .from(grants)
    .innerJoin(entitlements, eq(entitlements.id, grants.entitlementId))
    .where(and(eq(grants.identityId, subject.id), ne(grants.status, 'revoked')))
    .orderBy(asc(grants.entitlementId));

  const requester = request.requestedBy === subject.employeeId ? null : request.requestedBy;
  const names = await namesOf(db, [approval.approver, requester, stageDecision?.decidedBy ?? null]);
  const person = (id: string): PersonRef => ({ id, name: names.get(id) ?? null });

  const tokenState = ((): ApprovalTokenState => {
    if (stageDecision) {
      return { state: 'used', decision: stageDecision.decision as 'approved' | 'denied', decidedBy: stageDecision.decidedBy ? person(stageDecision.decidedBy) : null, decidedAt: stageDecision.decidedAt };
    }
    // Before used_at: closing an undecided stage (deadline, withdrawal) also uses its links up.
    if (approval.decision === 'cancelled') return { state: 'expired', reason: 'withdrawn' };
    if (approval.decision === 'expired') return { state: 'expired', reason: 'expired' };
    if (row.tokenUsedAt) return { state: 'used', decision: null, decidedBy: null, decidedAt: row.tokenUsedAt };
    if (row.tokenExpiresAt.getTime() <= now.getTime()) return { state: 'expired', reason: 'expired' };
    const ended = ENDED_REQUEST[request.status as RequestStatus];
    if (ended) return { state: 'expired', reason: ended };
    return { state: 'open' };
  })();

  return {
    approvalId: approval.id,
    requestId: request.id,
    stage: approval.stage,
    role: approval.role as ApprovalRole,
    approver: person(approval.approver),
    dueAt: approval.dueAt,
    subject: { id: subject.employeeId, name: displayName(subject.attributes), status: subject.status as IdentityStatus },
    requester: requester === null ? null : person(requester),
    entitlement: { ...entitlement, kind: entitlement.kind as EntitlementKind },
    justification: request.justification,
    durationMs: request.durationMs,
    duration: request.durationMs === null ? 'until removed' : formatDuration(request.durationMs),
    held,
    requestStatus: request.status as RequestStatus,
    tokenExpiresAt: row.tokenExpiresAt,
    token: tokenState,
  };
}

/** Display names by employee id, for the ids that are people (a requester may be an API token). */
async function namesOf(db: DbOrTx, ids: ReadonlyArray<string | null>): Promise<Map<string, string>> {
  const wanted = [...new Set(ids.filter((id): id is string => id !== null))];
  if (wanted.length === 0) return new Map();
  const rows = await db.select({ employeeId: identities.employeeId, attributes: identities.attributes }).from(identities).where(inArray(identities.employeeId, wanted));
  const names = new Map<string, string>();
  for (const r of rows) {
    const name = displayName(r.attributes);
    if (name) names.set(r.employeeId, name);
  }
  return names;
}
