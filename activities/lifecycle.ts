// Activities for movers, leavers, rescinds and leaves: suspending and restoring accounts,
// cancelling requests, erasing accounts. Revoking a grant (and proving it) is in grants.ts.
import { ApplicationFailure } from '@temporalio/activity';
import { and, eq, inArray, isNull, ne } from 'drizzle-orm';
import { writeAudit } from '../db/audit.js';
import { loadHoldings } from '../db/holdings.js';
import { accessRequests, approvals, approvalTokens, entitlements, grants, identities } from '../db/schema.js';
import { ENGINE_ACTOR, type IdentityAttributes } from '../domain/types.js';
import { raiseAlert } from '../services/alerts.js';
import type { ActivityDeps } from './deps.js';
import { grantHelpers, NOT_VERIFIED, toActivityFailure } from './grants.js';

export type { Holding } from '../db/holdings.js';

export function createLifecycleActivities(deps: ActivityDeps) {
  const { db } = deps;
  const { connectorFor } = grantHelpers(deps);

  async function identityByEmployeeId(employeeId: string) {
    const [row] = await db.select().from(identities).where(eq(identities.employeeId, employeeId));
    if (!row) throw ApplicationFailure.nonRetryable(`no identity ${employeeId}`, 'NotFound');
    return row;
  }

  /** Targets on which the person has an account grant that is not revoked. */
  async function accountTargets(identityId: string): Promise<string[]> {
    const rows = await db
      .select({ target: entitlements.target })
      .from(grants)
      .innerJoin(entitlements, eq(grants.entitlementId, entitlements.id))
      .where(and(eq(grants.identityId, identityId), eq(entitlements.kind, 'account'), ne(grants.status, 'revoked')));
    return [...new Set(rows.map((r) => r.target))];
  }

  return {
    /** What the person holds now: every grant that is not revoked, with the kind of its request. */
    async listHoldings(identityId: string) {
      return loadHoldings(db, identityId);
    },

    /** Suspends (leave, leaver) or restores (leave end, start date, rehire) every account; reads it back. */
    async setAccountsEnabled(employeeId: string, enabled: boolean, reason: string): Promise<void> {
      const identity = await identityByEmployeeId(employeeId);
      for (const target of await accountTargets(identity.id)) {
        const connector = connectorFor(target);
        try {
          await connector.setAccountEnabled(employeeId, enabled);
          const account = await connector.readAccount(employeeId);
          if (!account || account.enabled !== enabled) throw ApplicationFailure.create({ message: `read-back shows the ${target} account ${account ? (account.enabled ? 'enabled' : 'disabled') : 'missing'}`, type: NOT_VERIFIED });
        } catch (err) {
          throw err instanceof ApplicationFailure ? err : toActivityFailure(err, target, deps.config.retries);
        }
        await db.transaction((tx) =>
          writeAudit(tx, { actor: ENGINE_ACTOR, action: enabled ? 'account.enabled' : 'account.disabled', subjectType: 'identity', subjectId: identity.id, after: { target, enabled, reason } }),
        );
      }
    },

    /**
     * The person's attributes changed: each account they hold is brought up to date (the
     * connector's ensureAccount: LDAP modify, SCIM PATCH), and read back. `enabled` only
     * matters if the account went missing (it is made again in that state) or must be
     * disabled; an enabled account is never re-enabled here.
     */
    async updateAccounts(employeeId: string, enabled: boolean): Promise<void> {
      const identity = await identityByEmployeeId(employeeId);
      const attributes = identity.attributes as IdentityAttributes;
      for (const target of await accountTargets(identity.id)) {
        const connector = connectorFor(target);
        try {
          await connector.ensureAccount({ employeeId, attributes, enabled });
          if (!(await connector.readAccount(employeeId))) throw ApplicationFailure.create({ message: `read-back does not find the ${target} account`, type: NOT_VERIFIED });
        } catch (err) {
          throw err instanceof ApplicationFailure ? err : toActivityFailure(err, target, deps.config.retries);
        }
        // Which fields, not their values: the audit trail says what changed where, the identity row holds the rest.
        await db.transaction((tx) => writeAudit(tx, { actor: ENGINE_ACTOR, action: 'account.updated', subjectType: 'identity', subjectId: identity.id, after: { target, fields: Object.keys(attributes).sort() } }));
      }
    },

    /** Pending requests die with the person's access (leaver, rescind). */
    async cancelPendingRequests(employeeId: string, reason: string): Promise<number> {
      const identity = await identityByEmployeeId(employeeId);
      return db.transaction(async (tx) => {
        const cancelled = await tx
          .update(accessRequests)
          .set({ status: 'cancelled', decidedAt: new Date(), updatedAt: new Date(), reason })
          .where(and(eq(accessRequests.identityId, identity.id), eq(accessRequests.status, 'pending_approval')))
          .returning({ id: accessRequests.id });
        for (const { id } of cancelled) {
          await writeAudit(tx, { actor: ENGINE_ACTOR, action: 'access_request.cancelled', subjectType: 'access_request', subjectId: id, before: { status: 'pending_approval' }, after: { status: 'cancelled', reason } });
        }
        // Their approvals close with them: the emailed links stop working at once.
        const ids = cancelled.map((c) => c.id);
        if (ids.length > 0) {
          const at = new Date();
          const closed = await tx
            .update(approvals)
            .set({ decision: 'cancelled', decidedAt: at, decidedVia: 'engine', comment: reason })
            .where(and(inArray(approvals.requestId, ids), isNull(approvals.decision)))
            .returning({ id: approvals.id });
          if (closed.length > 0) {
            await tx
              .update(approvalTokens)
              .set({ usedAt: at })
              .where(and(inArray(approvalTokens.approvalId, closed.map((c) => c.id)), isNull(approvalTokens.usedAt)));
          }
        }
        return cancelled.length;
      });
    },

    /** Erasure after deleteAfter (or a rescind): the accounts go from every target. */
    async deleteAccounts(employeeId: string, reason: string): Promise<void> {
      const identity = await identityByEmployeeId(employeeId);
      const rows = await db
        .select({ target: entitlements.target })
        .from(grants)
        .innerJoin(entitlements, eq(grants.entitlementId, entitlements.id))
        .where(and(eq(grants.identityId, identity.id), eq(entitlements.kind, 'account')));
      for (const target of new Set(rows.map((r) => r.target))) {
        const connector = connectorFor(target);
        try {
          await connector.deleteAccount(employeeId);
          if (await connector.readAccount(employeeId)) throw ApplicationFailure.create({ message: `read-back still finds the ${target} account`, type: NOT_VERIFIED });
        } catch (err) {
          throw err instanceof ApplicationFailure ? err : toActivityFailure(err, target, deps.config.retries);
        }
        await db.transaction((tx) => writeAudit(tx, { actor: ENGINE_ACTOR, action: 'account.deleted', subjectType: 'identity', subjectId: identity.id, after: { target, reason } }));
      }
    },

    /** A mover keeps requested access; the new manager is asked to review it (the approval issue emails it). */
    async recordMoverReview(employeeId: string, entitlementIds: string[], eventId: string): Promise<void> {
      if (entitlementIds.length === 0) return;
      const identity = await identityByEmployeeId(employeeId);
      const managerId = (identity.attributes as IdentityAttributes).managerId ?? null;
      await db.transaction(async (tx) => {
        await writeAudit(tx, { actor: ENGINE_ACTOR, action: 'mover.review_requested', subjectType: 'identity', subjectId: identity.id, after: { managerId, entitlementIds }, correlationId: eventId });
        await raiseAlert(
          tx,
          {
            kind: 'mover_review',
            severity: 'info',
            subject: `${employeeId} moved and keeps requested access: review by manager ${managerId ?? '(none)'}`,
            details: { employeeId, managerId, entitlementIds },
            dedupeKey: `mover_review:${eventId}`,
          },
          eventId,
        );
      });
    },
  };
}
