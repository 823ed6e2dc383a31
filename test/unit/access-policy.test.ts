// The access request policy (domain/access-policy.ts): every rule alone, the order in which
// they are checked, separation of duties against what is held and what is pending, and who
// approves each stage (manager, owner, both, the fallback, never oneself), and escalation.
import { describe, expect, it } from 'vitest';
import {
  ACCESS_RULES,
  JUSTIFICATION_MAX_LENGTH,
  checkAccessRequest,
  directoryOf,
  escalationApprover,
  resolveApprovalStages,
  sodConflict,
  type AccessRequestContext,
  type AccessRequestInput,
  type AccessRule,
  type ApprovalRoute,
  type DirectoryPerson,
  type RequestableEntitlement,
  type StageInput,
} from '../../domain/access-policy.js';
import type { IdentityStatus } from '../../domain/types.js';

const HOUR = 3_600_000;

// E1 asks; M1 is their manager (whose manager is M2); O1 owns prod-admin and payments; F1 is
// the fallback approver when one is configured.
const PEOPLE: Record<string, DirectoryPerson> = {
  E1: { status: 'active', managerId: 'M1' },
  M1: { status: 'active', managerId: 'M2' },
  M2: { status: 'active', managerId: null },
  O1: { status: 'active', managerId: 'M2' },
  F1: { status: 'active', managerId: 'M2' },
  L1: { status: 'terminated', managerId: 'M2' },
  P1: { status: 'on_leave', managerId: 'M2' },
};

const CATALOGUE: RequestableEntitlement[] = [
  { id: 'all-staff', requestable: false, maxDurationMs: null },
  { id: 'wiki', requestable: true, maxDurationMs: null },
  { id: 'sales', requestable: true, maxDurationMs: null },
  { id: 'prod-admin', requestable: true, owner: 'O1', approver: 'owner', maxDurationMs: 4 * HOUR },
  { id: 'payments', requestable: true, owner: 'O1', approver: 'manager_then_owner', maxDurationMs: null },
];

interface Case {
  request: AccessRequestInput;
  context: AccessRequestContext;
  people: Record<string, DirectoryPerson>;
}

/** A request that passes every rule: E1 asks for prod-admin for an hour; O1 approves. */
function baseCase(): Case {
  const people = structuredClone(PEOPLE);
  return {
    request: { employeeId: 'E1', entitlementId: 'prod-admin', justification: 'on call this week: INC-1234', durationMs: HOUR, requestedBy: 'E1' },
    context: {
      entitlements: structuredClone(CATALOGUE),
      subject: people.E1!,
      held: ['all-staff'],
      pending: ['wiki'],
      directory: directoryOf(people),
      sod: [
        { name: 'prod-vs-sales', conflicting: ['prod-admin', 'sales'] },
        { name: 'pay-vs-prod', conflicting: ['payments', 'prod-admin'] },
      ],
      approval: { approver: 'manager' },
    },
    people,
  };
}

const entitlement = (c: Case, id: string) => c.context.entitlements.find((e) => e.id === id)!;

/** For each rule, the smallest change to the base case that makes it (and, alone, only it) fail. */
const BREAK: Record<AccessRule, (c: Case) => void> = {
  justification_required: (c) => (c.request.justification = '   '),
  justification_invalid: (c) => (c.request.justification = 'line one\nline two'),
  duration_invalid: (c) => (c.request.durationMs = 0),
  unknown_entitlement: (c) => (c.request.entitlementId = 'no-such-thing'),
  not_requestable: (c) => (entitlement(c, 'prod-admin').requestable = false),
  unknown_subject: (c) => (c.context.subject = null),
  subject_not_active: (c) => (c.context.subject = { ...c.context.subject!, status: 'on_leave' }),
  duration_required: (c) => delete c.request.durationMs,
  duration_too_long: (c) => (c.request.durationMs = 5 * HOUR),
  already_held: (c) => (c.context.held = [...c.context.held, 'prod-admin']),
  already_pending: (c) => (c.context.pending = [...c.context.pending, 'prod-admin']),
  sod_conflict: (c) => (c.context.held = [...c.context.held, 'sales']),
  no_approver: (c) => (entitlement(c, 'prod-admin').owner = null),
  self_approval: (c) => (c.request.requestedBy = 'O1'),
};

