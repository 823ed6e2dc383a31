// Access requests and grants: the two statuses DESIGN.md keeps apart. A request says who
// approved; a grant says what the target really holds, proven by reading it back. Granting,
// revoking and both read-backs live here, so there is one idea of what "proven" means.
import { ApplicationFailure, Context } from '@temporalio/activity';
import { and, eq, ne, sql } from 'drizzle-orm';
import { Histogram, type Registry } from 'prom-client';
import { getOrCreate } from '../api/metrics.js';
import { liveRequestsOf } from '../db/access-context.js';
import { writeAudit, writeAuditBatch, type AuditEntry } from '../db/audit.js';
import type { Tx } from '../db/client.js';
import { accessRequests, entitlements, grants, identities } from '../db/schema.js';
import { canMoveGrant, NOT_VERIFIED } from '../domain/grant-status.js';
import { retryDelayMs, type BackoffIntervals } from '../domain/retry-delay.js';
import type { RevokeReason } from '../domain/lifecycle.js';
import { ENGINE_ACTOR, type EntitlementKind, type GrantStatus, type IdentityAttributes } from '../domain/types.js';
import { raiseAlert, resolveAlerts } from '../services/alerts.js';
import { ConnectorError, TargetUnavailableError, type Connector } from './connectors/types.js';
import { TARGET_UNAVAILABLE } from '../workflows/target-recovery.js';
import type { ActivityDeps } from './deps.js';

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

/** Failure types, so workflows can tell them apart from exhausted retries. */
export { NOT_VERIFIED } from '../domain/grant-status.js';
export const PERMANENT = 'PermanentConnectorError';
export const INVALID_TRANSITION = 'InvalidTransition';

/**
 * Turns a connector failure into the Temporal failure that drives retries. A target that
 * could not be reached is typed TargetUnavailable with the target id as its detail, so the
 * workflow can wait for that target's recovery (workflows/target-recovery.ts).
 *
 * Every retryable failure carries its own `nextRetryDelay` (domain/retry-delay.ts): what the
 * target asked for (Retry-After), else the configured backoff with jitter, since Temporal's
 * retry policy has none and grants that failed together would otherwise retry in lockstep.
 * The workflows' retry policies still cap the number of attempts.
 */
export function toActivityFailure(err: unknown, target: string, retries: BackoffIntervals): Error {
  if (err instanceof ConnectorError) {
    const nextRetryDelay = err.retryable ? retryDelayMs(currentAttempt(), retries, Math.random(), err.retryAfterMs) : undefined;
    if (err instanceof TargetUnavailableError) {
      return ApplicationFailure.create({ message: err.message, type: TARGET_UNAVAILABLE, details: [target], nextRetryDelay });
    }
    return ApplicationFailure.create({
      message: err.message,
      type: err.retryable ? (err.code ?? 'ConnectorError') : PERMANENT,
      nonRetryable: !err.retryable,
      nextRetryDelay,
    });
  }
  return err instanceof Error ? err : new Error(String(err));
}

/** The running activity's attempt (1-based); 1 outside an activity. */
function currentAttempt(): number {
  try {
    return Context.current().info.attempt;
  } catch {
    return 1;
  }
}

type Entitlement = typeof entitlements.$inferSelect;

/** The group a group or role entitlement names; without one nothing can be granted or proven. */
function groupRefOf(entitlement: Entitlement): string {
  if (!entitlement.targetRef) throw new ConnectorError(`entitlement ${entitlement.id} has no target reference`, false, 'CONFIG');
  return entitlement.targetRef;
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

  /**
   * Moves a grant and writes its audit row, in the caller's transaction. A move the status
   * machine refuses throws InvalidTransition (non-retryable): it is never skipped silently.
   * `detail` goes into the audit row as well.
   */
  async function moveGrant(tx: Tx, grantId: string, to: GrantStatus, patch: Partial<typeof grants.$inferInsert>, action: string, detail: Record<string, unknown> = {}): Promise<void> {
    const [before] = await tx.select().from(grants).where(eq(grants.id, grantId)).for('update');
    if (!before) throw ApplicationFailure.nonRetryable(`grant ${grantId} does not exist`, 'NotFound');
    if (!canMoveGrant(before.status as GrantStatus, to)) {
      throw ApplicationFailure.nonRetryable(`grant ${grantId} cannot move from ${before.status} to ${to}`, INVALID_TRANSITION);
    }
    const [after] = await tx
      .update(grants)
      .set({ ...patch, status: to, updatedAt: new Date(), ...(before.status !== to ? { statusSince: new Date() } : {}) })
      .where(eq(grants.id, grantId))
      .returning();
    await writeAudit(tx, {
      actor: ENGINE_ACTOR,
      action,
      subjectType: 'grant',
      subjectId: grantId,
      before: { status: before.status, attempts: before.attempts },
      after: { status: after?.status, attempts: after?.attempts, lastError: after?.lastError ?? null, verifiedAt: after?.verifiedAt ?? null, ...detail },
      correlationId: before.requestId,
    });
  }

  return { loadGrant, connectorFor, moveGrant };
}

