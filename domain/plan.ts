// Explains a person's pending work: when each step is due and what it will grant or revoke,
// with the rule behind it. It replays the lifecycle core (domain/lifecycle.ts) on a copy of
// the workflow's own state, as if every effect succeeded, and executes nothing: the plan
// and the workflow cannot disagree, because they are the same function.
import type { Effect, Holdings, LifecycleState } from './lifecycle.js';
import { decide, nextWakeAt, simulateEffects, type SimulatedPerson } from './lifecycle.js';
import type { PolicySnapshot } from './policy.js';

export interface PlanInput {
  /** The workflow's state, as its `state` query returns it. */
  state: LifecycleState;
  held: Holdings;
  policy: PolicySnapshot;
  now: number;
  /** At most this many wake-ups are explained (a plan, not a simulation of years). */
  maxSteps?: number;
}

export interface ExplainedStep {
  dueAt: string;
  step: string;
  eventId?: string;
  effect: string;
  grants: Array<{ entitlementId: string; rules: string[] }>;
  revokes: Array<{ entitlementId: string; why: string }>;
}

export function explainPlan(input: PlanInput): ExplainedStep[] {
  const sim: SimulatedPerson = { state: JSON.parse(JSON.stringify(input.state)) as LifecycleState, holdings: JSON.parse(JSON.stringify(input.held)) as Holdings };
  const out: ExplainedStep[] = [];
  let now = input.now;
  for (let i = 0; i < (input.maxSteps ?? 50); i += 1) {
    const wake = nextWakeAt(sim.state, now, input.policy);
    if (wake === undefined) break;
    now = wake;
    const before = sim.state.applied.status;
    const decision = decide(sim.state, now, input.policy, sim.holdings);
    const explained = describe(decision.effects, before, decision.status, sim.state, now);
    if (explained) out.push(explained);
    simulateEffects(sim, decision, input.policy);
  }
  // Events still waiting for a hire that HR has not sent: nothing happens until it comes.
  for (const e of sim.state.events) {
    if (e.outcome?.status === 'dispatched' && e.at <= now && sim.state.applied.status === 'none') {
      out.push({ dueAt: e.effectiveAt, step: `${e.type} event`, eventId: e.eventId, effect: 'waits for the hire of this person', grants: [], revokes: [] });
    }
  }
  return out;
}

function describe(effects: Effect[], before: string, after: string, state: LifecycleState, now: number): ExplainedStep | undefined {
  const outcomes = effects.filter((e): e is Extract<Effect, { kind: 'eventOutcome' }> => e.kind === 'eventOutcome');
  const work = effects.filter((e) => e.kind !== 'eventOutcome' && e.kind !== 'saveIdentity');
  const statusChange = before !== after ? `the person becomes ${after}` : undefined;
  if (!work.length && !outcomes.length && !statusChange) return undefined;

  const texts: string[] = [];
  const grants: ExplainedStep['grants'] = [];
  const revokes: ExplainedStep['revokes'] = [];
  for (const effect of work) {
    switch (effect.kind) {
      case 'provision':
        grants.push(...effect.items.map((i) => ({ entitlementId: i.entitlementId, rules: i.rules })));
        texts.push(effect.enabled ? 'grant birthright access' : 'pre-provision birthright access with the accounts disabled until the start date');
        break;
      case 'revoke':
        revokes.push(...effect.holdings.map((h) => ({ entitlementId: h.entitlementId, why: effect.why })));
        texts.push(effect.reason === 'mover' ? 'revoke what the move made no longer due' : 'disable every account and revoke every grant');
        break;
      case 'setAccountsEnabled':
        texts.push(`${effect.enabled ? 'enable' : 'disable'} the accounts (${effect.reason})`);
        break;
      case 'updateAccounts':
        texts.push('bring the accounts up to date with the new attributes');
        break;
      case 'deleteAccounts':
        texts.push(`delete the accounts in every target (${effect.reason})`);
        break;
      case 'cancelRequests':
        texts.push('cancel pending requests');
        break;
      case 'moverReview':
        texts.push(`requested access (${effect.entitlementIds.join(', ')}) is kept and listed for the new manager to review`);
        break;
      default:
        break;
    }
  }
  if (statusChange) texts.unshift(statusChange);
  for (const o of outcomes) {
    if (o.status === 'ignored') texts.push(`${eventName(state, o.eventId)} is ignored: ${o.reason}`);
    else if (o.status === 'dispatched') texts.push(`${eventName(state, o.eventId)}: ${o.reason}`);
    else if (o.reason) texts.push(`${eventName(state, o.eventId)}: ${o.reason}`);
  }
  const main = outcomes.find((o) => o.status !== 'dispatched') ?? outcomes[0];
  const dueEvents = state.events.filter((e) => e.at === now);
  const step = main ? eventName(state, main.eventId) : stepName(work, dueEvents.length > 0, state, now);
  return { dueAt: new Date(now).toISOString(), step, ...(main ? { eventId: main.eventId } : {}), effect: texts.join('; ') || 'nothing changes', grants, revokes };
}

function eventName(state: LifecycleState, eventId: string): string {
  const e = state.events.find((x) => x.eventId === eventId);
  return e ? `${e.type} event` : 'event';
}

function stepName(work: Effect[], eventDue: boolean, state: LifecycleState, now: number): string {
  if (work.some((e) => e.kind === 'deleteAccounts')) return 'retention period ends';
  if (work.some((e) => e.kind === 'revoke' && e.reason === 'mover')) return 'mover grace period ends';
  if (work.some((e) => e.kind === 'provision' && !e.enabled)) return 'pre-provisioning';
  if (work.some((e) => e.kind === 'setAccountsEnabled' && e.reason === 'start date') || state.events.some((e) => (e.type === 'hire' || e.type === 'rehire') && e.at === now)) return 'start date';
  return eventDue ? 'event' : 'scheduled step';
}