const check = (c: Case) => checkAccessRequest(c.request, c.context);

describe('checkAccessRequest', () => {
  it('passes the base request, with the owner as the one approver', () => {
    expect(check(baseCase())).toEqual({ ok: true, stages: [{ role: 'owner', approverId: 'O1', fallbackReason: null }] });
  });

  it.each(ACCESS_RULES)('reports %s when only that rule fails', (rule) => {
    const c = baseCase();
    BREAK[rule](c);
    const result = check(c);
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.rule).toBe(rule);
      expect(result.detail).not.toBe('');
    }
  });

  // Every pair of failing rules: the earlier one in ACCESS_RULES is reported. The later
  // change is made first, so where both touch the same field the earlier one's value wins.
  const pairs = ACCESS_RULES.flatMap((first, i) => ACCESS_RULES.slice(i + 1).map((later) => [first, later] as const));
  it.each(pairs)('reports %s before %s', (first, later) => {
    const c = baseCase();
    BREAK[later](c);
    BREAK[first](c);
    const result = check(c);
    expect(result.ok ? 'ok' : result.rule).toBe(first);
  });

  it('reports the first rule when every rule fails', () => {
    const c = baseCase();
    for (const rule of [...ACCESS_RULES].reverse()) BREAK[rule](c);
    const result = check(c);
    expect(result.ok ? 'ok' : result.rule).toBe('justification_required');
  });

  describe('justification', () => {
    it.each([
      ['empty', '', 'justification_required'],
      ['blank', ' \t ', 'justification_required'],
      ['padded', ' needed for the audit', 'justification_invalid'],
      ['a control character', 'needed\u0007', 'justification_invalid'],
      ['a NUL', 'needed\u0000', 'justification_invalid'],
      ['a bidirectional override', 'needed \u202Efor the audit', 'justification_invalid'],
      ['not NFC', 'Zoe\u0301 asked', 'justification_invalid'],
      ['one character too long', 'x'.repeat(JUSTIFICATION_MAX_LENGTH + 1), 'justification_invalid'],
      ['exactly the cap', 'x'.repeat(JUSTIFICATION_MAX_LENGTH), 'ok'],
      ['one character', 'x', 'ok'],
    ])('%s: %s', (_name, justification, expected) => {
      const c = baseCase();
      c.request.justification = justification;
      const result = check(c);
      expect(result.ok ? 'ok' : result.rule).toBe(expected);
    });

    it('does not echo the justification or an unknown entitlement id back', () => {
      const c = baseCase();
      c.request.justification = 'secret\u0000';
      const bad = check(c);
      expect(bad.ok ? '' : bad.detail).not.toContain('secret');
      const d = baseCase();
      d.request.entitlementId = 'evil\u001b[31m';
      const unknown = check(d);
      expect(unknown.ok ? '' : unknown.detail).not.toContain('evil');
    });
  });

  describe('duration', () => {
    it.each([
      ['a limited entitlement, at its limit', 'prod-admin', 4 * HOUR, 'ok'],
      ['a limited entitlement, one ms over', 'prod-admin', 4 * HOUR + 1, 'duration_too_long'],
      ['a limited entitlement, none given', 'prod-admin', undefined, 'duration_required'],
      ['an unlimited entitlement, none given', 'wiki-2', undefined, 'ok'],
      ['an unlimited entitlement, any length', 'wiki-2', 365 * 24 * HOUR, 'ok'],
      ['negative', 'prod-admin', -HOUR, 'duration_invalid'],
      ['a fraction of a ms', 'prod-admin', 1.5, 'duration_invalid'],
      ['not a number', 'prod-admin', Number.NaN, 'duration_invalid'],
      ['infinite', 'wiki-2', Number.POSITIVE_INFINITY, 'duration_invalid'],
    ])('%s', (_name, entitlementId, durationMs, expected) => {
      const c = baseCase();
      c.context.entitlements = [...c.context.entitlements, { id: 'wiki-2', requestable: true, maxDurationMs: null }];
      c.request.entitlementId = entitlementId;
      if (durationMs === undefined) delete c.request.durationMs;
      else c.request.durationMs = durationMs;
      const result = check(c);
      expect(result.ok ? 'ok' : result.rule).toBe(expected);
    });

    it('names the limit in words', () => {
      const c = baseCase();
      c.request.durationMs = 8 * HOUR;
      const result = check(c);
      expect(result.ok ? '' : result.detail).toBe('prod-admin is granted for at most 4h, not 8h');
    });
  });

  it.each(['pre_hire', 'on_leave', 'terminated', 'rescinded'] as IdentityStatus[])('refuses a subject who is %s', (status) => {
    const c = baseCase();
    c.context.subject = { ...c.context.subject!, status };
    const result = check(c);
    expect(result.ok ? 'ok' : result.rule).toBe('subject_not_active');
  });

  it('finds entitlements by their own id only, never by an inherited property name', () => {
    for (const id of ['constructor', '__proto__', 'toString']) {
      const c = baseCase();
      c.request.entitlementId = id;
      const result = check(c);
      expect(result.ok ? 'ok' : result.rule).toBe('unknown_entitlement');
    }
  });
});

