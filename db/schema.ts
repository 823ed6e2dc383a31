// The data model of DESIGN.md as drizzle schema. Status columns carry CHECK constraints
// so the database itself refuses a value the domain does not know.
import { sql } from 'drizzle-orm';
import {
  bigint,
  bigserial,
  boolean,
  check,
  index,
  integer,
  jsonb,
  pgTable,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';
import type { IdentityAttributes } from '../domain/types.js';

const tz = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });
const createdAt = () => tz('created_at').notNull().defaultNow();
const inList = (column: string, values: readonly string[]) => sql.raw(`${column} in (${values.map((v) => `'${v}'`).join(', ')})`);

export const identities = pgTable(
  'identities',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    /**
     * Canonical (domain/employee-id.ts): every input folds it. Unique as stored (exact
     * lookups use that index) and, as directories match uid, without regard to case.
     */
    employeeId: text('employee_id').notNull().unique(),
    status: text('status').notNull(),
    attributes: jsonb('attributes').$type<IdentityAttributes>().notNull().default({}),
    hireDate: tz('hire_date'),
    terminationDate: tz('termination_date'),
    /** effective_at of the newest change applied, so stale updates can be recognised. */
    lastEffectiveAt: tz('last_effective_at'),
    createdAt: createdAt(),
    updatedAt: tz('updated_at').notNull().defaultNow(),
  },
  (t) => [
    check('identities_status_check', inList('status', ['pre_hire', 'active', 'on_leave', 'terminated', 'rescinded'])),
    uniqueIndex('identities_employee_id_ci_idx').on(sql`lower(${t.employeeId})`),
  ],
);

export const hrEvents = pgTable(
  'hr_events',
  {
    /** The source's event id (webhook-id, SCIM bulkId, CSV row key): the idempotency key. */
    id: text('id').primaryKey(),
    employeeId: text('employee_id').notNull(),
    type: text('type').notNull(),
    effectiveAt: tz('effective_at').notNull(),
    payload: jsonb('payload').notNull(),
    source: text('source').notNull(),
    status: text('status').notNull().default('received'),
    reason: text('reason'),
    receivedAt: tz('received_at').notNull().defaultNow(),
    dispatchedAt: tz('dispatched_at'),
    appliedAt: tz('applied_at'),
    dispatchAttempts: integer('dispatch_attempts').notNull().default(0),
    /** The feed this event came in with (a CSV import, a SCIM bulk, a webhook burst). */
    batchId: uuid('batch_id'),
  },
  (t) => [
    check('hr_events_type_check', inList('type', ['hire', 'update', 'terminate', 'rehire', 'rescind', 'leave_start', 'leave_end'])),
    check('hr_events_source_check', inList('source', ['webhook', 'scim', 'csv', 'api'])),
    check('hr_events_status_check', inList('status', ['received', 'held', 'dispatched', 'applied', 'ignored', 'rejected', 'failed'])),
    index('hr_events_batch_idx').on(t.batchId),
    index('hr_events_employee_idx').on(t.employeeId, t.effectiveAt),
    // The dispatcher scans for rows that never reached the queue.
    index('hr_events_undispatched_idx').on(t.receivedAt).where(sql`status = 'received'`),
    // The mass-leaver brake counts terminations received within its rolling window, every feed.
    index('hr_events_terminations_idx').on(t.receivedAt).where(sql`type = 'terminate'`),
  ],
);

/**
 * A feed of HR events stored as one: a CSV import, a SCIM BulkRequest, an API batch, or
 * the terminations the mass-leaver brake held (it counts one rolling window across every
 * feed). A held batch's terminations wait (hr_events.status = 'held') until an admin
 * releases or discards it.
 */
export const hrBatches = pgTable(
  'hr_batches',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    source: text('source').notNull(),
    status: text('status').notNull().default('accepted'),
    events: integer('events').notNull().default(0),
    terminations: integer('terminations').notNull().default(0),
    /** Active identities when the brake looked, the base of the share. */
    activeIdentities: integer('active_identities').notNull().default(0),
    reason: text('reason'),
    createdAt: createdAt(),
    decidedAt: tz('decided_at'),
    decidedBy: text('decided_by'),
  },
  () => [
    check('hr_batches_source_check', inList('source', ['webhook', 'scim', 'csv', 'api'])),
    check('hr_batches_status_check', inList('status', ['accepted', 'held', 'released', 'discarded'])),
  ],
);

