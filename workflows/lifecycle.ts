// One long-lived workflow per person (`lifecycle:<employeeId>`), fed by signalWithStart.
// It holds no rule of its own: at each wake-up it asks the pure core (domain/lifecycle.ts)
// what to do, executes the effects through activities, and tells the core what succeeded.
// A failed effect never ends the workflow: its event becomes `failed` with an alert, and
// the decision is tried again on a backoff, at the next event or an operator's retry, or,
// when a target was unreachable, as soon as that target's recovery workflow says it answers.
import {
  ActivityFailure,
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  getExternalWorkflowHandle,
  log,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { PlannedGrant } from '../activities/grants.js';
import {
  compact,
  decide,
  nextWakeAt,
  receive,
  recordEffect,
  recordFailure,
  requestGrantRetry,
  requestRetry,
  scheduleRetry,
  targetRecovered,
  type Effect,
  type Holding,
  type LifecycleState,
} from '../domain/lifecycle.js';
import type { PolicySnapshot } from '../domain/policy.js';
import type { HrEventSignal } from '../domain/types.js';
import { failureMessage, isNotVerified } from './activity-failures.js';
import { accessRequestWorkflowId, moverReviewSignal } from './request-messages.js';
import { TARGET_UNAVAILABLE, targetAttemptedSignal, targetRecoveredSignal } from './target-recovery.js';

export const hrEventSignal = defineSignal<[HrEventSignal]>('hrEvent');
/** An operator's retry of a failed event (`POST /hr/events/{id}/retry`, `jml retry`). */
export const retryEventSignal = defineSignal<[{ eventId: string }]>('retryEvent');
/** An operator's retry of a failed grant of this person (`POST /grants/{id}/retry`, `jml retry-grant`): the failed decision is due now. */
export const retryGrantsSignal = defineSignal<[{ grantId: string }]>('retryGrants');
export const lifecycleStateQuery = defineQuery<LifecycleState | undefined>('state');

export type { LifecycleState } from '../domain/lifecycle.js';

export interface LifecycleInput {
  employeeId: string;
  state?: LifecycleState;
  /** History length that triggers continue-as-new (tests lower it to see it happen). */
  historyLimit?: number;
}

// Well under Temporal's 50k-event limit; also honour the server's own suggestion.
const HISTORY_LIMIT = 5_000;

// Bookkeeping activities: quick database writes that retry until Postgres answers.
const DB_RETRY = { initialInterval: '1s', maximumInterval: '1m', backoffCoefficient: 2 };
/**
 * How soon an activity whose worker died is retried: every activity heartbeats while it runs
 * (activities/heartbeat.ts), so a silence this long means its worker is gone.
 */
const HEARTBEAT_TIMEOUT = '20s';
const dbWithoutHeartbeat = proxyActivities<Activities>({ startToCloseTimeout: '30s', retry: DB_RETRY });
const dbWithHeartbeat = proxyActivities<Activities>({ startToCloseTimeout: '30s', heartbeatTimeout: HEARTBEAT_TIMEOUT, retry: DB_RETRY });
/**
 * v4: activities carry a heartbeat timeout, so after an engine crash they are retried within
 * it rather than after the whole start-to-close timeout. Histories recorded before replay
 * without it.
 */
const heartbeats = () => patched('activity-heartbeats');
const db = () => (heartbeats() ? dbWithHeartbeat : dbWithoutHeartbeat);

// Reads the workflow decides with (the policy, what the person holds, the person rebuilt):
// local activities, so a decision costs no extra round trips through the server.
const read = proxyLocalActivities<Activities>({
  startToCloseTimeout: '30s',
  retry: { initialInterval: '1s', maximumInterval: '1m', backoffCoefficient: 2 },
});

/** The target an activity failure could not reach (activities/grants.ts toActivityFailure), if that is what failed. */
function unreachableTarget(err: unknown): string | undefined {
  const cause = err instanceof ActivityFailure ? err.cause : undefined;
  if (!(cause instanceof ApplicationFailure) || cause.type !== TARGET_UNAVAILABLE) return undefined;
  const [target] = cause.details ?? [];
  return typeof target === 'string' ? target : undefined;
}

/** Connector activities retry as the config says; exhausted retries end in `failed`. */
function connectorActivities(policy: PolicySnapshot) {
  const { initialInterval, maximumInterval, maximumAttempts } = policy.retries;
  return proxyActivities<Activities>({
    startToCloseTimeout: '1m',
    ...(heartbeats() ? { heartbeatTimeout: HEARTBEAT_TIMEOUT } : {}),
    retry: { initialInterval, maximumInterval, maximumAttempts, backoffCoefficient: 2 },
  });
}

/** Thrown inside the executor when grants failed: they carry their own alerts already. */
class GrantsFailed extends Error {}

export async function lifecycle(input: LifecycleInput): Promise<void> {
  // Signals can arrive before the state is rebuilt: hold them until it is.
  const early: Array<{ kind: 'event'; event: HrEventSignal } | { kind: 'retry'; eventId: string } | { kind: 'recovered'; target: string; recoveryId: string } | { kind: 'retryGrants' }> = [];
  let state: LifecycleState | undefined = input.state;
  setHandler(hrEventSignal, (event) => {
    if (state) receive(state, event);
    else early.push({ kind: 'event', event });
  });
  setHandler(retryEventSignal, ({ eventId }) => {
    if (state) requestRetry(state, eventId);
    else early.push({ kind: 'retry', eventId });
  });
  setHandler(retryGrantsSignal, () => {
    if (state) requestGrantRetry(state, Date.now());
    else early.push({ kind: 'retryGrants' });
  });
  setHandler(targetRecoveredSignal, ({ target, recoveryId }) => {
    if (state) targetRecovered(state, target, recoveryId, Date.now());
    else early.push({ kind: 'recovered', target, recoveryId });
  });
  setHandler(lifecycleStateQuery, () => state);

  // A run without carried state (the first, or one after a run ended) rebuilds the person
  // from the database: never from nothing, so nothing HR said is forgotten.
  const [person, firstPolicy] = await Promise.all([state ? Promise.resolve(state) : read.loadLifecycleState(input.employeeId), read.getPolicy()]);
  state = person;
  for (const item of early.splice(0)) {
    if (item.kind === 'event') receive(person, item.event);
    else if (item.kind === 'retry') requestRetry(person, item.eventId);
    else if (item.kind === 'retryGrants') requestGrantRetry(person, Date.now());
    else targetRecovered(person, item.target, item.recoveryId, Date.now());
  }
  const employeeId = person.employeeId;
  let policy: PolicySnapshot | undefined = firstPolicy;
  let failedEffects = 0;
  /** Per decision: the targets a step could not reach (and whether a lock or revocation waits on it), and whether anything else failed. */
  let unreachable = new Map<string, boolean>();
  let failedOtherwise = false;

  for (;;) {
    // The policy read last decides when to wake; a fresh one decides what to do.
    const wakeAt = nextWakeAt(person, Date.now(), policy ?? (await read.getPolicy()));
    if (wakeAt === undefined) await condition(() => person.dirty);
    else if (wakeAt > Date.now()) await condition(() => person.dirty, wakeAt - Date.now());

    const identityId = person.applied.identityId;
    const [fresh, held] = await Promise.all([policy ? Promise.resolve(policy) : read.getPolicy(), identityId ? read.listHoldings(identityId) : Promise.resolve({ holdings: [], requestedEntitlements: [] })]);
    policy = fresh;
    const decision = decide(person, Date.now(), policy, held);
    failedEffects = 0;
    unreachable = new Map();
    failedOtherwise = false;
    for (const effect of decision.effects) await execute(effect);
    // v2: a decision that failed is tried again on a capped backoff, not only when the next
    // event or an operator's retry comes (a long directory outage must not leave a leaver
    // with access for good). Histories recorded before replay without it.
    if (patched('retry-failed-decisions')) {
      // v3: a step that could not reach its target waits for that target's recovery, which
      // releases leavers before joiners; the backoff stays as the fallback.
      if (patched('target-recovery')) {
        const waitFor = failedEffects > 0 ? [...unreachable] : [];
        scheduleRetry(person, Date.now(), policy, failedEffects > 0, { targets: waitFor.map(([target]) => target), only: !failedOtherwise });
        for (const [target, revoking] of waitFor) await db().awaitTargetRecovery({ target, workflowId: workflowInfo().workflowId, revoking });
        // After waiting again (when still failing), so the recovery sees that before the answer.
        for (const recoveryId of person.releasedBy?.splice(0) ?? []) {
          await getExternalWorkflowHandle(recoveryId)
            .signal(targetAttemptedSignal, { workflowId: workflowInfo().workflowId })
            .catch(() => undefined); // that recovery has ended: nobody to tell
        }
        delete person.releasedBy;
      } else {
        scheduleRetry(person, Date.now(), policy, failedEffects > 0);
      }
    }
    policy = undefined; // read again at the next decision: the config may have changed

    const info = workflowInfo();
    if (info.continueAsNewSuggested || info.historyLength > (input.historyLimit ?? HISTORY_LIMIT)) {
      // Signals that arrived meanwhile are in `state`; handlers must be done before we go.
      await condition(allHandlersFinished);
      compact(person);
      await continueAsNew<typeof lifecycle>({ employeeId, state: person, ...(input.historyLimit ? { historyLimit: input.historyLimit } : {}) });
    }
  }

  /** Runs one effect; a failure is pinned on the effect's event, alerted, and the loop goes on. */
  async function execute(effect: Effect): Promise<void> {
    // An event whose work failed earlier in this decision stays `failed` (already recorded).
    if (effect.kind === 'eventOutcome' && person.events.find((e) => e.eventId === effect.eventId)?.outcome?.status === 'failed') return;
    try {
      const result = await run(effect);
      recordEffect(person, effect, result);
    } catch (err) {
      if (!(err instanceof ActivityFailure) && !(err instanceof GrantsFailed)) throw err;
      const message = failureMessage(err);
      failedEffects += 1;
      if (!(err instanceof GrantsFailed)) noteFailure(err, effect);
      log.warn('lifecycle step failed', { kind: effect.kind, eventId: effect.eventId });
      recordFailure(person, effect.eventId, `${effect.kind} failed: ${message}`);
      // Grant failures have their own alert (grant_failed / revoke_failed); the rest get one here.
      await db().markEventFailed({ eventId: effect.eventId, employeeId, error: `${effect.kind} failed: ${message}`, alert: !(err instanceof GrantsFailed) });
    }
  }

  /** Remembers what a failure waits for: its target's recovery, or (anything else) the backoff. */
  function noteFailure(err: unknown, effect: Effect | 'grant' | 'revoke'): void {
    const target = unreachableTarget(err);
    if (target === undefined) {
      failedOtherwise = true;
      return;
    }
    const revoking = effect === 'revoke' || (typeof effect === 'object' && (effect.kind === 'revoke' || effect.kind === 'deleteAccounts' || (effect.kind === 'setAccountsEnabled' && !effect.enabled)));
    unreachable.set(target, (unreachable.get(target) ?? false) || revoking);
  }

  async function run(effect: Effect): Promise<{ identityId?: string } | undefined> {
    if (!policy) throw new Error('a decision runs with a policy');
    const connector = connectorActivities(policy);
    switch (effect.kind) {
      case 'saveIdentity': {
        const snapshot = await db().upsertIdentity({
          employeeId,
          status: effect.status,
          attributes: effect.attributes,
          hireDate: effect.hireDate ?? undefined,
          terminationDate: effect.terminationDate,
          effectiveAt: effect.effectiveAt,
          eventId: effect.eventId,
        });
        return { identityId: snapshot.id };
      }
      case 'provision': {
        const planned = await db().createBirthrightRequests({ identityId: person.applied.identityId as string, eventId: effect.eventId, items: effect.items });
        const failed = await provisionAll(planned, connector, { employeeId, enabled: effect.enabled, reenable: effect.reenable, noteFailure: (err) => noteFailure(err, 'grant') });
        // A grant that had failed before and fails again while this event passes by is not
        // this event's failure: the grant stays failed with its own alert.
        const fresh = failed.filter((id) => effect.retryRequested || !effect.retried.includes(id));
        if (fresh.length) throw new GrantsFailed(`${fresh.join(', ')} could not be granted`);
        if (failed.length) failedEffects += 1; // still not converged: the backoff goes on
        return undefined;
      }
      case 'revoke': {
        const failed = await revokeAll(effect.holdings, effect.reason, connector, (err) => noteFailure(err, 'revoke'));
        if (failed.length) throw new GrantsFailed(`${failed.join(', ')} could not be revoked`);
        return undefined;
      }
      case 'setAccountsEnabled':
        await connector.setAccountsEnabled(employeeId, effect.enabled, effect.reason);
        return undefined;
      case 'updateAccounts':
        // v6: changed attributes reach the accounts (LDAP modify, SCIM PATCH). Histories
        // recorded before decided no such effect; replayed, it is skipped.
        if (patched('update-account-attributes')) await connector.updateAccounts(employeeId, effect.enabled);
        return undefined;
      case 'deleteAccounts':
        await connector.deleteAccounts(employeeId, effect.reason);
        return undefined;
      case 'cancelRequests':
        await db().cancelPendingRequests(employeeId, effect.reason);
        return undefined;
      case 'moverReview':
        // v5: the new manager is asked by mail, in each request's own workflow, to keep or
        // remove the requested access a move lists. Histories recorded before only alerted.
        if (patched('mover-review-by-mail')) {
          const requestIds = await db().requestsForReview({ employeeId, entitlementIds: effect.entitlementIds, eventId: effect.eventId });
          for (const requestId of requestIds) {
            await getExternalWorkflowHandle(accessRequestWorkflowId(requestId))
              .signal(moverReviewSignal, { eventId: effect.eventId })
              .catch(() => log.warn('mover review: the request workflow is not running', { requestId }));
          }
          return undefined;
        }
        await db().recordMoverReview(employeeId, effect.entitlementIds, effect.eventId);
        return undefined;
      case 'eventOutcome':
        await db().setEventStatus(effect.eventId, effect.status, effect.reason);
        return undefined;
    }
  }
}

/**
 * Accounts first (a group needs a member to add), then every group of that target at once.
 * A group whose account failed fails with it. Returns the entitlements that failed.
 */
type ConnectorActivities = ReturnType<typeof connectorActivities>;

interface ProvisionOptions {
  employeeId: string;
  enabled: boolean;
  reenable: boolean;
  /** Told of each grant's failure (the workflow learns which targets were unreachable). */
  noteFailure: (err: ActivityFailure) => void;
}

async function provisionAll(planned: PlannedGrant[], connector: ConnectorActivities, options: ProvisionOptions): Promise<string[]> {
  const targets = [...new Set(planned.map((g) => g.target))];
  const failed: string[] = [];
  await Promise.all(
    targets.map(async (target) => {
      const onTarget = planned.filter((g) => g.target === target);
      const accounts = onTarget.filter((g) => g.kind === 'account');
      const rest = onTarget.filter((g) => g.kind !== 'account');
      const accountOk = (await Promise.all(accounts.map((g) => provisionGrant(g, connector, options)))).every(Boolean);
      if (!accountOk) {
        failed.push(...accounts.map((g) => g.entitlementId));
        for (const g of rest) {
          await db().markGrantFailed(g.grantId, `the ${target} account could not be provisioned`);
          failed.push(g.entitlementId);
        }
        return;
      }
      const results = await Promise.all(rest.map((g) => provisionGrant(g, connector, options)));
      rest.forEach((g, i) => results[i] || failed.push(g.entitlementId));
    }),
  );
  return failed.sort();
}

/** pending -> provisioning -> (read back) -> active; or failed with an alert. */
async function provisionGrant(grant: PlannedGrant, connector: ConnectorActivities, options: ProvisionOptions): Promise<boolean> {
  if (grant.grantStatus === 'active') return true;
  try {
    await connector.provisionGrant(grant.grantId, { enabled: options.enabled });
    // A returning person's account still carries the leaver's lock: lift it before the read-back.
    if (grant.kind === 'account' && options.reenable) await connector.setAccountsEnabled(options.employeeId, true, 'rehire');
    await connector.verifyGrant(grant.grantId, { enabled: options.enabled });
    return true;
  } catch (err) {
    if (!(err instanceof ActivityFailure)) throw err;
    log.warn('grant failed', { grantId: grant.grantId });
    options.noteFailure(err);
    await db().markGrantFailed(grant.grantId, failureMessage(err), 'grant', isNotVerified(err));
    return false;
  }
}

/** Accounts are disabled first (the person is locked out at once), then groups go. Returns what failed. */
async function revokeAll(holdings: Holding[], reason: Parameters<Activities['revokeGrant']>[1], connector: ConnectorActivities, noteFailure: (err: ActivityFailure) => void): Promise<string[]> {
  const accounts = holdings.filter((h) => h.kind === 'account');
  const rest = holdings.filter((h) => h.kind !== 'account');
  const revoke = (h: Holding) => revokeGrant(h, reason, connector, noteFailure);
  const results = [...(await Promise.all(accounts.map(revoke))), ...(await Promise.all(rest.map(revoke)))];
  return [...accounts, ...rest].filter((_, i) => !results[i]).map((h) => h.entitlementId).sort();
}

async function revokeGrant(holding: Holding, reason: Parameters<Activities['revokeGrant']>[1], connector: ConnectorActivities, noteFailure: (err: ActivityFailure) => void): Promise<boolean> {
  if (holding.grantStatus === 'revoked') return true;
  try {
    await connector.revokeGrant(holding.grantId, reason);
    await connector.verifyRevoked(holding.grantId);
    return true;
  } catch (err) {
    if (!(err instanceof ActivityFailure)) throw err;
    log.warn('revoke failed', { grantId: holding.grantId });
    noteFailure(err);
    await db().markGrantFailed(holding.grantId, failureMessage(err), 'revoke');
    return false;
  }
}