describe('separation of duties', () => {
  const rules = [
    { name: 'prod-vs-sales', conflicting: ['prod-admin', 'sales'] },
    { name: 'pay-vs-prod', conflicting: ['payments', 'prod-admin', 'wiki'] },
  ];

  it.each([
    ['nothing conflicting', 'prod-admin', ['all-staff'], ['payments-x'], null],
    ['a held conflict', 'prod-admin', ['sales'], [], { rule: 'prod-vs-sales', entitlementId: 'sales', source: 'held' }],
    ['a pending conflict', 'prod-admin', [], ['sales'], { rule: 'prod-vs-sales', entitlementId: 'sales', source: 'pending' }],
    ['held named before pending', 'prod-admin', ['sales'], ['sales'], { rule: 'prod-vs-sales', entitlementId: 'sales', source: 'held' }],
    ['the first rule in config order', 'prod-admin', ['payments'], ['sales'], { rule: 'prod-vs-sales', entitlementId: 'sales', source: 'pending' }],
    ['the second rule when the first is clear', 'prod-admin', ['wiki'], [], { rule: 'pay-vs-prod', entitlementId: 'wiki', source: 'held' }],
    ['either direction', 'sales', [], ['prod-admin'], { rule: 'prod-vs-sales', entitlementId: 'prod-admin', source: 'pending' }],
    ['the requested entitlement itself does not conflict', 'prod-admin', ['prod-admin'], [], null],
    ['an entitlement in no rule', 'all-staff', ['sales', 'prod-admin'], [], null],
  ])('%s', (_name, requested, held, pending, expected) => {
    expect(sodConflict(requested, held, pending, rules)).toEqual(expected);
  });

  it('refuses a request conflicting with a pending one, naming the rule and the entitlement', () => {
    const c = baseCase();
    c.context.pending = ['sales'];
    expect(check(c)).toEqual({
      ok: false,
      rule: 'sod_conflict',
      detail: 'separation of duties rule "prod-vs-sales": E1 has a pending request for sales, which conflicts with prod-admin',
      conflict: { rule: 'prod-vs-sales', entitlementId: 'sales', source: 'pending' },
    });
  });
});