/** How long after its expiry each time-bound access was proven gone (JIT elevations, time-bound requests). */
function revocationLagHistogram(registry: Registry | undefined): Histogram<'kind'> {
  const create = (registers: Registry[]) =>
    new Histogram({
      name: 'jml_revocation_lag_seconds',
      help: 'From an access\'s expiry to the read-back that proved it gone, by request kind (jit, requested)',
      labelNames: ['kind'] as const,
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300],
      registers,
    });
  return registry ? getOrCreate(registry, 'jml_revocation_lag_seconds', () => create([registry])) : create([]);
}

/**
 * The revocation status of the requested access (and elevations) a grant carries, whoever
 * revoked it (its expiry, a withdrawal, a leaver): it follows what the read-back proved, for
 * every live request of that person and entitlement (overlapping elevations share one grant).
 * Birthright requests have none; a request whose access stayed for another reason keeps
 * `retained`. A proven revocation records when, and its lag behind the expiry that asked for
 * it (null when it came early: a withdrawal, a leaver).
 */
async function setRevocationStatus(
  tx: Tx,
  grant: { identityId: string; entitlementId: string; revokeReason: string | null },
  status: 'revoked' | 'failed',
): Promise<Array<{ kind: string; lagMs: number | null }>> {
  const revoked = status === 'revoked';
  // A leaver's (or a rescind's) revocation ends every live request of the access; a request's
  // own removal concerns the requests it was asked for (pending, or failed before), never one
  // approved meanwhile that waits to be granted afresh.
  const everyone = grant.revokeReason === 'leaver' || grant.revokeReason === 'rescinded';
  return tx
    .update(accessRequests)
    .set({
      revocationStatus: status,
      updatedAt: new Date(),
      ...(revoked
        ? {
            revokedAt: sql`now()`,
            revocationLagMs: sql`case when ${accessRequests.expiresAt} is not null and now() >= ${accessRequests.expiresAt} then floor(extract(epoch from (now() - ${accessRequests.expiresAt})) * 1000)::bigint end`,
          }
        : {}),
    })
    .where(liveRequestsOf(grant, !everyone))
    .returning({ kind: accessRequests.kind, lagMs: accessRequests.revocationLagMs });
}