export const entitlements = pgTable(
  'entitlements',
  {
    id: text('id').primaryKey(),
    name: text('name'),
    target: text('target').notNull(),
    kind: text('kind').notNull(),
    targetRef: text('target_ref'),
    risk: text('risk').notNull().default('low'),
    owner: text('owner'),
    birthright: boolean('birthright').notNull().default(false),
    requestable: boolean('requestable').notNull().default(false),
    jitEligible: boolean('jit_eligible').notNull().default(false),
    jitMaxDurationMs: integer('jit_max_duration_ms'),
    updatedAt: tz('updated_at').notNull().defaultNow(),
  },
  () => [check('entitlements_kind_check', inList('kind', ['account', 'group', 'role']))],
);

export const accessRequests = pgTable(
  'access_requests',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    /** Birthright: event + entitlement. Requested: the caller's Idempotency-Key (or a fresh one), per requester. */
    idempotencyKey: text('idempotency_key').notNull().unique(),
    identityId: uuid('identity_id').notNull().references(() => identities.id),
    entitlementId: text('entitlement_id').notNull().references(() => entitlements.id),
    kind: text('kind').notNull(),
    /** The request status: did the right person say yes? */
    status: text('status').notNull(),
    /** The requester's employee id, `api:<token name>` for a token bound to nobody, or the engine. */
    requestedBy: text('requested_by').notNull(),
    /** Why the status is what it is (the birthright rule, the cancellation, the refusal). */
    reason: text('reason'),
    /** What the requester said the access is for. */
    justification: text('justification'),
    /** How long the grant lasts once made; null: until removed. */
    durationMs: bigint('duration_ms', { mode: 'number' }),
    /** When the grant ends: set once it is verified (verified_at + duration). */
    expiresAt: tz('expires_at'),
    /**
     * The revocation status, apart from the grant's: null until removal is asked (expiry,
     * withdrawal, review), then pending -> revoked | failed, or retained when the access
     * stays because something else still makes it due (retained_by says what).
     */
    revocationStatus: text('revocation_status'),
    retainedBy: jsonb('retained_by').$type<string[]>(),
    /** When its access was proven gone (or kept for another reason), and how long after expires_at that was. */
    revokedAt: tz('revoked_at'),
    revocationLagMs: bigint('revocation_lag_ms', { mode: 'number' }),
    /** JIT: the change ticket given, whether it was a break-glass elevation, how often it was extended. */
    ticket: text('ticket'),
    breakGlass: boolean('break_glass').notNull().default(false),
    extensions: integer('extensions').notNull().default(0),
    rules: jsonb('rules').$type<string[]>(),
    hrEventId: text('hr_event_id'),
    /** When its accessRequest workflow was started; null: not yet (a sweep starts it). */
    workflowStartedAt: tz('workflow_started_at'),
    createdAt: createdAt(),
    decidedAt: tz('decided_at'),
    updatedAt: tz('updated_at').notNull().defaultNow(),
  },
  (t) => [
    check('access_requests_kind_check', inList('kind', ['birthright', 'requested', 'jit'])),
    check('access_requests_status_check', inList('status', ['pending_approval', 'approved', 'auto_approved', 'denied', 'expired', 'cancelled'])),
    check('access_requests_revocation_status_check', sql`revocation_status is null or revocation_status in ('pending', 'revoked', 'failed', 'retained')`),
    index('access_requests_identity_idx').on(t.identityId),
    index('access_requests_status_idx').on(t.status, t.createdAt),
    // JIT cool-down: the person's last elevation of an entitlement.
    index('access_requests_subject_entitlement_idx').on(t.identityId, t.entitlementId, t.createdAt),
    index('access_requests_unstarted_idx').on(t.createdAt).where(sql`workflow_started_at is null and kind <> 'birthright'`),
  ],
);

