// One long-lived workflow per person (`lifecycle:<employeeId>`), fed by signalWithStart.
// It keeps that person's pending work sorted by the time it is due, sleeps on durable
// timers until then, and applies one step at a time, so two changes for one person never
// race. Steps are HR events plus what they schedule: the start date of a pre-provisioned
// joiner, the end of a mover's grace period, the erasure of a leaver's accounts.
import {
  ActivityFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  log,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { PlannedGrant } from '../activities/grants.js';
import type { Holding, RevokeReason } from '../activities/lifecycle.js';
import { evaluateBirthright } from '../domain/birthright.js';
import { diffEntitlements, isMove } from '../domain/entitlement-diff.js';
import type { PolicySnapshot } from '../domain/policy.js';
import type { HrEventSignal, IdentityAttributes, IdentityStatus } from '../domain/types.js';

export const hrEventSignal = defineSignal<[HrEventSignal]>('hrEvent');
export const lifecycleStateQuery = defineQuery<LifecycleState>('state');

export type Step =
  | { kind: 'event'; dueAt: number; seq: number; event: HrEventSignal; preProvision?: boolean }
  /** Enable the accounts pre-provisioned for a future start. */
  | { kind: 'start'; dueAt: number; seq: number; eventId: string }
  /** Revoke what a move made no longer due, once the grace period is over. */
  | { kind: 'revoke'; dueAt: number; seq: number; eventId: string; entitlementIds: string[] }
  /** Delete a leaver's accounts after the retention period (GDPR erasure). */
  | { kind: 'erase'; dueAt: number; seq: number; eventId: string };

export interface LifecycleState {
  employeeId: string;
  /** Work not yet done, soonest first. */
  steps: Step[];
  /** Events for a person not hired yet: they wait for the hire (delivery can be out of order). */
  parked: HrEventSignal[];
  /** Ids already taken in, newest last; bounded so continue-as-new stays small. */
  seen: string[];
  applied: number;
  seq: number;
  person: { identityId?: string; status: IdentityStatus | 'none'; attributes: IdentityAttributes; lastEffectiveAt?: string };
}

export interface LifecycleInput {
  employeeId: string;
  state?: LifecycleState;
  /** History length that triggers continue-as-new (tests lower it to see it happen). */
  historyLimit?: number;
}

const SEEN_LIMIT = 1_000;
// Well under Temporal's 50k-event limit; also honour the server's own suggestion.
const HISTORY_LIMIT = 5_000;

// Bookkeeping activities: quick database writes that retry until Postgres answers.
const db = proxyActivities<Activities>({
  startToCloseTimeout: '30s',
  retry: { initialInterval: '1s', maximumInterval: '1m', backoffCoefficient: 2 },
});

function failureMessage(err: unknown): string {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  return cause instanceof Error ? cause.message : String(cause);
}

/** Connector activities retry as the config says; exhausted retries end in `failed`. */
function connectorActivities(policy: PolicySnapshot) {
  const { initialInterval, maximumInterval, maximumAttempts } = policy.retries;
  return proxyActivities<Activities>({ startToCloseTimeout: '1m', retry: { initialInterval, maximumInterval, maximumAttempts, backoffCoefficient: 2 } });
}

export async function lifecycle(input: LifecycleInput): Promise<void> {
  const state: LifecycleState = input.state ?? { employeeId: input.employeeId, steps: [], parked: [], seen: [], applied: 0, seq: 0, person: { status: 'none', attributes: {} } };
  const seen = new Set(state.seen);
  const employeeId = state.employeeId;

  const schedule = (step: Step) => {
    state.steps.push(step);
    state.steps.sort((a, b) => a.dueAt - b.dueAt || a.seq - b.seq);
  };
  const nextSeq = () => (state.seq += 1);
  const cancelSteps = (kinds: Step['kind'][]) => {
    state.steps = state.steps.filter((s) => !kinds.includes(s.kind));
  };

  setHandler(hrEventSignal, (event) => {
    if (seen.has(event.eventId)) return; // a redelivered job: applied once only
    seen.add(event.eventId);
    state.seen.push(event.eventId);
    if (state.seen.length > SEEN_LIMIT) seen.delete(state.seen.shift() as string);
    schedule({ kind: 'event', dueAt: Date.parse(event.effectiveAt), seq: nextSeq(), event });
  });
  setHandler(lifecycleStateQuery, () => state);

  for (;;) {
    await condition(() => state.steps.length > 0);
    const next = state.steps[0] as Step;

    // A future hire: the person exists as pre_hire from now on, and the accounts are
    // pre-provisioned (disabled) `preProvisionLead` before the start.
    if (next.kind === 'event' && next.event.type === 'hire' && next.preProvision === undefined && next.dueAt > Date.now() && state.person.status === 'none') {
      const policy = await db.getPolicy();
      await savePerson('pre_hire', next.event, { hireDate: next.event.effectiveAt });
      const lead = policy.lifecycle.preProvisionLead;
      next.preProvision = lead > 0;
      if (lead > 0) next.dueAt = Math.max(Date.now(), next.dueAt - lead);
      state.steps.sort((a, b) => a.dueAt - b.dueAt || a.seq - b.seq);
      continue;
    }

    const waitMs = next.dueAt - Date.now();
    if (waitMs > 0) {
      // Sleep until due, but wake if an earlier step arrives so the plan is redone.
      await condition(() => state.steps[0] !== next, waitMs);
      continue;
    }
    state.steps.shift();
    await runStep(next);
    state.applied += 1;

    const info = workflowInfo();
    if (info.continueAsNewSuggested || info.historyLength > (input.historyLimit ?? HISTORY_LIMIT)) {
      // Signals that arrived meanwhile are in `state`; handlers must be done before we go.
      await condition(allHandlersFinished);
      await continueAsNew<typeof lifecycle>({ employeeId, state, ...(input.historyLimit ? { historyLimit: input.historyLimit } : {}) });
    }
  }

  async function savePerson(status: IdentityStatus, event: HrEventSignal, extra: { hireDate?: string; terminationDate?: string | null } = {}): Promise<void> {
    const snapshot = await db.upsertIdentity({ employeeId, status, attributes: event.attributes, effectiveAt: event.effectiveAt, eventId: event.eventId, ...extra });
    state.person = { identityId: snapshot.id, status, attributes: snapshot.attributes, lastEffectiveAt: event.effectiveAt };
  }

  async function runStep(step: Step): Promise<void> {
    switch (step.kind) {
      case 'event':
        return applyEvent(step);
      case 'start':
        if (state.person.status !== 'pre_hire') return;
        await db.setAccountsEnabled(employeeId, true, 'start date');
        state.person.status = 'active';
        await db.upsertIdentity({ employeeId, status: 'active', attributes: {}, effectiveAt: new Date(step.dueAt).toISOString(), eventId: step.eventId });
        return;
      case 'revoke': {
        // Re-check at the end of the grace period: a later move may have made it due again.
        const policy = await db.getPolicy();
        const { holdings, requestedEntitlements } = await db.listHoldings(state.person.identityId as string);
        const due = evaluateBirthright(policy.birthright, state.person.attributes);
        const { remove } = diffEntitlements(due, holdings, requestedEntitlements);
        const revocable = holdings.filter((h) => step.entitlementIds.includes(h.entitlementId) && remove.includes(h.entitlementId));
        await revokeAll(revocable, 'mover', policy);
        return;
      }
      case 'erase':
        if (state.person.status === 'terminated') await db.deleteAccounts(employeeId, 'retention period over');
        return;
    }
  }

  async function applyEvent(step: Extract<Step, { kind: 'event' }>): Promise<void> {
    const { event } = step;
    const person = state.person;
    const known = person.status !== 'none';

    if (!known && event.type !== 'hire' && event.type !== 'rehire') {
      // Out of order: the hire has not arrived yet. Wait for it rather than drop this.
      state.parked.push(event);
      await db.setEventStatus(event.eventId, 'dispatched', 'waiting for the hire of this person');
      return;
    }
    if (event.type === 'update' && person.lastEffectiveAt && Date.parse(event.effectiveAt) < Date.parse(person.lastEffectiveAt)) {
      await db.setEventStatus(event.eventId, 'ignored', `stale: effective ${event.effectiveAt}, older than the change applied at ${person.lastEffectiveAt}`);
      return;
    }

    switch (event.type) {
      case 'hire':
      case 'rehire':
        if (person.status === 'active' || person.status === 'on_leave') await mover(event);
        else if (step.preProvision && Date.parse(event.effectiveAt) > Date.now()) await joiner(event, { preProvision: true });
        else await joiner(event, { rehire: person.status === 'terminated' || person.status === 'rescinded' });
        break;
      case 'update':
        await mover(event);
        break;
      case 'terminate':
        await leaver(event);
        break;
      case 'rescind':
        await rescind(event);
        break;
      case 'leave_start':
        if (person.status === 'active') {
          await db.setAccountsEnabled(employeeId, false, 'leave of absence');
          await savePerson('on_leave', event);
        }
        break;
      case 'leave_end':
        if (person.status === 'on_leave') {
          await db.setAccountsEnabled(employeeId, true, 'back from leave');
          await savePerson('active', event);
        }
        break;
    }
    await db.setEventStatus(event.eventId, 'applied', null);

    // The hire is in: events that came before it are due now, in effective order.
    if ((event.type === 'hire' || event.type === 'rehire') && state.parked.length) {
      for (const parked of state.parked.splice(0)) schedule({ kind: 'event', dueAt: Date.parse(parked.effectiveAt), seq: nextSeq(), event: parked });
    }
  }

  async function joiner(event: HrEventSignal, options: { preProvision?: boolean; rehire?: boolean }): Promise<void> {
    cancelSteps(['erase', 'revoke']);
    await savePerson(options.preProvision ? 'pre_hire' : 'active', event, { hireDate: event.effectiveAt, terminationDate: null });
    const policy = await db.getPolicy();
    const due = evaluateBirthright(policy.birthright, state.person.attributes);
    if (due.length) {
      const planned = await db.createBirthrightRequests({ identityId: state.person.identityId as string, eventId: event.eventId, items: due });
      const enabled = !options.preProvision || !policy.lifecycle.preProvisionDisabled;
      await provisionAll(planned, policy, { employeeId, enabled, reenable: options.rehire === true });
    }
    if (options.preProvision) schedule({ kind: 'start', dueAt: Date.parse(event.effectiveAt), seq: nextSeq(), eventId: event.eventId });
  }

  async function mover(event: HrEventSignal): Promise<void> {
    const before = state.person.attributes;
    await savePerson(state.person.status as IdentityStatus, event);
    if (!isMove(before, event.attributes)) return;
    const policy = await db.getPolicy();
    const { holdings, requestedEntitlements } = await db.listHoldings(state.person.identityId as string);
    const due = evaluateBirthright(policy.birthright, state.person.attributes);
    const diff = diffEntitlements(due, holdings, requestedEntitlements);
    if (diff.add.length) {
      const planned = await db.createBirthrightRequests({ identityId: state.person.identityId as string, eventId: event.eventId, items: diff.add });
      await provisionAll(planned, policy, { employeeId, enabled: state.person.status === 'active' });
    }
    await db.recordMoverReview(employeeId, diff.review, event.eventId);
    if (diff.remove.length === 0) return;
    const grace = policy.lifecycle.moverGracePeriod;
    if (grace <= 0) {
      await revokeAll(
        holdings.filter((h) => diff.remove.includes(h.entitlementId)),
        'mover',
        policy,
      );
    } else {
      schedule({ kind: 'revoke', dueAt: Date.now() + grace, seq: nextSeq(), eventId: event.eventId, entitlementIds: diff.remove });
    }
  }

  async function leaver(event: HrEventSignal): Promise<void> {
    if (state.person.status === 'terminated') return;
    cancelSteps(['start', 'revoke']);
    await savePerson('terminated', event, { terminationDate: event.effectiveAt });
    const policy = await db.getPolicy();
    const { holdings } = await db.listHoldings(state.person.identityId as string);
    await revokeAll(holdings, 'leaver', policy);
    await db.cancelPendingRequests(employeeId, 'leaver');
    schedule({ kind: 'erase', dueAt: Date.parse(event.effectiveAt) + policy.lifecycle.deleteAfter, seq: nextSeq(), eventId: event.eventId });
  }

  async function rescind(event: HrEventSignal): Promise<void> {
    if (state.person.status !== 'pre_hire' && state.person.status !== 'active') return;
    cancelSteps(['start', 'revoke', 'erase']);
    const policy = await db.getPolicy();
    const { holdings } = await db.listHoldings(state.person.identityId as string);
    await revokeAll(holdings, 'rescinded', policy);
    await db.cancelPendingRequests(employeeId, 'rescinded');
    await db.deleteAccounts(employeeId, 'hire rescinded');
    await savePerson('rescinded', event);
  }
}

/** Accounts first (a group needs a member to add), then every group of that target at once. */
async function provisionAll(planned: PlannedGrant[], policy: PolicySnapshot, options: { employeeId: string; enabled: boolean; reenable?: boolean }): Promise<void> {
  const targets = [...new Set(planned.map((g) => g.target))];
  await Promise.all(
    targets.map(async (target) => {
      const onTarget = planned.filter((g) => g.target === target);
      const accounts = onTarget.filter((g) => g.kind === 'account');
      const accountOk = (await Promise.all(accounts.map((g) => provisionGrant(g, policy, options.enabled)))).every(Boolean);
      const rest = onTarget.filter((g) => g.kind !== 'account');
      if (!accountOk) {
        await Promise.all(rest.map((g) => db.markGrantFailed(g.grantId, `the ${target} account could not be provisioned`)));
        return;
      }
      // A rehired person's account still carries the leaver's lock: lift it explicitly.
      if (options.reenable && accounts.length) await connectorActivities(policy).setAccountsEnabled(options.employeeId, true, 'rehire');
      await Promise.all(rest.map((g) => provisionGrant(g, policy, options.enabled)));
    }),
  );
}

/** pending -> provisioning -> (read back) -> active; or failed with an alert. */
async function provisionGrant(grant: PlannedGrant, policy: PolicySnapshot, enabled: boolean): Promise<boolean> {
  if (grant.grantStatus === 'active') return true;
  const connector = connectorActivities(policy);
  try {
    await connector.provisionGrant(grant.grantId, { enabled });
    await connector.verifyGrant(grant.grantId);
    return true;
  } catch (err) {
    if (!(err instanceof ActivityFailure)) throw err;
    log.warn('grant failed', { grantId: grant.grantId });
    await db.markGrantFailed(grant.grantId, failureMessage(err));
    return false;
  }
}

/** Accounts are disabled first (the person is locked out at once), then groups go. */
async function revokeAll(holdings: Holding[], reason: RevokeReason, policy: PolicySnapshot): Promise<void> {
  const accounts = holdings.filter((h) => h.kind === 'account');
  await Promise.all(accounts.map((h) => revokeGrant(h, reason, policy)));
  await Promise.all(holdings.filter((h) => h.kind !== 'account').map((h) => revokeGrant(h, reason, policy)));
}

async function revokeGrant(holding: Holding, reason: RevokeReason, policy: PolicySnapshot): Promise<boolean> {
  if (holding.grantStatus === 'revoked') return true;
  const connector = connectorActivities(policy);
  try {
    await connector.revokeGrant(holding.grantId, reason);
    await connector.verifyRevoked(holding.grantId);
    return true;
  } catch (err) {
    if (!(err instanceof ActivityFailure)) throw err;
    log.warn('revoke failed', { grantId: holding.grantId });
    await db.markGrantFailed(holding.grantId, failureMessage(err), 'revoke');
    return false;
  }
}
