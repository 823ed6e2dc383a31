// What domain/access-policy.ts decides a request with, read from the database: the catalogue
// (from the config), the subject, what they hold and await, and the people who might approve
// (the subject's manager, the owners, the fallback approver, and each one's manager for
// escalation). The API checks a request with it; the workflows resolve and escalate
// approvers with it, when each stage opens.
import { and, eq, inArray, isNull, ne, or, type SQL } from 'drizzle-orm';
import { directoryOf, type AccessRequestContext, type DirectoryPerson, type RequestableEntitlement } from '../domain/access-policy.js';
import type { JmlConfig } from '../domain/config.js';
import type { JitEntitlementPolicy } from '../domain/jit-policy.js';
import { canonicalEmployeeId } from '../domain/employee-id.js';
import type { IdentityAttributes, IdentityStatus } from '../domain/types.js';
import type { DbOrTx } from './client.js';
import { accessRequests, grants, identities } from './schema.js';

/**
 * The approved (non-birthright) requests that hold, or wait to hold, one person's access to
 * one entitlement and whose removal is not proven: those a grant's fate concerns. With
 * `removalAsked`, only those whose removal is under way or failed.
 */
export function liveRequestsOf(access: { identityId: string; entitlementId: string }, removalAsked = false): SQL | undefined {
  const removing = inArray(accessRequests.revocationStatus, ['pending', 'failed']);
  return and(
    eq(accessRequests.identityId, access.identityId),
    eq(accessRequests.entitlementId, access.entitlementId),
    ne(accessRequests.kind, 'birthright'),
    inArray(accessRequests.status, ['approved', 'auto_approved']),
    removalAsked ? removing : or(isNull(accessRequests.revocationStatus), removing),
  );
}

/** The catalogue as the policy sees it. */
export function requestableEntitlements(config: JmlConfig): RequestableEntitlement[] {
  return config.entitlements.map((e) => ({
    id: e.id,
    requestable: e.requestable,
    owner: e.owner ?? null,
    ...(e.approver ? { approver: e.approver } : {}),
    maxDurationMs: e.maxDuration ?? null,
  }));
}

/** The entitlements that can be elevated to, as the JIT policy sees them. */
export function jitPolicies(config: JmlConfig): JitEntitlementPolicy[] {
  return config.entitlements.flatMap((e) =>
    e.jit
      ? [
          {
            id: e.id,
            owner: e.owner ?? null,
            eligible: e.jit.eligible,
            maxDuration: e.jit.maxDuration,
            ...(e.jit.defaultDuration !== undefined ? { defaultDuration: e.jit.defaultDuration } : {}),
            approval: e.jit.approval,
            ticketRequired: e.jit.ticketRequired,
            ...(e.jit.ticketPattern !== undefined ? { ticketPattern: e.jit.ticketPattern } : {}),
            cooldown: e.jit.cooldown,
            maxExtensions: e.jit.maxExtensions,
            breakGlass: e.jit.breakGlass,
          },
        ]
      : [],
  );
}

export interface LoadedAccessContext extends AccessRequestContext {
  /** The subject's identity row id; null when nobody has the employee id. */
  subjectIdentityId: string | null;
}

/** People by canonical employee id, with their status and manager. */
async function people(db: DbOrTx, ids: Iterable<string>): Promise<Map<string, DirectoryPerson>> {
  const wanted = [...new Set([...ids].map(canonicalEmployeeId))];
  if (wanted.length === 0) return new Map();
  const rows = await db.select({ employeeId: identities.employeeId, status: identities.status, attributes: identities.attributes }).from(identities).where(inArray(identities.employeeId, wanted));
  return new Map(rows.map((r) => [r.employeeId, { status: r.status as IdentityStatus, managerId: (r.attributes as IdentityAttributes).managerId ?? null }]));
}

/**
 * Reads everything the policy needs for a request about `subjectEmployeeId`, plus `extra`
 * people (an approver to escalate from). Held: every grant not revoked; pending: requests
 * awaiting a decision. `exceptRequestId` leaves one request out of both (the one being
 * decided on, when a workflow re-resolves its stages).
 */
export async function loadAccessContext(
  db: DbOrTx,
  config: JmlConfig,
  subjectEmployeeId: string,
  options: { extra?: string[]; exceptRequestId?: string } = {},
): Promise<LoadedAccessContext> {
  const subjectId = canonicalEmployeeId(subjectEmployeeId);
  const [subjectRow] = await db.select().from(identities).where(eq(identities.employeeId, subjectId));
  const catalogue = requestableEntitlements(config);
  const fallback = config.approval.fallbackApprover ?? null;

  let held: string[] = [];
  let pending: string[] = [];
  if (subjectRow) {
    const heldRows = await db.select({ entitlementId: grants.entitlementId }).from(grants).where(and(eq(grants.identityId, subjectRow.id), ne(grants.status, 'revoked')));
    const pendingRows = await db
      .select({ id: accessRequests.id, entitlementId: accessRequests.entitlementId })
      .from(accessRequests)
      .where(and(eq(accessRequests.identityId, subjectRow.id), eq(accessRequests.status, 'pending_approval')));
    held = [...new Set(heldRows.map((r) => r.entitlementId))];
    pending = [...new Set(pendingRows.filter((r) => r.id !== options.exceptRequestId).map((r) => r.entitlementId))];
  }

  // Everyone who could approve, then (second round) their managers, for escalation.
  const subjectManager = subjectRow ? ((subjectRow.attributes as IdentityAttributes).managerId ?? null) : null;
  const firstRound = [subjectManager, fallback, ...catalogue.map((e) => e.owner ?? null), ...(options.extra ?? [])].filter((id): id is string => typeof id === 'string' && id !== '');
  const known = await people(db, firstRound);
  const managers = [...known.values()].map((p) => p.managerId).filter((id): id is string => typeof id === 'string' && id !== '' && !known.has(canonicalEmployeeId(id)));
  for (const [id, person] of await people(db, managers)) known.set(id, person);
  const subject: DirectoryPerson | null = subjectRow ? { status: subjectRow.status as IdentityStatus, managerId: subjectManager } : null;
  if (subject) known.set(subjectId, subject);

  return {
    subjectIdentityId: subjectRow?.id ?? null,
    entitlements: catalogue,
    subject,
    held,
    pending,
    directory: directoryOf(Object.fromEntries(known)),
    sod: config.sod,
    approval: { approver: config.approval.approver, fallbackApprover: fallback },
  };
}
