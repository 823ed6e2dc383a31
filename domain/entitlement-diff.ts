// The mover's diff: what birthright says is due now, against what the person holds.
import type { BirthrightGrant } from './birthright.js';
import type { GrantStatus, RequestKind } from './types.js';

export interface HeldEntitlement {
  entitlementId: string;
  requestKind: RequestKind;
  grantStatus: GrantStatus;
}

export interface EntitlementDiff {
  /** Due and not held (or held but failed: granted again). */
  add: BirthrightGrant[];
  /** Held by birthright, no longer due by any rule nor by an approved request. */
  remove: string[];
  /** Held by request (not birthright): kept, and listed for the new manager to review. */
  review: string[];
}

/**
 * Reference counting: an entitlement stays while any birthright rule or any approved
 * request still wants it, so overlapping rules never revoke each other's access.
 */
export function diffEntitlements(due: readonly BirthrightGrant[], held: readonly HeldEntitlement[], requested: readonly string[]): EntitlementDiff {
  const dueIds = new Set(due.map((d) => d.entitlementId));
  const live = held.filter((h) => h.grantStatus !== 'revoked');
  const working = new Set(live.filter((h) => h.grantStatus !== 'failed').map((h) => h.entitlementId));
  const wanted = new Set([...dueIds, ...requested]);
  return {
    add: due.filter((d) => !working.has(d.entitlementId)),
    remove: [...new Set(live.filter((h) => h.requestKind === 'birthright' && !wanted.has(h.entitlementId)).map((h) => h.entitlementId))].sort(),
    review: [...new Set(live.filter((h) => h.requestKind !== 'birthright').map((h) => h.entitlementId))].sort(),
  };
}

/** Attributes whose change makes an update a mover (recompute birthright). */
export const MOVER_ATTRIBUTES = ['department', 'title', 'location', 'employmentType', 'managerId'] as const;

export function isMove(before: Record<string, unknown>, change: Record<string, unknown>): boolean {
  return MOVER_ATTRIBUTES.some((key) => key in change && change[key] !== before[key]);
}