export const grants = pgTable(
  'grants',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    identityId: uuid('identity_id').notNull().references(() => identities.id),
    entitlementId: text('entitlement_id').notNull().references(() => entitlements.id),
    requestId: uuid('request_id').notNull().references(() => accessRequests.id),
    status: text('status').notNull().default('pending'),
    /** Since when it is in this status (a retry within it does not move it): what the SLA watchdog measures. */
    statusSince: tz('status_since').notNull().defaultNow(),
    attempts: integer('attempts').notNull().default(0),
    lastError: text('last_error'),
    verifiedAt: tz('verified_at'),
    expiresAt: tz('expires_at'),
    revokedAt: tz('revoked_at'),
    revokeReason: text('revoke_reason'),
    createdAt: createdAt(),
    updatedAt: tz('updated_at').notNull().defaultNow(),
  },
  (t) => [
    check('grants_status_check', inList('status', ['pending', 'provisioning', 'active', 'failed', 'revoking', 'revoked'])),
    uniqueIndex('grants_request_idx').on(t.requestId),
    // At most one live grant per person and entitlement.
    uniqueIndex('grants_live_idx').on(t.identityId, t.entitlementId).where(sql`status <> 'revoked'`),
    index('grants_status_idx').on(t.status),
  ],
);

/**
 * One approver's part in one stage of a request: stage 1, 2... (manager, then owner), or a
 * mover's review by the new manager. An escalation adds a row for the approver's manager
 * (escalated_from names the row it escalates); either may decide while the stage is open.
 */
export const approvals = pgTable(
  'approvals',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    requestId: uuid('request_id').notNull().references(() => accessRequests.id),
    stage: integer('stage').notNull(),
    role: text('role').notNull(),
    /** Canonical employee id of who decides. */
    approver: text('approver').notNull(),
    /** Why the stage went to the fallback approver; null when its own approver decides. */
    fallbackReason: text('fallback_reason'),
    escalatedFrom: uuid('escalated_from'),
    dueAt: tz('due_at').notNull(),
    remindersSent: integer('reminders_sent').notNull().default(0),
    escalatedTo: text('escalated_to'),
    escalatedAt: tz('escalated_at'),
    /** Why escalation found nobody, when it did not happen. */
    escalationNote: text('escalation_note'),
    decision: text('decision'),
    decidedBy: text('decided_by'),
    decidedAt: tz('decided_at'),
    /** How the decision came: the emailed page, the API, the CLI, or the deadline. */
    decidedVia: text('decided_via'),
    comment: text('comment'),
    createdAt: createdAt(),
  },
  (t) => [
    check('approvals_decision_check', sql`decision is null or decision in ('approved', 'denied', 'expired', 'cancelled')`),
    check('approvals_role_check', inList('role', ['manager', 'owner', 'escalation', 'mover_review', 'break_glass_review'])),
    uniqueIndex('approvals_stage_approver_idx').on(t.requestId, t.stage, t.approver),
    index('approvals_approver_idx').on(t.approver).where(sql`decision is null`),
  ],
);

/**
 * The links emailed to approvers: 256 random bits each, kept only as SHA-256. Every message
 * (the request, a reminder, an escalation) carries its own; any of a stage's links works until
 * the stage is decided, and the decision uses them all up.
 */
export const approvalTokens = pgTable('approval_tokens', {
  tokenHash: text('token_hash').primaryKey(),
  approvalId: uuid('approval_id').notNull().references(() => approvals.id),
  purpose: text('purpose').notNull(),
  createdAt: createdAt(),
  expiresAt: tz('expires_at').notNull(),
  usedAt: tz('used_at'),
});

