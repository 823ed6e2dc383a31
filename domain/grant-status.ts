import type { GrantStatus, RequestStatus } from './types.js';

/** The failure type of a read-back that did not find what the target said it did ("succeeded but not there"). */
export const NOT_VERIFIED = 'NotVerified';

// The grant status machine. Anything not listed is a bug in the caller, so activities
// check transitions before they write and never let a refused one pass silently.
const GRANT_TRANSITIONS: Record<GrantStatus, readonly GrantStatus[]> = {
  // failed: the account it needs could not be provisioned, so it never reached the target.
  pending: ['provisioning', 'failed', 'revoking', 'revoked'],
  provisioning: ['provisioning', 'active', 'failed', 'revoking'],
  active: ['active', 'revoking', 'provisioning'],
  // failed -> failed: a failure reported again (a retried markGrantFailed) keeps the latest error.
  failed: ['provisioning', 'revoking', 'revoked', 'failed'],
  revoking: ['revoking', 'revoked', 'failed'],
  revoked: ['provisioning'],
};

export function canMoveGrant(from: GrantStatus, to: GrantStatus): boolean {
  return GRANT_TRANSITIONS[from].includes(to);
}

const REQUEST_TRANSITIONS: Record<RequestStatus, readonly RequestStatus[]> = {
  // auto_approved: an elevation whose policy needs no approval (or a break-glass one).
  pending_approval: ['approved', 'auto_approved', 'denied', 'expired', 'cancelled'],
  approved: ['cancelled'],
  auto_approved: ['cancelled'],
  denied: [],
  expired: [],
  cancelled: [],
};

export function canMoveRequest(from: RequestStatus, to: RequestStatus): boolean {
  return REQUEST_TRANSITIONS[from].includes(to);
}
