// Asking for a just-in-time elevation: the use case behind POST /api/v1/jit/elevations (and
// `jml elevate` through it). An elevation is an access request of kind `jit`, so it is
// recorded exactly as an access request is (services/access-requests.ts submitRequest): the
// subject's advisory lock, the idempotency key, the policy (domain/jit-policy.ts), the row and
// its audit entry in one transaction, then the jitElevation workflow. A refusal writes nothing.
//
// A retried POST never makes two elevations. Rather than Temporal's update-with-start, this
// is the equivalent the access requests use: the Idempotency-Key is a unique column, so a
// replay finds the row the first call committed (and answers it); the workflow id is derived
// from the row's id (`jit:<id>`), and the start uses USE_EXISTING, so a repeated start
// (a replay after a lost answer, the sweeper) finds the one workflow instead of making a
// second. Postgres is the record: if Temporal is down the elevation is kept, and the sweeper
// starts it.
import { and, eq, sql } from 'drizzle-orm';
import { jitPolicies, loadAccessContext } from '../db/access-context.js';
import type { DbOrTx } from '../db/client.js';
import { accessRequests, identities } from '../db/schema.js';
import { canonicalEmployeeId } from '../domain/employee-id.js';
import { checkElevation, type ElevationDecision, type ElevationInput, type JitSubject } from '../domain/jit-policy.js';
import type { IdentityAttributes } from '../domain/types.js';
import { submitRequest, type Submitter, type SubmitDeps } from './access-requests.js';

/**
 * What the policy judges (the subject in any case: it is folded), with the requester as the
 * shell knows it (Submitter) in place of the policy's `requestedBy`.
 */
export interface SubmitElevationInput extends Omit<ElevationInput, 'requestedBy'>, Submitter {}

export type ElevationRefusal = Extract<ElevationDecision, { ok: false }>;
export type SubmitElevationResult = { created: boolean; requestId: string } | { refused: ElevationRefusal };

/**
 * When the person's last elevation of this entitlement ended, in ms, for the cool-down: its
 * proven revocation time, else its expiry once its access is known gone (`revoked`) or kept
 * for another reason (`retained`). An elevation still running has not ended, and overlapping
 * elevations are allowed (their access is reference-counted), so it does not count.
 * Reads access_requests_subject_entitlement_idx.
 */
export async function lastElevationEnd(db: DbOrTx, identityId: string, entitlementId: string): Promise<number | null> {
  const ended = sql`coalesce(${accessRequests.revokedAt}, case when ${accessRequests.revocationStatus} in ('revoked', 'retained') then ${accessRequests.expiresAt} end)`;
  const [row] = await db
    .select({ at: sql<number | null>`(extract(epoch from max(${ended})) * 1000)::float8`.mapWith(Number) })
    .from(accessRequests)
    .where(and(eq(accessRequests.identityId, identityId), eq(accessRequests.entitlementId, entitlementId), eq(accessRequests.kind, 'jit')));
  return row?.at ?? null;
}

/** A ticket as kept: trimmed, and none when blank. */
const ticketOf = (ticket: string | null | undefined): string | null => {
  const trimmed = ticket?.trim() ?? '';
  return trimmed === '' ? null : trimmed;
};

/**
 * Checks and records an elevation in one transaction, then starts its jitElevation workflow.
 * A key seen before answers the elevation it made (created: false) when the body is the same
 * one, and throws IdempotencyKeyReused when it is not.
 */
export function submitElevation(deps: SubmitDeps, input: SubmitElevationInput): Promise<SubmitElevationResult> {
  const ticket = ticketOf(input.ticket);
  const breakGlass = input.breakGlass ?? false;
  return submitRequest<ElevationRefusal>(deps, {
    kind: 'jit',
    input,
    // The duration recorded is the one the policy settled on: a replay that left it out asked for the same.
    sameAs: (existing, subjectId) =>
      existing.entitlementId === input.entitlementId &&
      existing.subjectId === subjectId &&
      existing.justification === input.justification &&
      existing.ticket === ticket &&
      existing.breakGlass === breakGlass &&
      (input.durationMs === undefined || existing.durationMs === input.durationMs),
    async decide(tx, subjectId) {
      const context = await loadAccessContext(tx, deps.config, subjectId);
      const identityId = context.subjectIdentityId;
      let subject: JitSubject | null = null;
      let lastEndedAt: number | null = null;
      if (identityId !== null && context.subject) {
        const [row] = await tx.select({ attributes: identities.attributes }).from(identities).where(eq(identities.id, identityId));
        subject = { ...context.subject, attributes: (row?.attributes ?? {}) as IdentityAttributes };
        lastEndedAt = await lastElevationEnd(tx, identityId, input.entitlementId);
      }
      const decision = checkElevation(
        {
          employeeId: subjectId,
          entitlementId: input.entitlementId,
          justification: input.justification,
          ...(input.durationMs !== undefined ? { durationMs: input.durationMs } : {}),
          ticket,
          breakGlass,
          requestedBy: input.requestedByEmployeeId === null ? null : canonicalEmployeeId(input.requestedByEmployeeId),
        },
        {
          policies: jitPolicies(deps.config),
          subject,
          held: context.held,
          pending: context.pending,
          lastEndedAt,
          now: Date.now(),
          directory: context.directory,
          sod: context.sod,
          fallbackApprover: deps.config.approval.fallbackApprover ?? null,
        },
      );
      if (!decision.ok) return { refused: decision };
      // The policy refuses an unknown subject, so a passing elevation has one.
      if (identityId === null) throw new Error('policy passed an elevation without a subject identity');
      return {
        identityId,
        values: { entitlementId: input.entitlementId, justification: input.justification, durationMs: decision.durationMs, ticket, breakGlass: decision.breakGlass },
        // The justification is the requester's free text: it stays in the request row only.
        audit: {
          status: 'pending_approval',
          kind: 'jit',
          entitlementId: input.entitlementId,
          employeeId: subjectId,
          durationMs: decision.durationMs,
          ticket,
          breakGlass: decision.breakGlass,
          requestedBy: input.requestedBy,
          approvers: decision.stages.map((s) => s.approverId),
        },
      };
    },
  });
}
