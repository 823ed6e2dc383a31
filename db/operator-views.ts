// What an operator looks at: a person's grants, grants in one status across everyone, and a
// person's latest HR events. The API (api/routes/identities.ts) and the CLI (`jml status`,
// `jml grants`) read them from here, so both show the same thing.
import { and, asc, count, desc, eq, type SQL } from 'drizzle-orm';
import type { GrantStatus } from '../domain/types.js';
import type { DbOrTx } from './client.js';
import { accessRequests, entitlements, grants, hrEvents, identities } from './schema.js';

/**
 * A grant with its request and entitlement. The request status (did the right person say
 * yes?), the grant status (did the target really do it?) and the revocation status of the
 * request's access (has it really gone?) are columns of their own, never merged.
 */
const grantColumns = {
  id: grants.id,
  entitlementId: grants.entitlementId,
  entitlementName: entitlements.name,
  kind: entitlements.kind,
  target: entitlements.target,
  requestId: grants.requestId,
  requestKind: accessRequests.kind,
  requestStatus: accessRequests.status,
  grantStatus: grants.status,
  revocationStatus: accessRequests.revocationStatus,
  attempts: grants.attempts,
  lastError: grants.lastError,
  verifiedAt: grants.verifiedAt,
  expiresAt: grants.expiresAt,
  revokedAt: grants.revokedAt,
  revokeReason: grants.revokeReason,
  createdAt: grants.createdAt,
  updatedAt: grants.updatedAt,
};

/** Every grant of one identity (revoked ones too), oldest first. */
export async function identityGrants(db: DbOrTx, identityId: string) {
  return db
    .select(grantColumns)
    .from(grants)
    .innerJoin(accessRequests, eq(accessRequests.id, grants.requestId))
    .innerJoin(entitlements, eq(entitlements.id, grants.entitlementId))
    .where(eq(grants.identityId, identityId))
    .orderBy(asc(grants.createdAt), asc(grants.id));
}

export type GrantView = Awaited<ReturnType<typeof identityGrants>>[number];

/**
 * Grants in one status, optionally on one target, with whose they are: the least recently
 * changed first (what has waited or been broken longest). At most `limit`; `total` counts
 * them all, so a caller can say how many more there are.
 */
export async function grantsInStatus(db: DbOrTx, filter: { status: GrantStatus; target?: string; limit: number }) {
  const where: SQL | undefined = and(eq(grants.status, filter.status), filter.target === undefined ? undefined : eq(entitlements.target, filter.target));
  const items = await db
    .select({ employeeId: identities.employeeId, ...grantColumns })
    .from(grants)
    .innerJoin(identities, eq(identities.id, grants.identityId))
    .innerJoin(accessRequests, eq(accessRequests.id, grants.requestId))
    .innerJoin(entitlements, eq(entitlements.id, grants.entitlementId))
    .where(where)
    .orderBy(asc(grants.updatedAt), asc(grants.id))
    .limit(filter.limit);
  // Counted only when the page is full: otherwise the page is all there is.
  if (items.length < filter.limit) return { items, total: items.length };
  const [counted] = await db.select({ n: count() }).from(grants).innerJoin(entitlements, eq(entitlements.id, grants.entitlementId)).where(where);
  // Grants move on between the two reads: never fewer than were listed.
  return { items, total: Math.max(counted?.n ?? 0, items.length) };
}

/** The targets entitlements are on (to name them when a filter matches none). */
export async function knownTargets(db: DbOrTx): Promise<string[]> {
  const rows = await db.selectDistinct({ target: entitlements.target }).from(entitlements).orderBy(asc(entitlements.target));
  return rows.map((r) => r.target);
}

/** A person's latest HR events as received, newest first, with what became of each. */
export async function recentHrEvents(db: DbOrTx, employeeId: string, limit: number) {
  return db
    .select({
      id: hrEvents.id,
      type: hrEvents.type,
      effectiveAt: hrEvents.effectiveAt,
      receivedAt: hrEvents.receivedAt,
      source: hrEvents.source,
      status: hrEvents.status,
      reason: hrEvents.reason,
    })
    .from(hrEvents)
    .where(eq(hrEvents.employeeId, employeeId))
    .orderBy(desc(hrEvents.receivedAt), desc(hrEvents.id))
    .limit(limit);
}
