// Activities only elevations have: an extension checked against the policy again, and the
// alert a break-glass elevation raises at once and resolves when its owner has reviewed it.
// Everything else (stages, grant, expiry, removal) is the access request's own.
import { ApplicationFailure } from '@temporalio/activity';
import { and, eq, ne } from 'drizzle-orm';
import { jitPolicies } from '../db/access-context.js';
import { writeAudit } from '../db/audit.js';
import { accessRequests, grants } from '../db/schema.js';
import { checkExtension } from '../domain/jit-policy.js';
import { ENGINE_ACTOR } from '../domain/types.js';
import { raiseAlert, resolveAlerts } from '../services/alerts.js';
import { DECISION_REFUSALS } from '../workflows/request-messages.js';
import type { ActivityDeps } from './deps.js';
import { loadRequestRow } from './requests.js';

export type ExtensionCheck = { ok: true; newExpiresAt: string; needsApproval: boolean } | { ok: false; rule: string; field: string; detail: string };

const breakGlassAlert = (requestId: string) => `break_glass:${requestId}`;

export function createJitActivities({ db, config }: ActivityDeps) {
  async function elevation(requestId: string) {
    const row = await loadRequestRow(db, requestId);
    if (row.request.kind !== 'jit') throw ApplicationFailure.nonRetryable(`elevation ${requestId} does not exist`, 'NotFound');
    return { request: row.request, employeeId: row.identity.employeeId, entitlement: row.entitlement };
  }

  return {
    /** Whether an elevation may be extended by `durationMs` now, and whether that needs approval. Writes nothing. */
    async checkElevationExtension(input: { requestId: string; durationMs: number; now: string }): Promise<ExtensionCheck> {
      const { request } = await elevation(input.requestId);
      const policy = jitPolicies(config).find((p) => p.id === request.entitlementId);
      if (!policy) return { ok: false, rule: 'not_jit_eligible', field: 'id', detail: `${request.entitlementId} can no longer be elevated to` };
      if (!request.expiresAt || request.revocationStatus !== null) return { ok: false, rule: 'not_extendable', field: 'id', detail: 'this elevation is not active' };
      const checked = checkExtension(policy, { durationMs: input.durationMs, extensionsSoFar: request.extensions, expiresAt: request.expiresAt.getTime(), now: Date.parse(input.now) });
      if (!checked.ok) return checked;
      return { ok: true, newExpiresAt: new Date(checked.newExpiresAt).toISOString(), needsApproval: policy.approval !== 'none' };
    },

    /** Moves the elevation's end (and its grant's, when the grant is its own). Idempotent for one new end. */
    async applyElevationExtension(input: { requestId: string; expiresAt: string; by: string }): Promise<{ expiresAt: string; extensions: number }> {
      return db.transaction(async (tx) => {
        const [row] = await tx.select().from(accessRequests).where(eq(accessRequests.id, input.requestId)).for('update');
        if (!row) throw ApplicationFailure.nonRetryable(`elevation ${input.requestId} does not exist`, 'NotFound');
        const expiresAt = new Date(input.expiresAt);
        if (row.expiresAt?.getTime() === expiresAt.getTime()) return { expiresAt: input.expiresAt, extensions: row.extensions };
        if (row.revocationStatus !== null) throw ApplicationFailure.nonRetryable('this elevation has ended', DECISION_REFUSALS.extensionRefused, 'not_extendable', 'id');
        const extensions = row.extensions + 1;
        await tx.update(accessRequests).set({ expiresAt, extensions, updatedAt: new Date() }).where(eq(accessRequests.id, input.requestId));
        await tx.update(grants).set({ expiresAt, updatedAt: new Date() }).where(and(eq(grants.requestId, input.requestId), ne(grants.status, 'revoked')));
        await writeAudit(tx, {
          actor: input.by,
          action: 'access_request.extended',
          subjectType: 'access_request',
          subjectId: input.requestId,
          before: { expiresAt: row.expiresAt?.toISOString() ?? null, extensions: row.extensions },
          after: { expiresAt: input.expiresAt, extensions },
          correlationId: input.requestId,
        });
        return { expiresAt: input.expiresAt, extensions };
      });
    },

    /** A break-glass elevation: a critical alert at once, open until its owner has reviewed it. */
    async raiseBreakGlassAlert(requestId: string): Promise<void> {
      const { request, employeeId, entitlement } = await elevation(requestId);
      await db.transaction(async (tx) => {
        await raiseAlert(
          tx,
          {
            kind: 'break_glass',
            severity: 'critical',
            subject: `Break-glass elevation: ${employeeId} took ${entitlement.id} without approval; its owner must review it`,
            details: { requestId, employeeId, entitlementId: entitlement.id, owner: entitlement.owner, ticket: request.ticket, durationMs: request.durationMs },
            dedupeKey: breakGlassAlert(requestId),
          },
          requestId,
        );
      });
    },

    /** The owner's review of a break-glass elevation is in (or nobody answered): the alert says how it ended. */
    async closeBreakGlassReview(input: { requestId: string; decision: string; decidedBy: string | null }): Promise<void> {
      await db.transaction(async (tx) => {
        if (input.decision === 'approved' || input.decision === 'denied') {
          await resolveAlerts(tx, [breakGlassAlert(input.requestId)], `reviewed by ${input.decidedBy}: ${input.decision === 'approved' ? 'justified' : 'not justified, the access was ended'}`, input.requestId);
        }
        await writeAudit(tx, {
          actor: input.decidedBy ?? ENGINE_ACTOR,
          action: `access_request.break_glass_review_${input.decision}`,
          subjectType: 'access_request',
          subjectId: input.requestId,
          after: { decision: input.decision },
          correlationId: input.requestId,
        });
      });
    },
  };
}
