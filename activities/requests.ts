// Activities of access requests and their approvals: the database side of the accessRequest
// and approval workflows, and the mail they send. Every one is idempotent (a retried activity
// finds its own row) and writes its audit rows in the same transaction as the change. The
// grant itself goes through grants.ts, the one verified path birthright access uses too.
import { randomBytes } from 'node:crypto';
import { ApplicationFailure, log } from '@temporalio/activity';
import { and, eq, inArray, isNull, ne, sql } from 'drizzle-orm';
import { loadAccessContext } from '../db/access-context.js';
import { writeAudit } from '../db/audit.js';
import { hashToken } from '../db/token-hash.js';
import type { DbOrTx, Tx } from '../db/client.js';
import { accessRequests, approvals, approvalTokens, entitlements, grants, identities } from '../db/schema.js';
import { escalationApprover, resolveApprovalStages, type ApproverRole } from '../domain/access-policy.js';
import { evaluateBirthright } from '../domain/birthright.js';
import { formatDuration } from '../domain/duration.js';
import { canonicalEmployeeId } from '../domain/employee-id.js';
import { canMoveRequest } from '../domain/grant-status.js';
import type { RevokeReason } from '../domain/lifecycle.js';
import type { ApprovalRole } from '../domain/request-view.js';
import { ENGINE_ACTOR, type EntitlementKind, type GrantStatus, type IdentityAttributes, type RequestStatus } from '../domain/types.js';
import { approvalMail, requesterMail, type ApprovalMailKind, type MailEntitlement, type MailPerson, type RequesterMailKind } from '../services/mail-templates.js';
import { raiseAlert } from '../services/alerts.js';
import { MailError } from '../services/mailer.js';
import { DECISION_REFUSALS } from '../workflows/request-messages.js';
import type { ActivityDeps } from './deps.js';
import { grantHelpers, type PlannedGrant } from './grants.js';

/** What the workflows need to know of a request and of the approval policy, read once. */
export interface RequestSnapshot {
  requestId: string;
  kind: 'requested' | 'jit';
  /** A break-glass elevation: granted without approval, alerted at once, reviewed by the owner after. */
  breakGlass: boolean;
  /** JIT: the requester is emailed this long before the end. */
  warnBeforeMs: number;
  employeeId: string;
  entitlementId: string;
  status: RequestStatus;
  /** The employee id of the requester, or null (an admin token bound to nobody, the engine). */
  requesterId: string | null;
  durationMs: number | null;
  /** The approval stages the entitlement's route asks for, in order. */
  roles: ApproverRole[];
  approval: { timeoutMs: number; reminderAfterMs: number; escalateAfterMs: number; moverReview: { timeoutMs: number; default: 'remove' | 'keep' } };
  /** The connector retry policy and the backoff between failed grant attempts. */
  retries: { initialInterval: number; maximumInterval: number; maximumAttempts: number; afterFailure: { initialInterval: number; maximumInterval: number } };
}

export interface OpenStageInput {
  requestId: string;
  stage: number;
  role: StageRole;
  /** ISO instant the stage expires at (the workflow's clock). */
  dueAt: string;
}

export type OpenStageResult = { ok: true; approvalId: string; approverId: string } | { ok: false; reason: string };

export interface RecordDecisionInput {
  requestId: string;
  stage: number;
  approverId: string;
  decision: 'approved' | 'denied';
  comment?: string | null;
  via: string;
  tokenHash?: string;
}

export type RemovalPlan =
  | { action: 'revoke'; grantId: string; grantStatus: GrantStatus; kind: EntitlementKind; target: string }
  | { action: 'retain'; retainedBy: string[]; grantStatus: GrantStatus }
  | { action: 'none'; grantStatus: GrantStatus | null };

/** The requester is a person when requested_by is an employee id (not `api:<token>` nor the engine). */
function requesterIdOf(requestedBy: string): string | null {
  return requestedBy.includes(':') || requestedBy === ENGINE_ACTOR ? null : canonicalEmployeeId(requestedBy);
}

function mailPerson(employeeId: string, attributes: IdentityAttributes | undefined): MailPerson {
  const name = [attributes?.givenName, attributes?.familyName].filter((x) => typeof x === 'string' && x.trim() !== '').join(' ');
  return { employeeId, name: name || null };
}

