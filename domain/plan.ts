// Explains a person's pending work: when each step is due and what it will grant or revoke,
// with the rule behind it. A pure simulation of the lifecycle workflow's decisions, fed with
// the workflow's own state (its query) and what the person holds now.
import { evaluateBirthright } from './birthright.js';
import { diffEntitlements, isMove, type HeldEntitlement } from './entitlement-diff.js';
import type { PolicySnapshot } from './policy.js';
import type { HrEventSignal, IdentityAttributes, IdentityStatus } from './types.js';

/** The workflow's step, as its state query returns it. */
export type PlanStep =
  | { kind: 'event'; dueAt: number; event: HrEventSignal; preProvision?: boolean }
  | { kind: 'start'; dueAt: number; eventId: string }
  | { kind: 'revoke'; dueAt: number; eventId: string; entitlementIds: string[] }
  | { kind: 'erase'; dueAt: number; eventId: string };

export interface PlanInput {
  steps: PlanStep[];
  parked: HrEventSignal[];
  person: { status: IdentityStatus | 'none'; attributes: IdentityAttributes; lastEffectiveAt?: string };
  held: HeldEntitlement[];
  requested: string[];
  policy: PolicySnapshot;
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
  let status = input.person.status;
  let attributes = { ...input.person.attributes };
  let lastEffectiveAt = input.person.lastEffectiveAt;
  // What the person will hold as the steps play out: entitlement -> request kind.
  let held: HeldEntitlement[] = input.held.filter((h) => h.grantStatus !== 'revoked');
  const { policy } = input;
  const out: ExplainedStep[] = [];
  const hold = (due: ReturnType<typeof evaluateBirthright>) => {
    for (const d of due) if (!held.some((h) => h.entitlementId === d.entitlementId)) held.push({ entitlementId: d.entitlementId, requestKind: 'birthright', grantStatus: 'active' });
  };
  const revokeAll = (why: string) => {
    const revokes = held.map((h) => ({ entitlementId: h.entitlementId, why }));
    held = [];
    return revokes;
  };

  for (const step of input.steps) {
    const dueAt = new Date(step.dueAt).toISOString();
    if (step.kind === 'start') {
      out.push({ dueAt, step: 'start date', eventId: step.eventId, effect: 'enable the pre-provisioned accounts; the person becomes active', grants: [], revokes: [] });
      status = 'active';
      continue;
    }
    if (step.kind === 'revoke') {
      const due = new Set(evaluateBirthright(policy.birthright, attributes).map((d) => d.entitlementId));
      const revoked = step.entitlementIds.filter((id) => !due.has(id) && !input.requested.includes(id));
      held = held.filter((h) => !revoked.includes(h.entitlementId));
      out.push({ dueAt, step: 'mover grace period ends', eventId: step.eventId, effect: 'revoke what the move made no longer due', grants: [], revokes: revoked.map((id) => ({ entitlementId: id, why: 'no birthright rule or approved request wants it any more' })) });
      continue;
    }
    if (step.kind === 'erase') {
      out.push({ dueAt, step: 'retention period ends', eventId: step.eventId, effect: status === 'terminated' ? 'delete the accounts in every target (erasure)' : 'nothing: the person is no longer terminated', grants: [], revokes: [] });
      continue;
    }
    const { event } = step;
    const base = { dueAt, step: `${event.type} event`, eventId: event.eventId };
    if (status === 'none' && event.type !== 'hire' && event.type !== 'rehire') {
      out.push({ ...base, effect: 'waits for the hire of this person', grants: [], revokes: [] });
      continue;
    }
    if (event.type === 'update' && lastEffectiveAt && Date.parse(event.effectiveAt) < Date.parse(lastEffectiveAt)) {
      out.push({ ...base, effect: `ignored as stale: older than the change applied at ${lastEffectiveAt}`, grants: [], revokes: [] });
      continue;
    }
    lastEffectiveAt = event.effectiveAt;
    switch (event.type) {
      case 'hire':
      case 'rehire': {
        if (status === 'active' || status === 'on_leave') {
          out.push({ ...base, ...moverStep(event.attributes) });
          break;
        }
        attributes = { ...attributes, ...event.attributes };
        const due = evaluateBirthright(policy.birthright, attributes);
        const pre = step.preProvision && Date.parse(event.effectiveAt) > step.dueAt;
        out.push({ ...base, effect: pre ? `pre-provision disabled accounts; enable them at the start (${event.effectiveAt})` : status === 'terminated' ? 'rehire: restore the account and grant birthright access' : 'grant birthright access', grants: due, revokes: [] });
        hold(due);
        status = pre ? 'pre_hire' : 'active';
        break;
      }
      case 'update':
        out.push({ ...base, ...moverStep(event.attributes) });
        break;
      case 'terminate':
        out.push({ ...base, effect: `disable every account, revoke every grant, cancel pending requests; delete accounts ${new Date(Date.parse(event.effectiveAt) + policy.lifecycle.deleteAfter).toISOString()}`, grants: [], revokes: status === 'terminated' ? [] : revokeAll('leaver') });
        status = 'terminated';
        break;
      case 'rescind':
        out.push({ ...base, effect: 'revoke everything, cancel pending requests and delete the pre-provisioned accounts', grants: [], revokes: revokeAll('hire rescinded') });
        status = 'rescinded';
        break;
      case 'leave_start':
        out.push({ ...base, effect: status === 'active' ? 'suspend (disable) the accounts; grants stay' : 'nothing: the person is not active', grants: [], revokes: [] });
        if (status === 'active') status = 'on_leave';
        break;
      case 'leave_end':
        out.push({ ...base, effect: status === 'on_leave' ? 'restore (enable) the accounts' : 'nothing: the person is not on leave', grants: [], revokes: [] });
        if (status === 'on_leave') status = 'active';
        break;
    }
  }
  for (const event of input.parked) {
    out.push({ dueAt: event.effectiveAt, step: `${event.type} event`, eventId: event.eventId, effect: 'waits for the hire of this person', grants: [], revokes: [] });
  }
  return out;

  function moverStep(change: IdentityAttributes): Pick<ExplainedStep, 'effect' | 'grants' | 'revokes'> {
    const before = attributes;
    attributes = { ...attributes, ...change };
    if (!isMove(before, change)) return { effect: 'update attributes; no access change', grants: [], revokes: [] };
    const due = evaluateBirthright(policy.birthright, attributes);
    const diff = diffEntitlements(due, held, input.requested);
    hold(diff.add);
    held = held.filter((h) => !diff.remove.includes(h.entitlementId)); // accounted for here, not again later
    const grace = policy.lifecycle.moverGracePeriod;
    const when = grace > 0 ? `after the grace period (${Math.round(grace / 1000)}s)` : 'at once';
    return {
      effect: `mover: grant what the new attributes make due${diff.remove.length ? `, revoke the rest ${when}` : ''}${diff.review.length ? `; requested access (${diff.review.join(', ')}) is kept and listed for the new manager to review` : ''}`,
      grants: diff.add,
      revokes: diff.remove.map((id) => ({ entitlementId: id, why: `no longer due by any birthright rule (${when})` })),
    };
  }
}
