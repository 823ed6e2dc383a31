// Shared vocabulary of the engine. Pure types and constants: safe to import from workflows.

export const HR_EVENT_TYPES = ['hire', 'update', 'terminate', 'rehire', 'rescind', 'leave_start', 'leave_end'] as const;
export type HrEventType = (typeof HR_EVENT_TYPES)[number];

export const HR_EVENT_SOURCES = ['webhook', 'scim', 'csv', 'api'] as const;
export type HrEventSource = (typeof HR_EVENT_SOURCES)[number];

// `failed`: applying it failed after retries; an alert is open and `POST /hr/events/{id}/retry`
// (or `jml retry`) tries again. The person's workflow goes on either way.
export const HR_EVENT_STATUSES = ['received', 'held', 'dispatched', 'applied', 'ignored', 'rejected', 'failed'] as const;
export type HrEventStatus = (typeof HR_EVENT_STATUSES)[number];

export const IDENTITY_STATUSES = ['pre_hire', 'active', 'on_leave', 'terminated', 'rescinded'] as const;
export type IdentityStatus = (typeof IDENTITY_STATUSES)[number];

export const ENTITLEMENT_KINDS = ['account', 'group', 'role'] as const;
export type EntitlementKind = (typeof ENTITLEMENT_KINDS)[number];

export const REQUEST_KINDS = ['birthright', 'requested', 'jit'] as const;
export type RequestKind = (typeof REQUEST_KINDS)[number];

/** Request status: did the right person say yes? */
export const REQUEST_STATUSES = ['pending_approval', 'approved', 'auto_approved', 'denied', 'expired', 'cancelled'] as const;
export type RequestStatus = (typeof REQUEST_STATUSES)[number];

/** Grant status: did the target system really do it? */
export const GRANT_STATUSES = ['pending', 'provisioning', 'active', 'failed', 'revoking', 'revoked'] as const;
export type GrantStatus = (typeof GRANT_STATUSES)[number];

export const ALERT_STATUSES = ['open', 'acknowledged', 'resolved'] as const;
export type AlertStatus = (typeof ALERT_STATUSES)[number];
export const ALERT_SEVERITIES = ['info', 'warning', 'critical'] as const;
export type AlertSeverity = (typeof ALERT_SEVERITIES)[number];

export const SCOPES = [
  'events:write',
  'identities:read',
  'requests:write',
  'requests:approve',
  'jit:request',
  'alerts:write',
  'admin',
] as const;
export type Scope = (typeof SCOPES)[number];

/** The person's HR attributes. Unknown attributes are kept, so the record is open. */
export interface IdentityAttributes {
  givenName?: string;
  familyName?: string;
  email?: string;
  department?: string;
  title?: string;
  location?: string;
  employmentType?: string;
  managerId?: string;
  [key: string]: unknown;
}

/** What the ingestion worker signals into a lifecycle workflow: one accepted HR event. */
export interface HrEventSignal {
  eventId: string;
  employeeId: string;
  type: HrEventType;
  /** ISO 8601 instant. */
  effectiveAt: string;
  attributes: IdentityAttributes;
}

/** The actor recorded in the audit log for changes the engine makes on its own. */
export const ENGINE_ACTOR = 'engine';
