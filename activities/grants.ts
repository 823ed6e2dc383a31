// Access requests and grants: the two statuses DESIGN.md keeps apart. A request says who
// approved; a grant says what the target really holds, proven by reading it back.
import { ApplicationFailure } from '@temporalio/activity';
import { and, eq, ne } from 'drizzle-orm';
import { writeAudit, writeAuditBatch, type AuditEntry } from '../db/audit.js';
import type { Tx } from '../db/client.js';
import { accessRequests, entitlements, grants, identities } from '../db/schema.js';
import { canMoveGrant } from '../domain/grant-status.js';
import type { EntitlementKind, GrantStatus, IdentityAttributes } from '../domain/types.js';
import { raiseAlert } from '../services/alerts.js';
import { ConnectorError, type Connector } from './connectors/types.js';
import { ENGINE_ACTOR, type ActivityDeps } from './deps.js';

export interface BirthrightRequestInput {
  identityId: string;
  eventId: string;
  items: Array<{ entitlementId: string; rules: string[] }>;
}

export interface PlannedGrant {
  grantId: string;
  requestId: string;
  entitlementId: string;
  kind: EntitlementKind;
  target: string;
  grantStatus: GrantStatus;
}

/** Non-retryable failure types, so workflows can tell them apart from exhausted retries. */
export const NOT_VERIFIED = 'NotVerified';
export const PERMANENT = 'PermanentConnectorError';

/** Turns a connector failure into the Temporal failure that drives retries. */
export function toActivityFailure(err: unknown): Error {
  if (err instanceof ConnectorError) {
    return ApplicationFailure.create({
      message: err.message,
      type: err.retryable ? (err.code ?? 'ConnectorError') : PERMANENT,
      nonRetryable: !err.retryable,
      nextRetryDelay: err.retryAfterMs,
    });
  }
  return err instanceof Error ? err : new Error(String(err));
}

export function sameDn(a: string, b: string): boolean {
  const norm = (dn: string) => dn.replace(/\s*([,=])\s*/g, '$1').toLowerCase();
  return norm(a) === norm(b);
}

/** Shared by the provisioning and the revocation activities. */
export function grantHelpers({ db, connectors }: ActivityDeps) {
  async function loadGrant(grantId: string) {
    const [row] = await db
      .select({ grant: grants, entitlement: entitlements, identity: identities })
      .from(grants)
      .innerJoin(entitlements, eq(grants.entitlementId, entitlements.id))
      .innerJoin(identities, eq(grants.identityId, identities.id))
      .where(eq(grants.id, grantId));
    if (!row) throw ApplicationFailure.nonRetryable(`grant ${grantId} does not exist`, 'NotFound');
    return row;
  }

  function connectorFor(target: string): Connector {
    const connector = connectors.get(target);
    if (!connector) throw ApplicationFailure.nonRetryable(`no connector for target "${target}"`, 'ConfigError');
    return connector;
  }

  /** Moves a grant and writes its audit row in one transaction. Returns false if the move is not allowed. */
  async function moveGrant(tx: Tx, grantId: string, to: GrantStatus, patch: Partial<typeof grants.$inferInsert>, action: string): Promise<boolean> {
    const [before] = await tx.select().from(grants).where(eq(grants.id, grantId)).for('update');
    if (!before) throw ApplicationFailure.nonRetryable(`grant ${grantId} does not exist`, 'NotFound');
    if (!canMoveGrant(before.status as GrantStatus, to)) return false;
    const [after] = await tx.update(grants).set({ ...patch, status: to, updatedAt: new Date() }).where(eq(grants.id, grantId)).returning();
    await writeAudit(tx, {
      actor: ENGINE_ACTOR,
      action,
      subjectType: 'grant',
      subjectId: grantId,
      before: { status: before.status, attempts: before.attempts },
      after: { status: after?.status, attempts: after?.attempts, lastError: after?.lastError ?? null, verifiedAt: after?.verifiedAt ?? null },
      correlationId: before.requestId,
    });
    return true;
  }

  return { loadGrant, connectorFor, moveGrant };
}