export const alerts = pgTable(
  'alerts',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    kind: text('kind').notNull(),
    severity: text('severity').notNull(),
    subject: text('subject').notNull(),
    details: jsonb('details').notNull().default({}),
    status: text('status').notNull().default('open'),
    /** One open alert per cause: a retried activity must not raise it twice. */
    dedupeKey: text('dedupe_key').notNull(),
    notifications: jsonb('notifications').$type<Array<{ channel: string; at: string; ok: boolean; error?: string }>>().notNull().default([]),
    /** How often the cause was seen while the alert was open (a retry raising it again counts), and when last. */
    count: integer('count').notNull().default(1),
    lastSeenAt: tz('last_seen_at').notNull().defaultNow(),
    /**
     * Delivery to people (email, signed webhook): pending until handed to every channel,
     * delivered, or failed (shown in the API; retried). `none` when no channel is configured.
     */
    deliveryStatus: text('delivery_status').notNull().default('pending'),
    deliveredAt: tz('delivered_at'),
    createdAt: createdAt(),
    acknowledgedAt: tz('acknowledged_at'),
    resolvedAt: tz('resolved_at'),
  },
  (t) => [
    check('alerts_status_check', inList('status', ['open', 'acknowledged', 'resolved'])),
    check('alerts_severity_check', inList('severity', ['info', 'warning', 'critical'])),
    uniqueIndex('alerts_dedupe_idx').on(t.dedupeKey),
    check('alerts_delivery_status_check', inList('delivery_status', ['pending', 'delivered', 'failed', 'none'])),
    // The delivery dispatcher scans for alerts not yet handed to their channels.
    index('alerts_undelivered_idx').on(t.createdAt).where(sql`delivery_status = 'pending'`),
    index('alerts_status_idx').on(t.status, t.createdAt),
  ],
);

export const auditLog = pgTable(
  'audit_log',
  {
    seq: bigserial('seq', { mode: 'number' }).primaryKey(),
    at: tz('at').notNull().defaultNow(),
    actor: text('actor').notNull(),
    action: text('action').notNull(),
    subjectType: text('subject_type').notNull(),
    subjectId: text('subject_id').notNull(),
    before: jsonb('before'),
    after: jsonb('after'),
    correlationId: text('correlation_id'),
    /** Hash of the previous row; the first row carries 64 zeros. */
    prevHash: text('prev_hash').notNull(),
    hash: text('hash').notNull(),
  },
  (t) => [
    index('audit_log_subject_idx').on(t.subjectType, t.subjectId),
    uniqueIndex('audit_log_prev_hash_idx').on(t.prevHash),
    // A request's timeline is every row correlated with it (its approvals, its grant).
    index('audit_log_correlation_idx').on(t.correlationId),
  ],
);

export const apiTokens = pgTable('api_tokens', {
  id: uuid('id').primaryKey().defaultRandom(),
  name: text('name').notNull(),
  tokenHash: text('token_hash').notNull().unique(),
  scopes: text('scopes').array().notNull(),
  /** The person the token acts as (canonical employee id): it requests for them and decides as them. */
  employeeId: text('employee_id'),
  createdAt: createdAt(),
  lastUsedAt: tz('last_used_at'),
  revokedAt: tz('revoked_at'),
});

/**
 * The kill switch of a target: while it is paused, nothing calls it (the connectors answer as
 * if it were unreachable), its grants and revocations wait, in order, and on resume they drain
 * (leavers first) through the target-recovery workflow. Audited on every change.
 */
export const targetControls = pgTable('target_controls', {
  targetId: text('target_id').primaryKey(),
  paused: boolean('paused').notNull().default(false),
  reason: text('reason'),
  changedBy: text('changed_by').notNull(),
  changedAt: tz('changed_at').notNull().defaultNow(),
});

/**
 * One reconcile of one target (activities/reconcile.ts): when it ran, what it found (counts
 * per kind) or why it could not run. Kept, so the API shows the last runs.
 */
export const reconcileRuns = pgTable(
  'reconcile_runs',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    target: text('target').notNull(),
    /** Whether it was asked to repair (`jml reconcile --repair`, or the target's autoRemediate). */
    repair: boolean('repair').notNull().default(false),
    startedAt: tz('started_at').notNull().defaultNow(),
    finishedAt: tz('finished_at'),
    counts: jsonb('counts').$type<Record<string, number>>().notNull().default({}),
    error: text('error'),
  },
  (t) => [index('reconcile_runs_started_idx').on(t.startedAt, t.id)],
);