function mailEntitlement(entitlement: typeof entitlements.$inferSelect): MailEntitlement {
  return { id: entitlement.id, name: entitlement.name, risk: entitlement.risk as MailEntitlement['risk'], target: entitlement.target };
}

const stageClosed = (message: string) => ApplicationFailure.nonRetryable(message, DECISION_REFUSALS.stageClosed);

/**
 * Serialises what changes who holds one access (a person and an entitlement): a request
 * joining or creating its grant, and a removal deciding whether anything else still wants it.
 */
async function lockAccess(tx: Tx, identityId: string, entitlementId: string): Promise<void> {
  await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${`${identityId}:${entitlementId}`}))`);
}

/** A request (an elevation too) with its person and entitlement; a missing one fails for good. */
export async function loadRequestRow(db: DbOrTx, requestId: string) {
  const [row] = await db
    .select({ request: accessRequests, identity: identities, entitlement: entitlements })
    .from(accessRequests)
    .innerJoin(identities, eq(identities.id, accessRequests.identityId))
    .innerJoin(entitlements, eq(entitlements.id, accessRequests.entitlementId))
    .where(eq(accessRequests.id, requestId));
  if (!row) throw ApplicationFailure.nonRetryable(`access request ${requestId} does not exist`, 'NotFound');
  return row;
}

export function createRequestActivities(deps: ActivityDeps) {
  const { db, config, mailer, publicUrl } = deps;
  const { moveGrant } = grantHelpers(deps);
  const base = publicUrl.replace(/\/+$/, '');


  async function person(employeeId: string | null) {
    if (!employeeId) return undefined;
    const [row] = await db.select().from(identities).where(eq(identities.employeeId, canonicalEmployeeId(employeeId)));
    return row;
  }

  /**
   * Sends one message. A failure the SMTP server may get over throws (the activity retries:
   * mail is delayed, not lost); a person without a usable address gets an alert instead
   * (an approver can still decide in the API or the CLI).
   */
  async function deliver(to: { employeeId: string; attributes: IdentityAttributes } | undefined, message: { subject: string; text: string; html: string }, what: string, correlationId: string): Promise<boolean> {
    const address = typeof to?.attributes.email === 'string' && to.attributes.email.includes('@') ? to.attributes.email : null;
    if (to && address) {
      try {
        await mailer.send({ to: address, ...message });
        return true;
      } catch (err) {
        if (!(err instanceof MailError && err.permanent)) throw err;
      }
    }
    await db.transaction((tx) =>
      raiseAlert(
        tx,
        {
          kind: 'mail_undeliverable',
          severity: 'warning',
          subject: `${what} could not be emailed: ${to ? `${to.employeeId} has no usable email address` : 'nobody to send it to'}`,
          details: { employeeId: to?.employeeId ?? null, what },
          dedupeKey: `mail_undeliverable:${correlationId}:${what}:${to?.employeeId ?? 'nobody'}`,
        },
        correlationId,
      ),
    );
    return false;
  }

  /** A fresh single-use link for one approval row: 256 random bits, only the hash is kept. */
  async function newLink(tx: Tx, approvalId: string, purpose: string, expiresAt: Date): Promise<string> {
    const token = randomBytes(32).toString('base64url');
    await tx.insert(approvalTokens).values({ tokenHash: hashToken(token), approvalId, purpose, expiresAt });
    return `${base}/approvals/${token}`;
  }

  return {
    async loadRequest(requestId: string): Promise<RequestSnapshot> {
      const { request, identity, entitlement } = await loadRequestRow(db, requestId);
      const configured = config.entitlements.find((e) => e.id === entitlement.id);
      const jit = request.kind === 'jit' ? configured?.jit : undefined;
      // An elevation is approved as its jit policy says (a break-glass one by nobody, first).
      const route = jit ? (request.breakGlass ? 'none' : jit.approval) : (configured?.approver ?? config.approval.approver);
      const a = config.approval;
      return {
        requestId,
        kind: request.kind === 'jit' ? 'jit' : 'requested',
        breakGlass: request.breakGlass,
        warnBeforeMs: jit?.warnBefore ?? 0,
        employeeId: identity.employeeId,
        entitlementId: entitlement.id,
        status: request.status as RequestStatus,
        requesterId: requesterIdOf(request.requestedBy),
        durationMs: request.durationMs ?? null,
        roles: route === 'none' ? [] : route === 'manager_then_owner' ? ['manager', 'owner'] : [route],
        approval: { timeoutMs: a.timeout, reminderAfterMs: a.reminderAfter, escalateAfterMs: a.escalateAfter, moverReview: { timeoutMs: a.moverReview.timeout, default: a.moverReview.default } },
        retries: config.retries,
      };
    },

    /**
     * Resolves who decides the stage now (the pure policy, on today's directory: a manager
     * who left since the request falls to the fallback approver) and records the approval
     * row. Idempotent by (request, stage, approver). Nobody to ask: { ok: false } with why.
     */
    async openApprovalStage(input: OpenStageInput): Promise<OpenStageResult> {
      const { request, identity, entitlement } = await loadRequestRow(db, input.requestId);
      const context = await loadAccessContext(db, config, identity.employeeId, { exceptRequestId: input.requestId });
      const listed = context.entitlements.find((e) => e.id === entitlement.id);
      if (!listed || !context.subject) return { ok: false, reason: `${entitlement.id} or ${identity.employeeId} is no longer known` };
      const review = input.role === 'mover_review' || input.role === 'break_glass_review';
      const resolved = resolveApprovalStages({
        subjectId: identity.employeeId,
        subject: context.subject,
        // A review asks the new manager about access someone else asked for: the requester is not excluded.
        requestedBy: review ? null : requesterIdOf(request.requestedBy),
        // A mover's review goes to the (new) manager, a break-glass review to the owner.
        entitlement: { ...listed, approver: input.role === 'mover_review' ? 'manager' : input.role === 'break_glass_review' ? 'owner' : input.role },
        policy: context.approval,
        directory: context.directory,
      });
      if (!resolved.ok) return { ok: false, reason: resolved.detail };
      const stage = resolved.stages[0]!;
      return db.transaction(async (tx) => {
        const [existing] = await tx
          .select()
          .from(approvals)
          .where(and(eq(approvals.requestId, input.requestId), eq(approvals.stage, input.stage), ne(approvals.role, 'escalation')));
        if (existing) return { ok: true as const, approvalId: existing.id, approverId: existing.approver };
        const [row] = await tx
          .insert(approvals)
          .values({ requestId: input.requestId, stage: input.stage, role: input.role, approver: stage.approverId, fallbackReason: stage.fallbackReason, dueAt: new Date(input.dueAt) })
          .returning();
        if (!row) throw new Error('approval insert returned no row');
        await writeAudit(tx, {
          actor: ENGINE_ACTOR,
          action: 'approval.opened',
          subjectType: 'approval',
          subjectId: row.id,
          after: { stage: input.stage, role: input.role, approver: stage.approverId, fallbackReason: stage.fallbackReason, dueAt: input.dueAt },
          correlationId: input.requestId,
        });
        return { ok: true as const, approvalId: row.id, approverId: row.approver };
      });
    },

    /**
     * Emails the approver a "Review request" link (the request, a reminder, an escalation, a
     * mover's review). Each message carries its own token; all of a stage's links work until
     * the stage is decided. A retry sends a new link and the earlier one still works.
     */
    async sendApprovalMail(input: { approvalId: string; kind: ApprovalMailKind; reminder?: number; moverDefault?: 'remove' | 'keep' }): Promise<void> {
      const [approval] = await db.select().from(approvals).where(eq(approvals.id, input.approvalId));
      if (!approval) throw ApplicationFailure.nonRetryable(`approval ${input.approvalId} does not exist`, 'NotFound');
      if (approval.decision !== null) return; // decided meanwhile: nothing to ask
      const { request, identity, entitlement } = await loadRequestRow(db, approval.requestId);
      const approver = await person(approval.approver);
      const requesterId = requesterIdOf(request.requestedBy);
      const requester = requesterId && requesterId !== identity.employeeId ? await person(requesterId) : undefined;
      const silent = approval.escalatedFrom ? (await db.select().from(approvals).where(eq(approvals.id, approval.escalatedFrom)))[0] : undefined;
      const link = await db.transaction(async (tx) => {
        const url = await newLink(tx, approval.id, input.kind, approval.dueAt);
        if (input.kind === 'reminder') await tx.update(approvals).set({ remindersSent: sql`greatest(${approvals.remindersSent}, ${input.reminder ?? 1})` }).where(eq(approvals.id, approval.id));
        await writeAudit(tx, { actor: ENGINE_ACTOR, action: `approval.mail_${input.kind}`, subjectType: 'approval', subjectId: approval.id, after: { approver: approval.approver, kind: input.kind }, correlationId: approval.requestId });
        return url;
      });
      const stages = await db.select({ stage: approvals.stage }).from(approvals).where(eq(approvals.requestId, approval.requestId));
      const lastStage = Math.max(...stages.map((r) => r.stage));
      const message = approvalMail({
        kind: input.kind,
        requestId: request.id,
        subject: mailPerson(identity.employeeId, identity.attributes as IdentityAttributes),
        requester: requester ? mailPerson(requester.employeeId, requester.attributes as IdentityAttributes) : null,
        entitlement: mailEntitlement(entitlement),
        justification: request.justification,
        duration: request.durationMs ? formatDuration(request.durationMs) : null,
        dueAt: approval.dueAt.toISOString(),
        reviewUrl: link,
        stage: lastStage > 1 || approval.stage > 1 ? { number: approval.stage, of: Math.max(lastStage, approval.stage), role: approval.role === 'owner' ? 'resource owner' : approval.role === 'manager' ? 'manager' : approval.role } : null,
        silentApprover: silent ? mailPerson(silent.approver, (await person(silent.approver))?.attributes as IdentityAttributes | undefined) : null,
        ...(input.moverDefault ? { defaultAtDeadline: input.moverDefault } : {}),
      });
      await deliver(approver ? { employeeId: approver.employeeId, attributes: approver.attributes as IdentityAttributes } : undefined, message, `approval ${input.kind}`, approval.requestId);
    },

    /**
     * The approver stayed silent: the stage also goes to their manager (once). Nobody to go
     * to: the reason is recorded and the stage keeps waiting until it expires.
     */
    async escalateStage(input: { approvalId: string; dueAt: string }): Promise<{ ok: true; approvalId: string; approverId: string } | { ok: false; reason: string }> {
      const [approval] = await db.select().from(approvals).where(eq(approvals.id, input.approvalId));
      if (!approval) throw ApplicationFailure.nonRetryable(`approval ${input.approvalId} does not exist`, 'NotFound');
      const { request, identity } = await loadRequestRow(db, approval.requestId);
      const context = await loadAccessContext(db, config, identity.employeeId, { extra: [approval.approver], exceptRequestId: approval.requestId });
      const to = escalationApprover(approval.approver, context.directory, [identity.employeeId, requesterIdOf(request.requestedBy)]);
      return db.transaction(async (tx) => {
        if (!to.ok) {
          await tx.update(approvals).set({ escalationNote: to.reason }).where(eq(approvals.id, approval.id));
          await writeAudit(tx, { actor: ENGINE_ACTOR, action: 'approval.not_escalated', subjectType: 'approval', subjectId: approval.id, after: { reason: to.reason }, correlationId: approval.requestId });
          return { ok: false as const, reason: to.reason };
        }
        const [existing] = await tx.select().from(approvals).where(and(eq(approvals.requestId, approval.requestId), eq(approvals.stage, approval.stage), eq(approvals.approver, to.approverId)));
        const row =
          existing ??
          (
            await tx
              .insert(approvals)
              .values({ requestId: approval.requestId, stage: approval.stage, role: 'escalation', approver: to.approverId, escalatedFrom: approval.id, dueAt: new Date(input.dueAt) })
              .returning()
          )[0];
        if (!row) throw new Error('approval insert returned no row');
        if (!existing) {
          await tx.update(approvals).set({ escalatedTo: to.approverId, escalatedAt: new Date() }).where(eq(approvals.id, approval.id));
          await writeAudit(tx, { actor: ENGINE_ACTOR, action: 'approval.escalated', subjectType: 'approval', subjectId: approval.id, after: { from: approval.approver, to: to.approverId }, correlationId: approval.requestId });
        }
        return { ok: true as const, approvalId: row.id, approverId: row.approver };
      });
    },

    /**
     * Records a decision on a stage: the decider's row gets it, the stage's other rows are
     * closed (superseded), and every link of the stage is used up. The request must still
     * await it (a leaver's requests are cancelled under the approver's feet).
     */
    async recordDecision(input: RecordDecisionInput): Promise<{ decidedAt: string }> {
      return db.transaction(async (tx) => {
        const [request] = await tx.select().from(accessRequests).where(eq(accessRequests.id, input.requestId)).for('update');
        if (!request) throw ApplicationFailure.nonRetryable(`access request ${input.requestId} does not exist`, 'NotFound');
        const rows = await tx.select().from(approvals).where(and(eq(approvals.requestId, input.requestId), eq(approvals.stage, input.stage)));
        const mine = rows.find((r) => r.approver === canonicalEmployeeId(input.approverId));
        if (!mine) throw ApplicationFailure.nonRetryable('you are not an approver of this stage', DECISION_REFUSALS.notApprover);
        // A retried activity whose first attempt committed: the same decision stands.
        if (mine.decision === input.decision && mine.decidedAt) return { decidedAt: mine.decidedAt.toISOString() };
        if (rows.some((r) => r.decision !== null && r.decidedVia !== 'superseded' && r.decidedVia !== 'engine')) throw ApplicationFailure.nonRetryable('this stage has already been decided', DECISION_REFUSALS.alreadyDecided);
        // Closed by the engine: expired, withdrawn, or cancelled with a leaver's requests.
        if (rows.some((r) => r.decidedVia === 'engine')) throw stageClosed('this approval is closed');
        // A mover's review concerns granted access, a break-glass review what was taken (even
        // once it has ended: the owner must close it); every other stage a request awaiting a decision.
        const role = rows.find((r) => r.role !== 'escalation')?.role;
        const open =
          role === 'break_glass_review' ? true : role === 'mover_review' ? request.status === 'approved' && request.revocationStatus === null : request.status === 'pending_approval';
        if (!open) throw stageClosed(`the request is ${request.status}`);
        const decidedAt = new Date();
        const comment = input.comment ?? null;
        await tx
          .update(approvals)
          .set({ decision: input.decision, decidedBy: mine.approver, decidedAt, decidedVia: input.via, comment })
          .where(eq(approvals.id, mine.id));
        await tx
          .update(approvals)
          .set({ decision: 'cancelled', decidedAt, decidedVia: 'superseded' })
          .where(and(eq(approvals.requestId, input.requestId), eq(approvals.stage, input.stage), ne(approvals.id, mine.id), isNull(approvals.decision)));
        await tx
          .update(approvalTokens)
          .set({ usedAt: decidedAt })
          .where(and(inArray(approvalTokens.approvalId, rows.map((r) => r.id)), isNull(approvalTokens.usedAt)));
        await writeAudit(tx, {
          actor: mine.approver,
          action: `approval.${input.decision}`,
          subjectType: 'approval',
          subjectId: mine.id,
          before: { decision: null },
          after: { decision: input.decision, stage: input.stage, via: input.via, comment },
          correlationId: input.requestId,
        });
        return { decidedAt: decidedAt.toISOString() };
      });
    },

    /** Closes a stage nobody decided: expired at its deadline, or cancelled (withdrawn, no approver). */
    async closeStage(input: { requestId: string; stage: number; decision: 'expired' | 'cancelled'; reason: string }): Promise<void> {
      await db.transaction(async (tx) => {
        const rows = await tx.select().from(approvals).where(and(eq(approvals.requestId, input.requestId), eq(approvals.stage, input.stage)));
        const open = rows.filter((r) => r.decision === null);
        if (open.length === 0) return;
        const at = new Date();
        await tx.update(approvals).set({ decision: input.decision, decidedAt: at, decidedVia: 'engine', comment: input.reason }).where(inArray(approvals.id, open.map((r) => r.id)));
        await tx.update(approvalTokens).set({ usedAt: at }).where(and(inArray(approvalTokens.approvalId, rows.map((r) => r.id)), isNull(approvalTokens.usedAt)));
        for (const row of open) {
          await writeAudit(tx, { actor: ENGINE_ACTOR, action: `approval.${input.decision}`, subjectType: 'approval', subjectId: row.id, after: { decision: input.decision, reason: input.reason }, correlationId: input.requestId });
        }
      });
    },

    /**
     * Moves the request status (approved, denied, expired, cancelled), audited. Returns the
     * status it is in afterwards: a request the leaver path cancelled meanwhile stays
     * cancelled, and the workflow stops there.
     */
    async setRequestStatus(input: { requestId: string; status: RequestStatus; reason?: string | null; actor?: string }): Promise<RequestStatus> {
      return db.transaction(async (tx) => {
        const [row] = await tx.select().from(accessRequests).where(eq(accessRequests.id, input.requestId)).for('update');
        if (!row) throw ApplicationFailure.nonRetryable(`access request ${input.requestId} does not exist`, 'NotFound');
        const from = row.status as RequestStatus;
        if (from === input.status || !canMoveRequest(from, input.status)) return from;
        await tx
          .update(accessRequests)
          .set({ status: input.status, decidedAt: new Date(), updatedAt: new Date(), ...(input.reason ? { reason: input.reason } : {}) })
          .where(eq(accessRequests.id, input.requestId));
        await writeAudit(tx, {
          actor: input.actor ?? ENGINE_ACTOR,
          action: `access_request.${input.status}`,
          subjectType: 'access_request',
          subjectId: input.requestId,
          before: { status: from },
          after: { status: input.status, reason: input.reason ?? null },
          correlationId: input.requestId,
        });
        return input.status;
      });
    },

    /**
     * The grant an approved request provisions: a new pending grant, or the live grant that
     * already covers the entitlement (birthright, or another request), which it then shares.
     */
    async createRequestedGrant(requestId: string): Promise<PlannedGrant | null> {
      return db.transaction(async (tx) => {
        const { request, entitlement } = await loadRequestRow(tx, requestId);
        await lockAccess(tx, request.identityId, request.entitlementId);
        let [grant] = await tx.select().from(grants).where(and(eq(grants.identityId, request.identityId), eq(grants.entitlementId, request.entitlementId), ne(grants.status, 'revoked')));
        // Another request's removal of this access is under way: never join a grant being
        // revoked (it would be gone under this request); the caller asks again shortly.
        if (grant?.status === 'revoking') return null;
        if (!grant) {
          [grant] = await tx.insert(grants).values({ identityId: request.identityId, entitlementId: request.entitlementId, requestId, status: 'pending' }).returning();
          if (!grant) throw new Error('grant insert returned no row');
          await writeAudit(tx, { actor: ENGINE_ACTOR, action: 'grant.pending', subjectType: 'grant', subjectId: grant.id, after: { status: 'pending', entitlementId: request.entitlementId }, correlationId: requestId });
        }
        return { grantId: grant.id, requestId: grant.requestId, entitlementId: entitlement.id, kind: entitlement.kind as EntitlementKind, target: entitlement.target, grantStatus: grant.status as GrantStatus };
      });
    },

    /** The grant is proven: a time-bound request's end is fixed from now. Returns it (ISO) or null. */
    async markRequestGranted(requestId: string): Promise<string | null> {
      return db.transaction(async (tx) => {
        const [row] = await tx.select().from(accessRequests).where(eq(accessRequests.id, requestId)).for('update');
        if (!row) throw ApplicationFailure.nonRetryable(`access request ${requestId} does not exist`, 'NotFound');
        if (row.expiresAt || !row.durationMs) return row.expiresAt?.toISOString() ?? null;
        const expiresAt = new Date(Date.now() + row.durationMs);
        await tx.update(accessRequests).set({ expiresAt, updatedAt: new Date() }).where(eq(accessRequests.id, requestId));
        await tx.update(grants).set({ expiresAt, updatedAt: new Date() }).where(and(eq(grants.requestId, requestId), ne(grants.status, 'revoked')));
        await writeAudit(tx, { actor: ENGINE_ACTOR, action: 'access_request.expiry_set', subjectType: 'access_request', subjectId: requestId, after: { expiresAt: expiresAt.toISOString() }, correlationId: requestId });
        return expiresAt.toISOString();
      });
    },

    /**
     * Removal, reference-counted: the access stays while a birthright rule or another live
     * approved request still makes it due (the grant then belongs to that reason, so a later
     * move or removal counts right), and goes otherwise. Marks the revocation status.
     */
    async planRemoval(input: { requestId: string; reason: RevokeReason }): Promise<RemovalPlan> {
      return db.transaction(async (tx) => {
        const { request, identity, entitlement } = await loadRequestRow(tx, input.requestId);
        await lockAccess(tx, request.identityId, request.entitlementId);
        const [grant] = await tx.select().from(grants).where(and(eq(grants.identityId, request.identityId), eq(grants.entitlementId, request.entitlementId), ne(grants.status, 'revoked')));
        const mark = async (status: 'pending' | 'revoked' | 'retained', retainedBy: string[] | null) => {
          await tx.update(accessRequests).set({ revocationStatus: status, retainedBy, updatedAt: new Date() }).where(eq(accessRequests.id, input.requestId));
          await writeAudit(tx, { actor: ENGINE_ACTOR, action: `access_request.revocation_${status}`, subjectType: 'access_request', subjectId: input.requestId, after: { revocationStatus: status, retainedBy, reason: input.reason }, correlationId: input.requestId });
        };
        if (!grant) {
          await mark('revoked', null);
          return { action: 'none' as const, grantStatus: null };
        }
        const live = identity.status !== 'terminated' && identity.status !== 'rescinded';
        const rules = live ? (evaluateBirthright(config.birthright, identity.attributes as IdentityAttributes).find((d) => d.entitlementId === entitlement.id)?.rules ?? []) : [];
        const others = live
          ? await tx
              .select({ id: accessRequests.id, expiresAt: accessRequests.expiresAt })
              .from(accessRequests)
              .where(
                and(
                  eq(accessRequests.identityId, request.identityId),
                  eq(accessRequests.entitlementId, request.entitlementId),
                  ne(accessRequests.id, input.requestId),
                  ne(accessRequests.kind, 'birthright'),
                  inArray(accessRequests.status, ['approved', 'auto_approved']),
                  isNull(accessRequests.revocationStatus),
                ),
              )
              .orderBy(sql`${accessRequests.expiresAt} desc nulls first`)
          : [];
        const retainedBy = [...rules.map((r) => `birthright rule ${r}`), ...others.map((o) => `request ${o.id}`)];
        if (retainedBy.length === 0) {
          await mark('pending', null);
          // Revoking from here on, in this transaction: a request approved a moment later
          // waits for the revocation to be proven and then gets a grant of its own.
          await moveGrant(tx, grant.id, 'revoking', { revokeReason: input.reason }, 'grant.revoking');
          return { action: 'revoke' as const, grantId: grant.id, grantStatus: 'revoking' as const, kind: entitlement.kind as EntitlementKind, target: entitlement.target };
        }
        if (grant.requestId === input.requestId) {
          // The grant now belongs to what keeps it: another request, or a birthright request.
          let owner = others[0]?.id;
          if (!owner) {
            const key = `birthright:retained:${grant.id}`;
            const [found] = await tx.select({ id: accessRequests.id }).from(accessRequests).where(eq(accessRequests.idempotencyKey, key));
            owner =
              found?.id ??
              (
                await tx
                  .insert(accessRequests)
                  .values({ idempotencyKey: key, identityId: request.identityId, entitlementId: request.entitlementId, kind: 'birthright', status: 'auto_approved', requestedBy: ENGINE_ACTOR, reason: `birthright rule ${rules.join(', ')}`, rules, decidedAt: new Date() })
                  .returning({ id: accessRequests.id })
              )[0]?.id;
          }
          if (!owner) throw new Error('no request to hand the grant to');
          // It ends when its new owner does (never, for birthright): the longest-lived other reason takes it.
          await tx.update(grants).set({ requestId: owner, expiresAt: others[0]?.expiresAt ?? null, updatedAt: new Date() }).where(eq(grants.id, grant.id));
          await writeAudit(tx, { actor: ENGINE_ACTOR, action: 'grant.handed_over', subjectType: 'grant', subjectId: grant.id, before: { requestId: input.requestId }, after: { requestId: owner }, correlationId: input.requestId });
        }
        await mark('retained', retainedBy);
        return { action: 'retain' as const, retainedBy, grantStatus: grant.status as GrantStatus };
      });
    },

    /** A person moved: the requests whose access the new manager is asked to review. */
    async requestsForReview(input: { employeeId: string; entitlementIds: string[]; eventId: string }): Promise<string[]> {
      if (input.entitlementIds.length === 0) return [];
      const rows = await db
        .select({ id: accessRequests.id })
        .from(accessRequests)
        .innerJoin(identities, eq(identities.id, accessRequests.identityId))
        .innerJoin(grants, eq(grants.requestId, accessRequests.id))
        .where(
          and(
            eq(identities.employeeId, input.employeeId),
            inArray(accessRequests.entitlementId, input.entitlementIds),
            eq(accessRequests.kind, 'requested'),
            eq(accessRequests.status, 'approved'),
            isNull(accessRequests.revocationStatus),
            ne(grants.status, 'revoked'),
          ),
        );
      const ids = rows.map((r) => r.id).sort();
      await db.transaction((tx) =>
        writeAudit(tx, { actor: ENGINE_ACTOR, action: 'mover.review_requested', subjectType: 'identity', subjectId: input.employeeId, after: { requests: ids, entitlementIds: input.entitlementIds }, correlationId: input.eventId }),
      );
      return ids;
    },

    /** What the new manager's review of a mover's requested access decided (or the default did). */
    async recordReviewOutcome(input: { requestId: string; stage: number; keep: boolean; decision: string; decidedBy: string | null }): Promise<void> {
      await db.transaction((tx) =>
        writeAudit(tx, {
          actor: input.decidedBy ?? ENGINE_ACTOR,
          action: input.keep ? 'access_request.review_kept' : 'access_request.review_removed',
          subjectType: 'access_request',
          subjectId: input.requestId,
          after: { stage: input.stage, decision: input.decision, keep: input.keep, byDefault: input.decision === 'expired' },
          correlationId: input.requestId,
        }),
      );
    },

    /** Tells the requester (and the subject, when someone else asked) what became of the request. */
    async notifyRequester(input: { requestId: string; kind: RequesterMailKind }): Promise<void> {
      const { request, identity, entitlement } = await loadRequestRow(db, input.requestId);
      const requesterId = requesterIdOf(request.requestedBy);
      const recipients = [...new Set([requesterId ?? identity.employeeId, identity.employeeId])];
      const [decision] = await db
        .select()
        .from(approvals)
        .where(and(eq(approvals.requestId, input.requestId), inArray(approvals.decision, ['approved', 'denied']), ne(approvals.decidedVia, 'superseded')))
        .orderBy(sql`${approvals.decidedAt} desc`)
        .limit(1);
      const decider = decision?.decidedBy ? await person(decision.decidedBy) : undefined;
      const message = requesterMail({
        kind: input.kind,
        requestId: request.id,
        subject: mailPerson(identity.employeeId, identity.attributes as IdentityAttributes),
        entitlement: mailEntitlement(entitlement),
        decidedBy: decision?.decidedBy ? mailPerson(decision.decidedBy, decider?.attributes as IdentityAttributes | undefined) : null,
        comment: decision?.comment ?? null,
        expiresAt: request.expiresAt?.toISOString() ?? null,
        retainedBy: request.retainedBy ?? [],
        reason: request.reason ?? null,
        statusUrl: `${base}${request.kind === 'jit' ? '/api/v1/jit/elevations/' : '/api/v1/access-requests/'}${request.id}`,
      });
      for (const id of recipients) {
        const who = await person(id);
        await deliver(who ? { employeeId: who.employeeId, attributes: who.attributes as IdentityAttributes } : undefined, message, `requester ${input.kind}`, request.id);
      }
      log.info('requester notified', { requestId: request.id, kind: input.kind });
    },
  };
}

/** The approval roles a stage row can carry, for the workflow's types. */
export type StageRole = Extract<ApprovalRole, 'manager' | 'owner' | 'mover_review' | 'break_glass_review'>;
