import type { GrantStatus, RequestStatus } from './types.js';

// The grant status machine. Anything not listed is a bug in the caller, so activities
// check transitions before they write.
const GRANT_TRANSITIONS: Record<GrantStatus, readonly GrantStatus[]> = {
  pending: ['provisioning', 'revoking', 'revoked'],
  provisioning: ['provisioning', 'active', 'failed', 'revoking'],
  active: ['active', 'revoking', 'provisioning'],
  failed: ['provisioning', 'revoking', 'revoked'],
  revoking: ['revoking', 'revoked', 'failed'],
  revoked: ['provisioning'],
};

export function canMoveGrant(from: GrantStatus, to: GrantStatus): boolean {
  return GRANT_TRANSITIONS[from].includes(to);
}

const REQUEST_TRANSITIONS: Record<RequestStatus, readonly RequestStatus[]> = {
  pending_approval: ['approved', 'denied', 'expired', 'cancelled'],
  approved: ['cancelled'],
  auto_approved: ['cancelled'],
  denied: [],
  expired: [],
  cancelled: [],
};

export function canMoveRequest(from: RequestStatus, to: RequestStatus): boolean {
  return REQUEST_TRANSITIONS[from].includes(to);
}