export function createGrantActivities(deps: ActivityDeps) {
  const { db } = deps;
  const revocationLag = revocationLagHistogram(deps.metrics);
  const { loadGrant, connectorFor, moveGrant } = grantHelpers(deps);

  async function recordConnectorError(grantId: string, err: unknown): Promise<void> {
    await db.update(grants).set({ lastError: (err as Error).message.slice(0, 2000), updatedAt: new Date() }).where(eq(grants.id, grantId));
  }

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

    /**
     * Asks the target to grant. Safe to retry: connectors adopt what already exists. An
     * account is asked `enabled` (default) or disabled (pre-provisioned); the audit row
     * records which, and verifyGrant holds the target to it.
     */
    async provisionGrant(grantId: string, options: { enabled?: boolean } = {}): Promise<void> {
      const { grant, entitlement, identity } = await loadGrant(grantId);
      if (grant.status === 'active') return;
      const enabled = options.enabled ?? true;
      await db.transaction((tx) =>
        moveGrant(tx, grantId, 'provisioning', { attempts: grant.attempts + 1 }, 'grant.provisioning', entitlement.kind === 'account' ? { enabled } : {}),
      );
      const connector = connectorFor(entitlement.target);
      try {
        if (entitlement.kind === 'account') {
          await connector.ensureAccount({ employeeId: identity.employeeId, attributes: identity.attributes as IdentityAttributes, enabled });
        } else {
          await connector.addToGroup(identity.employeeId, groupRefOf(entitlement));
        }
      } catch (err) {
        await recordConnectorError(grantId, err);
        throw toActivityFailure(err, entitlement.target, deps.config.retries);
      }
    },

    /**
     * Reads the grant back from the target; only what the target shows counts as active. An
     * account must exist in the state provisioning asked for (enabled or disabled); a
     * membership must be in the group entry's own member values, and the account must exist.
     * What cannot be read (no such group, a ref that is not the target's, someone else's
     * entry) fails, permanently: it proves nothing.
     */
    async verifyGrant(grantId: string, options: { enabled?: boolean } = {}): Promise<{ verifiedAt: string }> {
      const { grant, entitlement, identity } = await loadGrant(grantId);
      if (grant.status === 'active' && grant.verifiedAt) return { verifiedAt: grant.verifiedAt.toISOString() };
      const connector = connectorFor(entitlement.target);
      const { employeeId } = identity;
      let missing: string | null;
      try {
        const account = await connector.readAccount(employeeId);
        if (entitlement.kind === 'account') {
          const enabled = options.enabled ?? true;
          const state = (on: boolean) => (on ? 'enabled' : 'disabled');
          missing = !account ? 'the account' : account.enabled !== enabled ? `the account ${state(enabled)} (it is ${state(account.enabled)})` : null;
        } else {
          const group = groupRefOf(entitlement);
          missing = !account ? 'the account' : (await connector.isGroupMember(employeeId, group)) ? null : `the account among the members of ${group}`;
        }
      } catch (err) {
        throw toActivityFailure(err, entitlement.target, deps.config.retries);
      }
      if (missing) throw ApplicationFailure.create({ message: `read-back did not find ${missing} for ${employeeId}`, type: NOT_VERIFIED });
      const verifiedAt = new Date();
      await db.transaction(async (tx) => {
        await moveGrant(tx, grantId, 'active', { verifiedAt, lastError: null }, 'grant.active');
        // A grant that failed before and is proven now: its alert's cause is gone.
        await resolveAlerts(tx, [`grant_failed:${grantId}`, `grant_unverified:${grantId}`, `grant_stuck:${grantId}`], 'grant active, verified by read-back', grantId);
      });
      return { verifiedAt: verifiedAt.toISOString() };
    },

    /** -> revoking, then asks the target to revoke; verifyRevoked proves it. Safe to retry. */
    async revokeGrant(grantId: string, reason: RevokeReason): Promise<void> {
      const { grant, entitlement, identity } = await loadGrant(grantId);
      if (grant.status === 'revoked') return;
      await db.transaction((tx) => moveGrant(tx, grantId, 'revoking', { revokeReason: reason }, 'grant.revoking'));
      const connector = connectorFor(entitlement.target);
      try {
        // Revoking the account grant disables the account; deleting it comes after deleteAfter.
        if (entitlement.kind === 'account') await connector.setAccountEnabled(identity.employeeId, false);
        else await connector.removeFromGroup(identity.employeeId, groupRefOf(entitlement));
      } catch (err) {
        await recordConnectorError(grantId, err);
        throw toActivityFailure(err, entitlement.target, deps.config.retries);
      }
    },

    /**
     * Reads the target back: only a disabled (or absent) account, or a group entry whose own
     * member values no longer name the person, counts as revoked. What cannot be read (no
     * such group, a ref that is not the target's, someone else's entry) cannot prove a
     * revocation: it fails, permanently, and is never taken for "gone".
     */
    async verifyRevoked(grantId: string): Promise<void> {
      const { grant, entitlement, identity } = await loadGrant(grantId);
      if (grant.status === 'revoked') return;
      const connector = connectorFor(entitlement.target);
      const { employeeId } = identity;
      let remaining: string | null;
      try {
        if (entitlement.kind === 'account') {
          remaining = (await connector.readAccount(employeeId))?.enabled ? 'the account, enabled' : null;
        } else {
          const group = groupRefOf(entitlement);
          remaining = (await connector.isGroupMember(employeeId, group)) ? `the account among the members of ${group}` : null;
        }
      } catch (err) {
        throw toActivityFailure(err, entitlement.target, deps.config.retries);
      }
      if (remaining) throw ApplicationFailure.create({ message: `read-back still finds ${remaining} for ${employeeId}`, type: NOT_VERIFIED });
      await db.transaction(async (tx) => {
        await moveGrant(tx, grantId, 'revoked', { revokedAt: new Date(), lastError: null }, 'grant.revoked');
        await resolveAlerts(tx, [`revoke_failed:${grantId}`, `grant_failed:${grantId}`, `grant_unverified:${grantId}`, `grant_stuck:${grantId}`], 'grant revoked, verified by read-back', grantId);
        for (const { kind, lagMs } of await setRevocationStatus(tx, grant, 'revoked')) {
          if (lagMs !== null) revocationLag.observe({ kind }, lagMs / 1000);
        }
      });
    },

    /**
     * Retries are exhausted or the failure is permanent: record it and tell a person.
     *
     * If the status machine refuses `failed` (the grant has meanwhile become active or
     * revoked, which means a caller is wrong), the failure is still recorded where people
     * look: the error on the grant, a `grant.failure_refused` audit row, and a critical alert
     * that names the status it is in. It does not throw: this is the last step of a failure
     * path, a throw would roll the alert back with it, and the workflow calls it from its
     * error handling, where an exception would stop the person's workflow.
     */
    async markGrantFailed(grantId: string, error: string, phase: 'grant' | 'revoke' = 'grant', unverified = false): Promise<void> {
      // "Succeeded but not there": the target took the change and the read-back did not find it.
      const kind = phase === 'revoke' ? 'revoke_failed' : unverified ? 'grant_unverified' : 'grant_failed';
      const { grant, entitlement, identity } = await loadGrant(grantId);
      const lastError = error.slice(0, 2000);
      await db.transaction(async (tx) => {
        const [current] = await tx.select({ status: grants.status }).from(grants).where(eq(grants.id, grantId)).for('update');
        const status = (current?.status ?? grant.status) as GrantStatus;
        const recorded = canMoveGrant(status, 'failed');
        if (recorded) {
          await moveGrant(tx, grantId, 'failed', { lastError }, phase === 'grant' ? 'grant.failed' : 'grant.revoke_failed');
        } else {
          await tx.update(grants).set({ lastError, updatedAt: new Date() }).where(eq(grants.id, grantId));
          await writeAudit(tx, {
            actor: ENGINE_ACTOR,
            action: 'grant.failure_refused',
            subjectType: 'grant',
            subjectId: grantId,
            before: { status },
            after: { status, lastError, phase, refused: `${status} -> failed` },
            correlationId: grant.requestId,
          });
        }
        if (phase === 'revoke') await setRevocationStatus(tx, grant, 'failed');
        // A revocation that did not happen is access someone should no longer have: critical.
        const critical = !recorded || phase === 'revoke' || entitlement.risk === 'critical' || entitlement.kind === 'account';
        const what =
          kind === 'grant_unverified'
            ? `Granting ${entitlement.id} to ${identity.employeeId} is not verified: ${entitlement.target} accepted it, but the read-back does not find it`
            : `${phase === 'grant' ? 'Granting' : 'Revoking'} ${entitlement.id} ${phase === 'grant' ? 'to' : 'from'} ${identity.employeeId} failed`;
        await raiseAlert(
          tx,
          {
            kind,
            severity: critical ? 'critical' : 'warning',
            subject: recorded ? what : `${what}; the grant is ${status} and could not be marked failed`,
            details: { grantId, entitlementId: entitlement.id, target: entitlement.target, employeeId: identity.employeeId, grantStatus: recorded ? 'failed' : status, error: error.slice(0, 500) },
            dedupeKey: `${kind}:${grantId}`,
          },
          grantId,
        );
        // No longer stuck on its way: it failed, and that alert says so.
        await resolveAlerts(tx, [`grant_stuck:${grantId}`], `${phase === 'grant' ? 'granting' : 'revoking'} failed (see its ${phase === 'grant' ? 'grant_failed' : 'revoke_failed'} alert)`, grantId);
      });
    },
  };
}