describe('resolveApprovalStages', () => {
  function stageInput(route: ApprovalRoute, change: (people: Record<string, DirectoryPerson>, input: StageInput) => void = () => {}): StageInput {
    const people = structuredClone(PEOPLE);
    const input: StageInput = {
      subjectId: 'E1',
      subject: people.E1!,
      requestedBy: 'E1',
      entitlement: { id: 'payments', requestable: true, owner: 'O1', approver: route, maxDurationMs: null },
      policy: { approver: 'manager', fallbackApprover: 'F1' },
      directory: directoryOf(people),
    };
    change(people, input);
    return input;
  }

  const direct = (role: 'manager' | 'owner', approverId: string) => ({ role, approverId, fallbackReason: null });
  const viaFallback = (role: 'manager' | 'owner', fallbackReason: string) => ({ role, approverId: 'F1', fallbackReason });

  it.each([
    ['the manager', 'manager', [direct('manager', 'M1')]],
    ['the owner', 'owner', [direct('owner', 'O1')]],
    ['the manager, then the owner', 'manager_then_owner', [direct('manager', 'M1'), direct('owner', 'O1')]],
  ] as const)('routes to %s', (_name, route, stages) => {
    expect(resolveApprovalStages(stageInput(route))).toEqual({ ok: true, stages });
  });

  it('takes the policy default when the entitlement names no route', () => {
    const input = stageInput('owner', (_p, i) => {
      delete i.entitlement.approver;
      i.policy.approver = 'manager_then_owner';
    });
    expect(resolveApprovalStages(input)).toEqual({ ok: true, stages: [direct('manager', 'M1'), direct('owner', 'O1')] });
  });

  it('folds approver ids written in another case', () => {
    const input = stageInput('manager_then_owner', (p, i) => {
      p.E1!.managerId = 'm1';
      i.entitlement.owner = 'o1';
    });
    expect(resolveApprovalStages(input)).toEqual({ ok: true, stages: [direct('manager', 'M1'), direct('owner', 'O1')] });
  });

  it('keeps two stages when one person is both manager and owner', () => {
    const input = stageInput('manager_then_owner', (_p, i) => (i.entitlement.owner = 'M1'));
    expect(resolveApprovalStages(input)).toEqual({ ok: true, stages: [direct('manager', 'M1'), direct('owner', 'M1')] });
  });

  // Each way the stage's own approver can be unusable: with a fallback the stage goes to it,
  // saying why; without one the request is refused with the same reason.
  const unusable: Array<[string, ApprovalRoute, (p: Record<string, DirectoryPerson>, i: StageInput) => void, 'no_approver' | 'self_approval', string]> = [
    ['no manager recorded', 'manager', (p) => (p.E1!.managerId = null), 'no_approver', 'no manager is recorded for E1'],
    ['a manager who has left', 'manager', (p) => (p.E1!.managerId = 'L1'), 'no_approver', 'the manager L1 is terminated'],
    ['a manager on leave', 'manager', (p) => (p.E1!.managerId = 'P1'), 'no_approver', 'the manager P1 is on_leave'],
    ['a manager nobody knows', 'manager', (p) => (p.E1!.managerId = 'X9'), 'no_approver', 'the manager X9 is not a known person'],
    ['the subject as their own manager', 'manager', (p) => (p.E1!.managerId = 'e1'), 'self_approval', 'the manager E1 is the person the access is for'],
    ['the manager as the requester', 'manager', (_p, i) => (i.requestedBy = 'M1'), 'self_approval', 'the manager M1 made the request'],
    ['no owner recorded', 'owner', (_p, i) => (i.entitlement.owner = undefined), 'no_approver', 'payments has no owner recorded'],
    ['an owner who has left', 'owner', (_p, i) => (i.entitlement.owner = 'L1'), 'no_approver', 'the owner L1 is terminated'],
    ['the owner asking for their own resource', 'owner', (_p, i) => (i.entitlement.owner = 'E1'), 'self_approval', 'the owner E1 is the person the access is for'],
  ];

  describe.each(unusable)('%s', (_name, route, change, rule, reason) => {
    const role = route === 'owner' ? 'owner' : 'manager';

    it('goes to the fallback approver, saying why', () => {
      expect(resolveApprovalStages(stageInput(route, change))).toEqual({ ok: true, stages: [viaFallback(role, reason)] });
    });

    it(`is refused as ${rule} without a fallback approver`, () => {
      const input = stageInput(route, (p, i) => {
        change(p, i);
        i.policy.fallbackApprover = null;
      });
      expect(resolveApprovalStages(input)).toEqual({ ok: false, rule, detail: `${reason}, and no fallback approver is configured`, stage: role });
    });
  });

  it.each([
    ['has left', 'L1', 'no_approver', 'the fallback approver L1 is terminated'],
    ['is unknown', 'X9', 'no_approver', 'the fallback approver X9 is not a known person'],
    ['is the subject', 'E1', 'self_approval', 'the fallback approver E1 is the person the access is for'],
  ] as const)('refuses when the fallback approver %s too', (_name, fallback, rule, reason) => {
    const input = stageInput('manager', (p, i) => {
      p.E1!.managerId = null;
      i.policy.fallbackApprover = fallback;
    });
    expect(resolveApprovalStages(input)).toEqual({ ok: false, rule, detail: `no manager is recorded for E1, and ${reason}`, stage: 'manager' });
  });

  it('refuses when the fallback approver made the request', () => {
    const input = stageInput('manager', (p, i) => {
      p.E1!.managerId = 'L1';
      i.requestedBy = 'F1';
    });
    expect(resolveApprovalStages(input)).toEqual({ ok: false, rule: 'self_approval', detail: 'the manager L1 is terminated, and the fallback approver F1 made the request', stage: 'manager' });
  });

  it('sends only the unusable stage of two to the fallback approver', () => {
    const input = stageInput('manager_then_owner', (_p, i) => (i.entitlement.owner = 'L1'));
    expect(resolveApprovalStages(input)).toEqual({ ok: true, stages: [direct('manager', 'M1'), viaFallback('owner', 'the owner L1 is terminated')] });
  });

  it('names the first stage that cannot be resolved', () => {
    const input = stageInput('manager_then_owner', (p, i) => {
      p.E1!.managerId = null;
      i.entitlement.owner = null;
      i.policy.fallbackApprover = null;
    });
    expect(resolveApprovalStages(input)).toMatchObject({ ok: false, rule: 'no_approver', stage: 'manager' });
    const second = stageInput('manager_then_owner', (_p, i) => {
      i.entitlement.owner = null;
      i.policy.fallbackApprover = null;
    });
    expect(resolveApprovalStages(second)).toMatchObject({ ok: false, rule: 'no_approver', stage: 'owner' });
  });

  it('is what checkAccessRequest answers once every other rule passes', () => {
    const c = baseCase();
    c.request.entitlementId = 'payments';
    c.context.held = [];
    c.context.pending = [];
    expect(check(c)).toEqual({ ok: true, stages: [direct('manager', 'M1'), direct('owner', 'O1')] });
    c.people.M1!.status = 'terminated';
    expect(check(c)).toEqual({ ok: false, rule: 'no_approver', detail: 'the manager M1 is terminated, and no fallback approver is configured', stage: 'manager' });
    c.context.approval.fallbackApprover = 'F1';
    expect(check(c)).toEqual({ ok: true, stages: [viaFallback('manager', 'the manager M1 is terminated'), direct('owner', 'O1')] });
  });
});