export function createGrantActivities(deps: ActivityDeps) {
  const { db } = deps;
  const { loadGrant, connectorFor, moveGrant } = grantHelpers(deps);

  return {
    /**
     * One auto-approved birthright request and one pending grant per entitlement. Idempotent:
     * the request key is event + entitlement, and a person's live grant is reused, not doubled.
     */
    async createBirthrightRequests(input: BirthrightRequestInput): Promise<PlannedGrant[]> {
      // One transaction for all of them, audit rows written last: the audit chain's lock is
      // taken once and held only for the final insert and the commit.
      return db.transaction(async (tx) => {
        const audit: AuditEntry[] = [];
        const planned: PlannedGrant[] = [];
        for (const item of input.items) {
          const [entitlement] = await tx.select().from(entitlements).where(eq(entitlements.id, item.entitlementId));
          if (!entitlement) throw ApplicationFailure.nonRetryable(`unknown entitlement ${item.entitlementId}`, 'ConfigError');
          const idempotencyKey = `birthright:${input.eventId}:${item.entitlementId}`;
          let [request] = await tx.select().from(accessRequests).where(eq(accessRequests.idempotencyKey, idempotencyKey));
          if (!request) {
            [request] = await tx
              .insert(accessRequests)
              .values({
                idempotencyKey,
                identityId: input.identityId,
                entitlementId: item.entitlementId,
                kind: 'birthright',
                status: 'auto_approved',
                requestedBy: ENGINE_ACTOR,
                reason: `birthright rule ${item.rules.join(', ')}`,
                rules: item.rules,
                hrEventId: input.eventId,
                decidedAt: new Date(),
              })
              .returning();
            if (!request) throw new Error('access request insert returned no row');
            audit.push({
              actor: ENGINE_ACTOR,
              action: 'access_request.auto_approved',
              subjectType: 'access_request',
              subjectId: request.id,
              after: { identityId: input.identityId, entitlementId: item.entitlementId, kind: 'birthright', status: 'auto_approved', rules: item.rules },
              correlationId: input.eventId,
            });
          }
          // A live grant (from an earlier request) already covers this entitlement: keep it.
          let [grant] = await tx
            .select()
            .from(grants)
            .where(and(eq(grants.identityId, input.identityId), eq(grants.entitlementId, item.entitlementId), ne(grants.status, 'revoked')));
          if (!grant) {
            [grant] = await tx.insert(grants).values({ identityId: input.identityId, entitlementId: item.entitlementId, requestId: request.id, status: 'pending' }).returning();
            if (!grant) throw new Error('grant insert returned no row');
            audit.push({
              actor: ENGINE_ACTOR,
              action: 'grant.pending',
              subjectType: 'grant',
              subjectId: grant.id,
              after: { status: 'pending', identityId: input.identityId, entitlementId: item.entitlementId },
              correlationId: request.id,
            });
          }
          planned.push({ grantId: grant.id, requestId: grant.requestId, entitlementId: item.entitlementId, kind: entitlement.kind as EntitlementKind, target: entitlement.target, grantStatus: grant.status as GrantStatus });
        }
        await writeAuditBatch(tx, audit);
        return planned;
      });
    },

    /** Asks the target to grant. Safe to retry: connectors adopt what already exists. */
    async provisionGrant(grantId: string, options: { enabled?: boolean } = {}): Promise<void> {
      const { grant, entitlement, identity } = await loadGrant(grantId);
      if (grant.status === 'active') return;
      await db.transaction(async (tx) => {
        const moved = await moveGrant(tx, grantId, 'provisioning', { attempts: grant.attempts + 1 }, 'grant.provisioning');
        if (!moved) throw ApplicationFailure.nonRetryable(`grant ${grantId} cannot be provisioned from ${grant.status}`, 'InvalidTransition');
      });
      const connector = connectorFor(entitlement.target);
      try {
        if (entitlement.kind === 'account') {
          await connector.ensureAccount({ employeeId: identity.employeeId, attributes: identity.attributes as IdentityAttributes, enabled: options.enabled ?? true });
        } else {
          if (!entitlement.targetRef) throw new ConnectorError(`entitlement ${entitlement.id} has no target reference`, false, 'CONFIG');
          await connector.addToGroup(identity.employeeId, entitlement.targetRef);
        }
      } catch (err) {
        await db.update(grants).set({ lastError: (err as Error).message.slice(0, 2000), updatedAt: new Date() }).where(eq(grants.id, grantId));
        throw toActivityFailure(err);
      }
    },

    /** Reads the grant back from the target. Only what the target shows counts as active. */
    async verifyGrant(grantId: string): Promise<{ verifiedAt: string }> {
      const { grant, entitlement, identity } = await loadGrant(grantId);
      if (grant.status === 'active' && grant.verifiedAt) return { verifiedAt: grant.verifiedAt.toISOString() };
      let account;
      try {
        account = await connectorFor(entitlement.target).readAccount(identity.employeeId);
      } catch (err) {
        throw toActivityFailure(err);
      }
      const present = account !== null && (entitlement.kind === 'account' || account.groups.some((dn) => sameDn(dn, entitlement.targetRef ?? '')));
      if (!present) {
        const what = entitlement.kind === 'account' ? 'the account' : `membership of ${entitlement.targetRef}`;
        throw ApplicationFailure.create({ message: `read-back did not find ${what} for ${identity.employeeId}`, type: NOT_VERIFIED });
      }
      const verifiedAt = new Date();
      await db.transaction(async (tx) => {
        await moveGrant(tx, grantId, 'active', { verifiedAt, lastError: null }, 'grant.active');
      });
      return { verifiedAt: verifiedAt.toISOString() };
    },

    /** Retries are exhausted or the failure is permanent: record it and tell a person. */
    async markGrantFailed(grantId: string, error: string, phase: 'grant' | 'revoke' = 'grant'): Promise<void> {
      const { entitlement, identity } = await loadGrant(grantId);
      await db.transaction(async (tx) => {
        await moveGrant(tx, grantId, 'failed', { lastError: error.slice(0, 2000) }, phase === 'grant' ? 'grant.failed' : 'grant.revoke_failed');
        // A revocation that did not happen is access someone should no longer have: critical.
        const critical = phase === 'revoke' || entitlement.risk === 'critical' || entitlement.kind === 'account';
        await raiseAlert(
          tx,
          {
            kind: phase === 'grant' ? 'grant_failed' : 'revoke_failed',
            severity: critical ? 'critical' : 'warning',
            subject: `${phase === 'grant' ? 'Granting' : 'Revoking'} ${entitlement.id} ${phase === 'grant' ? 'to' : 'from'} ${identity.employeeId} failed`,
            details: { grantId, entitlementId: entitlement.id, target: entitlement.target, employeeId: identity.employeeId, error: error.slice(0, 500) },
            dedupeKey: `${phase === 'grant' ? 'grant_failed' : 'revoke_failed'}:${grantId}`,
          },
          grantId,
        );
      });
    },
  };
}
