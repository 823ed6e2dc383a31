// One long-lived workflow per person (`lifecycle:<employeeId>`), fed by signalWithStart.
// It orders that person's HR events by effective time, sleeps on durable timers until each
// is due, and applies them one at a time, so two events for one person never race.
import {
  ActivityFailure,
  allHandlersFinished,
  ApplicationFailure,
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
import { evaluateBirthright } from '../domain/birthright.js';
import type { PolicySnapshot } from '../domain/policy.js';
import type { HrEventSignal } from '../domain/types.js';
import type { PlannedGrant } from '../activities/grants.js';

export const hrEventSignal = defineSignal<[HrEventSignal]>('hrEvent');
export const lifecycleStateQuery = defineQuery<LifecycleState>('state');

export interface LifecycleState {
  employeeId: string;
  /** Events not yet applied, soonest first. */
  pending: HrEventSignal[];
  /** Ids already taken in, newest last; bounded so continue-as-new stays small. */
  seen: string[];
  applied: number;
}

export interface LifecycleInput {
  employeeId: string;
  state?: LifecycleState;
}

const SEEN_LIMIT = 1_000;
// Well under Temporal's 50k-event limit; also honour the server's own suggestion.
const HISTORY_LIMIT = 5_000;

// Bookkeeping activities: quick database writes that retry until Postgres answers.
const db = proxyActivities<Activities>({
  startToCloseTimeout: '30s',
  retry: { initialInterval: '1s', maximumInterval: '1m', backoffCoefficient: 2 },
});

function byEffectiveTime(a: HrEventSignal, b: HrEventSignal): number {
  const diff = Date.parse(a.effectiveAt) - Date.parse(b.effectiveAt);
  return diff !== 0 ? diff : a.eventId < b.eventId ? -1 : a.eventId > b.eventId ? 1 : 0;
}

function failureMessage(err: unknown): string {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  return cause instanceof Error ? cause.message : String(cause);
}

export async function lifecycle(input: LifecycleInput): Promise<void> {
  const state: LifecycleState = input.state ?? { employeeId: input.employeeId, pending: [], seen: [], applied: 0 };
  const seen = new Set(state.seen);

  setHandler(hrEventSignal, (event) => {
    if (seen.has(event.eventId)) return; // a redelivered job: applied once only
    seen.add(event.eventId);
    state.seen.push(event.eventId);
    if (state.seen.length > SEEN_LIMIT) seen.delete(state.seen.shift() as string);
    state.pending.push(event);
    state.pending.sort(byEffectiveTime);
  });
  setHandler(lifecycleStateQuery, () => state);

  for (;;) {
    await condition(() => state.pending.length > 0);
    const next = state.pending[0] as HrEventSignal;
    const waitMs = Date.parse(next.effectiveAt) - Date.now();
    if (waitMs > 0) {
      // Sleep until due, but wake if an earlier event arrives so the plan is redone.
      await condition(() => state.pending[0] !== next, waitMs);
      continue;
    }
    state.pending.shift();
    await applyEvent(next);
    state.applied += 1;

    const info = workflowInfo();
    if (info.continueAsNewSuggested || info.historyLength > HISTORY_LIMIT) {
      await condition(allHandlersFinished);
      await continueAsNew<typeof lifecycle>({ employeeId: state.employeeId, state });
    }
  }
}

async function applyEvent(event: HrEventSignal): Promise<void> {
  switch (event.type) {
    case 'hire':
      await joiner(event);
      await db.setEventStatus(event.eventId, 'applied', null);
      return;
    default:
      // Movers, leavers and the rest come with the lifecycle issue; the event stays stored
      // and acknowledged, and this says so rather than pretending it was applied.
      await db.setEventStatus(event.eventId, 'dispatched', `${event.type} events are stored; applying them is not built yet`);
  }
}

async function joiner(event: HrEventSignal): Promise<void> {
  const identity = await db.upsertIdentity({
    employeeId: event.employeeId,
    status: 'active',
    attributes: event.attributes,
    hireDate: event.effectiveAt,
    effectiveAt: event.effectiveAt,
    eventId: event.eventId,
  });
  const policy = await db.getPolicy();
  const due = evaluateBirthright(policy.birthright, identity.attributes);
  if (due.length === 0) {
    log.info('no birthright entitlements match', { employeeId: event.employeeId });
    return;
  }
  const planned = await db.createBirthrightRequests({ identityId: identity.id, eventId: event.eventId, items: due });
  await provisionAll(planned, policy);
}

/** Accounts first (a group needs a member to add), then every group of that target at once. */
async function provisionAll(planned: PlannedGrant[], policy: PolicySnapshot): Promise<void> {
  const targets = [...new Set(planned.map((g) => g.target))];
  await Promise.all(
    targets.map(async (target) => {
      const onTarget = planned.filter((g) => g.target === target);
      const accounts = onTarget.filter((g) => g.kind === 'account');
      const accountOk = (await Promise.all(accounts.map((g) => provisionGrant(g, policy)))).every(Boolean);
      const rest = onTarget.filter((g) => g.kind !== 'account');
      if (!accountOk) {
        await Promise.all(rest.map((g) => db.markGrantFailed(g.grantId, `the ${target} account could not be provisioned`)));
        return;
      }
      await Promise.all(rest.map((g) => provisionGrant(g, policy)));
    }),
  );
}

/** pending -> provisioning -> (read back) -> active; or failed with an alert. */
async function provisionGrant(grant: PlannedGrant, policy: PolicySnapshot): Promise<boolean> {
  if (grant.grantStatus === 'active') return true;
  const { initialInterval, maximumInterval, maximumAttempts } = policy.retries;
  const connector = proxyActivities<Activities>({
    startToCloseTimeout: '1m',
    retry: { initialInterval, maximumInterval, maximumAttempts, backoffCoefficient: 2 },
  });
  try {
    await connector.provisionGrant(grant.grantId);
    await connector.verifyGrant(grant.grantId);
    return true;
  } catch (err) {
    if (!(err instanceof ActivityFailure)) throw err;
    const type = err.cause instanceof ApplicationFailure ? err.cause.type : undefined;
    log.warn('grant failed', { grantId: grant.grantId, type });
    await db.markGrantFailed(grant.grantId, failureMessage(err));
    return false;
  }
}