describe('escalationApprover', () => {
  it.each([
    ['the approver’s active manager', {}, [], { ok: true, approverId: 'M2' }],
    ['nobody when no manager is recorded', { M1: { status: 'active', managerId: null } }, [], { ok: false, reason: 'no manager is recorded for the approver M1' }],
    ['nobody when the manager has left', { M2: { status: 'terminated', managerId: null } }, [], { ok: false, reason: "the approver's manager M2 is terminated" }],
    ['nobody when the manager is on leave', { M2: { status: 'on_leave', managerId: null } }, [], { ok: false, reason: "the approver's manager M2 is on_leave" }],
    ['nobody when the manager is unknown', { M1: { status: 'active', managerId: 'X9' } }, [], { ok: false, reason: "the approver's manager X9 is not a known person" }],
    ['nobody when the approver is their own manager', { M1: { status: 'active', managerId: 'M1' } }, [], { ok: false, reason: 'the approver M1 is recorded as their own manager' }],
    ['nobody when the manager is the subject or requester', {}, ['E1', 'm2'], { ok: false, reason: "the approver's manager M2 is the subject or the requester" }],
    ['nobody when the approver is unknown', {}, [], { ok: false, reason: 'the approver X9 is not a known person' }, 'X9'],
  ] as const)('escalates to %s', (_name, changes, exclude, expected, approver?: string) => {
    const directory = directoryOf({ ...structuredClone(PEOPLE), ...changes } as Record<string, DirectoryPerson>);
    expect(escalationApprover(approver ?? 'm1', directory, exclude)).toEqual(expected);
  });
});

describe('directoryOf', () => {
  it('folds ids and knows only the people it was given', () => {
    const directory = directoryOf({ e7: { status: 'active' } });
    expect(directory('E7')).toEqual({ status: 'active' });
    expect(directory('e7')).toEqual({ status: 'active' });
    expect(directory('constructor')).toBeUndefined();
    expect(directory('__proto__')).toBeUndefined();
  });
});
