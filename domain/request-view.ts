// An access request as every API, CLI and page shows it: three statuses side by side, never
// merged. The request status says whether the right person said yes; the grant status what
// the target holds, proven by read-back; the revocation status whether the access has
// really gone. An approved request whose grant failed shows `approved` and `failed`.
import type { GrantStatus, RequestKind, RequestStatus } from './types.js';

export const REVOCATION_STATUSES = ['pending', 'revoked', 'failed', 'retained'] as const;
/**
 * null: removal has not been asked. pending: asked, not yet proven. revoked: proven gone.
 * failed: the target kept it (an alert is open; it is retried). retained: the access stays
 * because something else still makes it due (see retainedBy).
 */
export type RevocationStatus = (typeof REVOCATION_STATUSES)[number];

export const APPROVAL_ROLES = ['manager', 'owner', 'escalation', 'mover_review', 'break_glass_review'] as const;
export type ApprovalRole = (typeof APPROVAL_ROLES)[number];
export const APPROVAL_DECISIONS = ['approved', 'denied', 'expired', 'cancelled'] as const;
export type ApprovalDecision = (typeof APPROVAL_DECISIONS)[number];

export interface ApprovalView {
  id: string;
  stage: number;
  role: ApprovalRole;
  approver: string;
  fallbackReason: string | null;
  /** The approval row this one escalates (the silent approver's), if it is an escalation. */
  escalatedFrom: string | null;
  dueAt: string;
  remindersSent: number;
  escalatedTo: string | null;
  escalatedAt: string | null;
  escalationNote: string | null;
  decision: ApprovalDecision | null;
  decidedBy: string | null;
  decidedAt: string | null;
  decidedVia: string | null;
  comment: string | null;
}

export interface TimelineEntry {
  at: string;
  actor: string;
  action: string;
  /** What changed, as the audit log recorded it (statuses, reasons, ids). */
  detail: Record<string, unknown>;
}

export interface RequestView {
  id: string;
  employeeId: string;
  entitlementId: string;
  kind: RequestKind;
  requestedBy: string;
  justification: string | null;
  /** e.g. `8h`; null: until removed. */
  duration: string | null;
  createdAt: string;
  requestStatus: RequestStatus;
  /** Why the request status is what it is (a cancellation, a refusal); null when it needs no reason. */
  statusReason: string | null;
  decidedAt: string | null;
  /** null until a grant exists for the request. */
  grantStatus: GrantStatus | null;
  revocationStatus: RevocationStatus | null;
  retainedBy: string[];
  expiresAt: string | null;
  /** When the access was proven gone, or found kept for another reason (see retainedBy); null until then. */
  revokedAt: string | null;
  /** revokedAt - expiresAt in ms: how long the access outlived its expiry; null until revoked or without an expiry. */
  revocationLagMs: number | null;
  /** JIT: the change or incident reference given with the elevation; null for none. */
  ticket: string | null;
  /** JIT: granted at once without approval, in an emergency (a critical alert and the owner's review follow). */
  breakGlass: boolean;
  /** JIT: how often the elevation was extended. */
  extensions: number;
  grant: { id: string; status: GrantStatus; attempts: number; lastError: string | null; verifiedAt: string | null; revokedAt: string | null; revokeReason: string | null } | null;
  approvals: ApprovalView[];
  timeline: TimelineEntry[];
}

/**
 * Whether the request is over for its requester: nothing more will happen unless someone
 * acts. An approved request is never over while its grant is not proven or its removal not
 * proven: "approved" is not "done".
 */
export function requestSettled(view: Pick<RequestView, 'requestStatus' | 'grantStatus' | 'revocationStatus'>): boolean {
  if (view.requestStatus === 'pending_approval') return false;
  if (view.requestStatus !== 'approved' && view.requestStatus !== 'auto_approved') return true;
  if (view.revocationStatus !== null) return view.revocationStatus === 'revoked' || view.revocationStatus === 'retained';
  return view.grantStatus === 'active';
}

/**
 * How long the access has left, in ms, at `now`: until expiresAt while it lasts, 0 once
 * it ended (removal asked or done, or the request refused, expired or cancelled), and null
 * while it has not begun (the clock starts when the grant is made) or has no end.
 */
export function timeLeftMs(view: Pick<RequestView, 'requestStatus' | 'revocationStatus' | 'expiresAt'>, now: number): number | null {
  if (view.revocationStatus !== null) return 0;
  if (view.requestStatus === 'denied' || view.requestStatus === 'expired' || view.requestStatus === 'cancelled') return 0;
  if (view.expiresAt === null) return null;
  return Math.max(0, Date.parse(view.expiresAt) - now);
}
