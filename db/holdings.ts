// What a person holds: every grant that is not revoked, with the kind of request behind it,
// and the entitlements approved requests keep due whatever the HR attributes say.
import { and, eq, inArray, isNull, ne } from 'drizzle-orm';
import type { Holdings } from '../domain/lifecycle.js';
import type { EntitlementKind, GrantStatus, RequestKind } from '../domain/types.js';
import type { DbOrTx } from './client.js';
import { accessRequests, entitlements, grants } from './schema.js';

export type { Holding } from '../domain/lifecycle.js';

export async function loadHoldings(db: DbOrTx, identityId: string): Promise<Holdings> {
  const rows = await db
    .select({ grant: grants, entitlement: entitlements, request: accessRequests })
    .from(grants)
    .innerJoin(entitlements, eq(grants.entitlementId, entitlements.id))
    .innerJoin(accessRequests, eq(grants.requestId, accessRequests.id))
    .where(and(eq(grants.identityId, identityId), ne(grants.status, 'revoked')));
  const requested = await db
    .select({ entitlementId: accessRequests.entitlementId })
    .from(accessRequests)
    // Removed (or being removed) requested access keeps nothing due.
    .where(and(eq(accessRequests.identityId, identityId), ne(accessRequests.kind, 'birthright'), inArray(accessRequests.status, ['approved', 'auto_approved']), isNull(accessRequests.revocationStatus)));
  return {
    holdings: rows.map(({ grant, entitlement, request }) => ({
      grantId: grant.id,
      entitlementId: entitlement.id,
      kind: entitlement.kind as EntitlementKind,
      target: entitlement.target,
      grantStatus: grant.status as GrantStatus,
      requestKind: request.kind as RequestKind,
    })),
    requestedEntitlements: [...new Set(requested.map((r) => r.entitlementId))],
  };
}
