// The pure lifecycle core against the specification, over random HR histories.
//
// simulateLifecycle replays the core as the workflow runs it (events arrive at their
// times, decisions at each wake, every effect succeeds). Its result is compared with the
// oracle in test/support/hr-histories.ts, which is written from the specification, not
// from the core. The directory is modelled here from the effects the core asks for, the
// way the workflow executes them (accounts first; `enabled: true` never re-enables an
// existing account, `reenable` does; setAccountsEnabled acts on a live account grant;
// deleteAccounts removes the entry and its memberships), so what a target would end up
// holding is checked too, not only the core's own bookkeeping.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { simulateLifecycle, type Decision, type SimulationResult } from '../../domain/lifecycle.js';
import { policySnapshot } from '../../domain/policy.js';
import type { HrEventType, IdentityAttributes } from '../../domain/types.js';
import { testConfig } from '../support/config.js';
import type { LdapServerInfo } from '../support/env.js';
import { deliverySchedule, describeHistory, effectiveTime, expectedOutcome, historyArbitrary, lastMoment, statusAsOf, type History, type Scale } from '../support/hr-histories.js';

// Nothing connects in these tests: the directory is only named in the config.
const ldap: LdapServerInfo = {
  url: 'ldap://directory.invalid:389',
  bindDN: 'cn=admin,dc=example,dc=org',
  bindPassword: 'unused',
  baseDN: 'dc=example,dc=org',
  usersDN: 'ou=people,dc=example,dc=org',
  groupsDN: 'ou=groups,dc=example,dc=org',
  disabledDN: 'ou=disabled,dc=example,dc=org',
};
const HOUR = 3_600_000;
// Timings of the same order as the gaps between events, so grace periods, pre-provisioning
// and erasure often fall between two deliveries.
const policy = policySnapshot(testConfig(ldap, { lifecycle: { preProvisionLead: '2h', moverGracePeriod: '2h', deleteAfter: '3h' } }));
const scale: Scale = { start: Date.parse('2030-01-07T08:00:00Z'), slotMs: HOUR };
const EMPLOYEE_ID = 'E1001';
const MAX_STEPS = 5_000;
const GROUPS = Object.entries(policy.entitlements).filter(([, e]) => e.kind === 'group').map(([id]) => id);

function simulate(history: History, schedule: 0 | 1, requestedEntitlements: string[] = []): SimulationResult {
  const deliveries = deliverySchedule(history, scale, schedule).map(({ event, arrivesAt }) => ({
    arrivesAt,
    event: { eventId: event.id, employeeId: EMPLOYEE_ID, type: event.type, effectiveAt: new Date(effectiveTime(event, scale)).toISOString(), attributes: event.attributes },
  }));
  // Past every effective time, arrival, grace period and retention period.
  const until = lastMoment(history, scale) + policy.lifecycle.moverGracePeriod + policy.lifecycle.deleteAfter + HOUR;
  const result = simulateLifecycle({ employeeId: EMPLOYEE_ID, policy, deliveries, until, requestedEntitlements, maxSteps: MAX_STEPS });
  // Every loop step of the simulation is an arrival or a decision: reaching the cap means it never settled.
  expect(result.decisions.length + deliveries.length, `the core did not settle\n${describeHistory(history, scale, schedule)}`).toBeLessThan(MAX_STEPS);
  return result;
}

// --- the directory, as the workflow's executor would leave it --------------------------

interface Directory {
  account: 'absent' | 'enabled' | 'disabled';
  everEnabled: boolean;
  /** Group entitlements the person is a member of. */
  groups: Set<string>;
  /** Entitlements with a live grant (the grants table). */
  grants: Set<string>;
  /** An account grant ever existed (deleteAccounts acts on those targets). */
  accountGranted: boolean;
  /** Steps the executor could not carry out, or that leave the target inconsistent. */
  problems: string[];
  /** The attributes the account was made with or last brought up to date with (ensureAccount reads the saved identity). */
  accountAttributes?: Record<string, unknown>;
  /** The identity row's attributes as last saved. */
  saved?: Record<string, unknown>;
}

const isAccount = (entitlementId: string) => policy.entitlements[entitlementId]?.kind === 'account';

/** Replays the decisions' effects on a model directory; `after` sees it after each decision. */
function replayOnDirectory(decisions: Array<{ at: number; decision: Decision }>, after?: (at: number, d: Directory) => void): Directory {
  const d: Directory = { account: 'absent', everEnabled: false, groups: new Set(), grants: new Set(), accountGranted: false, problems: [] };
  for (const { at, decision } of decisions) {
    const when = new Date(at).toISOString();
    for (const effect of decision.effects) {
      switch (effect.kind) {
        case 'saveIdentity':
          d.saved = effect.attributes;
          break;
        case 'updateAccounts':
          if (![...d.grants].some(isAccount)) break; // the activity acts on live account grants only
          if (d.account === 'absent') d.account = effect.enabled ? 'enabled' : 'disabled';
          else if (!effect.enabled) d.account = 'disabled';
          d.accountAttributes = d.saved;
          break;
        case 'provision':
          for (const item of [...effect.items].sort((a, b) => Number(isAccount(b.entitlementId)) - Number(isAccount(a.entitlementId)))) {
            if (isAccount(item.entitlementId)) {
              if (d.account === 'absent') d.account = effect.enabled ? 'enabled' : 'disabled';
              else if (!effect.enabled) d.account = 'disabled';
              else if (effect.reenable) d.account = 'enabled';
              d.accountGranted = true;
              d.accountAttributes = d.saved;
            } else if (d.account === 'absent') {
              d.problems.push(`${when}: ${item.entitlementId} granted with no account`);
            } else {
              d.groups.add(item.entitlementId);
            }
            d.grants.add(item.entitlementId);
          }
          break;
        case 'revoke':
          for (const h of effect.holdings) {
            if (h.kind === 'account') {
              if (d.account !== 'absent') d.account = 'disabled';
            } else {
              d.groups.delete(h.entitlementId);
            }
            d.grants.delete(h.entitlementId);
          }
          break;
        case 'setAccountsEnabled':
          if (![...d.grants].some(isAccount)) break; // the activity acts on live account grants only
          if (d.account === 'absent') {
            if (effect.enabled) d.problems.push(`${when}: enabling an account that does not exist`);
          } else {
            d.account = effect.enabled ? 'enabled' : 'disabled';
          }
          break;
        case 'deleteAccounts':
          if (d.accountGranted) {
            d.account = 'absent';
            d.groups.clear();
          }
          break;
        default:
          break;
      }
      if (d.account === 'enabled') d.everEnabled = true;
    }
    after?.(at, d);
  }
  return d;
}

function effectsOf(result: SimulationResult) {
  return result.decisions.flatMap(({ at, decision }) => decision.effects.map((effect) => ({ at, effect })));
}

function heldIds(result: SimulationResult): string[] {
  return result.holdings.map((h) => h.entitlementId).sort();
}

// --- the properties ---------------------------------------------------------------------

/** Everything the specification says about the end state of one simulated history. */
function checkAgainstSpec(history: History, schedule: 0 | 1, requested: string[]): void {
  const expected = expectedOutcome(history, scale, policy.birthright);
  const result = simulate(history, schedule, requested);
  const dir = replayOnDirectory(result.decisions);
  const story = `\n${describeHistory(history, scale, schedule)}\nrequested: ${JSON.stringify(requested)}\nexpected: ${JSON.stringify(expected)}`;
  const held = heldIds(result);

  expect(result.status, `status${story}`).toBe(expected.status);
  expect(result.attributes, `attributes (per field, latest by effective time)${story}`).toEqual(expected.attributes);

  // The identity row: absent for someone never hired, else the last one written says the same.
  const saved = effectsOf(result).flatMap(({ effect }) => (effect.kind === 'saveIdentity' ? [effect] : []));
  if (expected.status === 'none') {
    expect(saved, `no identity for someone never hired${story}`).toEqual([]);
  } else {
    expect(saved.at(-1)?.status, `identity row status${story}`).toBe(expected.status);
    expect(saved.at(-1)?.attributes, `identity row attributes${story}`).toEqual(expected.attributes);
  }

  // What is held: birthright of the final attributes (plus requested ones the person had), or nothing.
  expect(new Set(held).size, `one live grant per entitlement${story}`).toBe(held.length);
  if (expected.status === 'active' || expected.status === 'on_leave') {
    for (const id of expected.entitlements) expect(held, `birthright ${id} held${story}`).toContain(id);
    for (const id of held) expect([...expected.entitlements, ...requested], `${id} held but not due${story}`).toContain(id);
  } else {
    expect(held, `nobody ${expected.status} holds anything${story}`).toEqual([]);
  }
  expect([...dir.grants].sort(), `grants the executor would hold${story}`).toEqual(held);

  // The directory: account enabled iff active, disabled on leave, gone otherwise; groups = holdings.
  expect(dir.problems, `executor problems${story}`).toEqual([]);
  expect(dir.account, `directory account${story}`).toBe(expected.account);
  expect(result.accountsEnabled === true, `accountsEnabled${story}`).toBe(expected.account === 'enabled');
  expect([...dir.groups].sort(), `directory groups${story}`).toEqual(held.filter((id) => !isAccount(id)));
  // A live account carries the person's latest attributes (a mover's new department, title).
  if ((expected.status === 'active' || expected.status === 'on_leave') && held.some(isAccount)) {
    expect(dir.accountAttributes, `account attributes${story}`).toEqual(expected.attributes);
  }

  // Every event of a known person ends applied or ignored; before any hire they wait.
  for (const e of history) {
    const outcome = result.outcomes[e.id]?.status;
    if (expected.status === 'none') expect(outcome, `event ${e.id} waits for a hire${story}`).toBe('dispatched');
    else expect(['applied', 'ignored'], `event ${e.id} outcome ${outcome}${story}`).toContain(outcome);
  }
}

const requestedArbitrary = fc.oneof({ weight: 3, arbitrary: fc.constant<string[]>([]) }, { weight: 1, arbitrary: fc.subarray(GROUPS, { minLength: 1 }) });

describe('lifecycle core over random HR histories', () => {
  it('ends as the specification says, whatever the delivery order, duplicates and timing', () => {
    fc.assert(
      fc.property(historyArbitrary, requestedArbitrary, (history, requested) => {
        checkAgainstSpec(history, 0, requested);
      }),
      { numRuns: 2_000 },
    );
  });

  it('does not depend on the delivery order: two schedules of one event set end the same', () => {
    fc.assert(
      fc.property(historyArbitrary, (history) => {
        const [a, b] = [simulate(history, 0), simulate(history, 1)];
        const [da, db] = [replayOnDirectory(a.decisions), replayOnDirectory(b.decisions)];
        const story = `\n--- schedule A\n${describeHistory(history, scale, 0)}\n--- schedule B\n${describeHistory(history, scale, 1)}`;
        expect({ status: b.status, attributes: b.attributes, held: heldIds(b), account: db.account, groups: [...db.groups].sort() }, story).toEqual({
          status: a.status,
          attributes: a.attributes,
          held: heldIds(a),
          account: da.account,
          groups: [...da.groups].sort(),
        });
      }),
      { numRuns: 2_000 },
    );
  });

  it('at every step: only the active have an enabled account; the terminated and rescinded hold nothing', () => {
    fc.assert(
      fc.property(historyArbitrary, fc.constantFrom<0 | 1>(0, 1), (history, schedule) => {
        const result = simulate(history, schedule);
        const deliveries = deliverySchedule(history, scale, schedule);
        const story = (at: number) => `after the decision at ${new Date(at).toISOString()}\n${describeHistory(history, scale, schedule)}`;
        replayOnDirectory(result.decisions, (at, d) => {
          const received = new Set(deliveries.filter((x) => x.arrivesAt <= at).map((x) => x.event.id));
          const { status, rehireAhead } = statusAsOf(history, scale, at, received);
          if (d.account === 'enabled') expect(status, `account enabled ${story(at)}`).toBe('active');
          if (status === 'none' || ((status === 'terminated' || status === 'rescinded') && !rehireAhead)) {
            expect({ grants: [...d.grants], groups: [...d.groups], enabled: d.account === 'enabled' }, `${status} holds nothing ${story(at)}`).toEqual({ grants: [], groups: [], enabled: false });
          }
        });
      }),
      { numRuns: 2_000 },
    );
  });
});

// --- the defects of issue 7, as named examples -------------------------------------------

interface Step {
  id: string;
  type: HrEventType;
  effective: string;
  arrives: string;
  attributes?: IdentityAttributes;
}

const ada = { givenName: 'Ada', familyName: 'Lovelace', department: 'Engineering', employmentType: 'employee', title: 'Engineer' };

function run(steps: Step[], until: string) {
  const result = simulateLifecycle({
    employeeId: EMPLOYEE_ID,
    policy,
    until: Date.parse(until),
    maxSteps: MAX_STEPS,
    deliveries: steps.map((s) => ({ arrivesAt: Date.parse(s.arrives), event: { eventId: s.id, employeeId: EMPLOYEE_ID, type: s.type, effectiveAt: new Date(s.effective).toISOString(), attributes: s.attributes ?? {} } })),
  });
  return { result, dir: replayOnDirectory(result.decisions), effects: effectsOf(result) };
}

describe('lifecycle core: the orders of issue 7', () => {
  it('a future starter rescinded before pre-provisioning holds nothing and is never enabled', () => {
    const { result, dir, effects } = run(
      [
        { id: 'hire', type: 'hire', effective: '2030-03-02T09:00:00Z', arrives: '2030-02-01T09:00:00Z', attributes: ada },
        { id: 'rescind', type: 'rescind', effective: '2030-02-10T09:00:00Z', arrives: '2030-02-10T09:00:00Z' },
      ],
      '2030-03-03T00:00:00Z',
    );
    expect(result.status).toBe('rescinded');
    expect(result.holdings).toEqual([]);
    expect(effects.filter(({ effect }) => effect.kind === 'provision')).toEqual([]);
    expect(dir.everEnabled).toBe(false);
    expect(dir.account).toBe('absent');
  });

  it('a future starter rescinded after pre-provisioning loses the disabled account and is never enabled', () => {
    const { result, dir } = run(
      [
        { id: 'hire', type: 'hire', effective: '2030-03-02T09:00:00Z', arrives: '2030-02-01T09:00:00Z', attributes: ada },
        { id: 'rescind', type: 'rescind', effective: '2030-03-02T08:00:00Z', arrives: '2030-03-02T08:00:00Z' },
      ],
      '2030-03-03T00:00:00Z',
    );
    expect(result.status).toBe('rescinded');
    expect(result.holdings).toEqual([]);
    expect(dir.everEnabled).toBe(false);
    expect(dir.account).toBe('absent');
  });

  it('a future starter terminated before the start date holds nothing and is never enabled', () => {
    const { result, dir } = run(
      [
        { id: 'hire', type: 'hire', effective: '2030-03-02T09:00:00Z', arrives: '2030-02-01T09:00:00Z', attributes: ada },
        { id: 'terminate', type: 'terminate', effective: '2030-02-20T17:00:00Z', arrives: '2030-02-20T12:00:00Z' },
      ],
      '2030-03-03T00:00:00Z',
    );
    expect(result.status).toBe('terminated');
    expect(result.holdings).toEqual([]);
    expect(dir.everEnabled).toBe(false);
    expect(dir.account).toBe('absent');
  });

  it('a terminate effective between pre-provisioning and the start date: never enabled, erased later', () => {
    const { result, dir } = run(
      [
        { id: 'hire', type: 'hire', effective: '2030-03-02T09:00:00Z', arrives: '2030-02-01T09:00:00Z', attributes: ada },
        { id: 'terminate', type: 'terminate', effective: '2030-03-02T08:00:00Z', arrives: '2030-03-02T08:30:00Z' },
      ],
      '2030-03-03T00:00:00Z',
    );
    expect(result.status).toBe('terminated');
    expect(result.holdings).toEqual([]);
    expect(dir.everEnabled).toBe(false);
    expect(dir.account).toBe('absent');
  });

  it('a new title reaches the account once, a repeat delivery changes nothing more, and an update after a terminate none', () => {
    const { effects, dir } = run(
      [
        { id: 'hire', type: 'hire', effective: '2030-01-07T09:00:00Z', arrives: '2030-01-07T09:00:00Z', attributes: ada },
        { id: 'update', type: 'update', effective: '2030-01-07T10:00:00Z', arrives: '2030-01-07T10:00:00Z', attributes: { title: 'Staff Engineer' } },
        { id: 'update', type: 'update', effective: '2030-01-07T10:00:00Z', arrives: '2030-01-07T10:30:00Z', attributes: { title: 'Staff Engineer' } },
        { id: 'terminate', type: 'terminate', effective: '2030-01-07T12:00:00Z', arrives: '2030-01-07T12:00:00Z' },
        { id: 'late', type: 'update', effective: '2030-01-07T13:00:00Z', arrives: '2030-01-07T13:00:00Z', attributes: { title: 'Principal' } },
      ],
      '2030-01-07T14:00:00Z',
    );
    const updates = effects.filter(({ effect }) => effect.kind === 'updateAccounts');
    expect(updates.map(({ at, effect }) => ({ at: new Date(at).toISOString(), title: (effect as { attributes: { title?: string } }).attributes.title }))).toEqual([{ at: '2030-01-07T10:00:00.000Z', title: 'Staff Engineer' }]);
    expect(dir.accountAttributes).toMatchObject({ title: 'Staff Engineer' });
  });

  it('an update after a terminate changes attributes and re-grants nothing', () => {
    const { result, dir, effects } = run(
      [
        { id: 'hire', type: 'hire', effective: '2030-01-07T09:00:00Z', arrives: '2030-01-07T09:00:00Z', attributes: ada },
        { id: 'terminate', type: 'terminate', effective: '2030-01-07T12:00:00Z', arrives: '2030-01-07T12:00:00Z' },
        { id: 'update', type: 'update', effective: '2030-01-07T13:00:00Z', arrives: '2030-01-07T13:00:00Z', attributes: { department: 'Sales' } },
      ],
      '2030-01-08T00:00:00Z',
    );
    expect(result.status).toBe('terminated');
    expect(result.attributes.department).toBe('Sales');
    expect(result.holdings).toEqual([]);
    const terminatedAt = Date.parse('2030-01-07T12:00:00Z');
    expect(effects.filter(({ at, effect }) => at >= terminatedAt && (effect.kind === 'provision' || (effect.kind === 'setAccountsEnabled' && effect.enabled)))).toEqual([]);
    expect(dir.account).toBe('absent');
  });

  it('an update after erasure does not re-create the account', () => {
    const { result, dir, effects } = run(
      [
        { id: 'hire', type: 'hire', effective: '2030-01-07T09:00:00Z', arrives: '2030-01-07T09:00:00Z', attributes: ada },
        { id: 'terminate', type: 'terminate', effective: '2030-01-07T10:00:00Z', arrives: '2030-01-07T10:00:00Z' },
        { id: 'update', type: 'update', effective: '2030-01-07T15:00:00Z', arrives: '2030-01-07T15:00:00Z', attributes: { title: 'Manager' } },
      ],
      '2030-01-08T00:00:00Z',
    );
    const kinds = effects.map(({ effect }) => effect.kind);
    const erased = kinds.indexOf('deleteAccounts');
    expect(erased).toBeGreaterThan(-1);
    expect(effects.slice(erased).filter(({ effect }) => effect.kind === 'provision' || (effect.kind === 'setAccountsEnabled' && effect.enabled))).toEqual([]);
    expect(result.attributes.title).toBe('Manager');
    expect(result.status).toBe('terminated');
    expect(dir.account).toBe('absent');
  });

  it('a 09:00 department update delivered after a 09:05 title update still applies the department', () => {
    const { result, dir } = run(
      [
        { id: 'hire', type: 'hire', effective: '2030-01-07T08:00:00Z', arrives: '2030-01-07T08:00:00Z', attributes: { ...ada, department: 'Finance' } },
        { id: 'title', type: 'update', effective: '2030-01-07T09:05:00Z', arrives: '2030-01-07T09:05:00Z', attributes: { title: 'Manager' } },
        { id: 'department', type: 'update', effective: '2030-01-07T09:00:00Z', arrives: '2030-01-07T09:10:00Z', attributes: { department: 'Sales' } },
      ],
      '2030-01-08T00:00:00Z',
    );
    expect(result.outcomes.department?.status).toBe('applied');
    expect(result.attributes).toMatchObject({ department: 'Sales', title: 'Manager' });
    expect(heldIds(result)).toEqual(['all-staff', 'directory-account', 'employees', 'sales']);
    expect(dir.account).toBe('enabled');
  });

  for (const [first, second] of [
    ['update', 'leave_start'],
    ['leave_start', 'update'],
  ] as const) {
    it(`${first}, then ${second} 1 ms later, delivered swapped: both apply`, () => {
      const { result, dir } = run(
        [
          { id: 'hire', type: 'hire', effective: '2030-01-07T08:00:00Z', arrives: '2030-01-07T08:00:00Z', attributes: ada },
          { id: second, type: second, effective: '2030-01-07T10:00:00.001Z', arrives: '2030-01-07T09:00:00Z', ...(second === 'update' ? { attributes: { department: 'Sales' } } : {}) },
          { id: first, type: first, effective: '2030-01-07T10:00:00.000Z', arrives: '2030-01-07T11:00:00Z', ...(first === 'update' ? { attributes: { department: 'Sales' } } : {}) },
        ],
        '2030-01-08T00:00:00Z',
      );
      expect(result.status).toBe('on_leave');
      expect(result.attributes.department).toBe('Sales');
      expect(heldIds(result)).toEqual(['all-staff', 'directory-account', 'employees', 'sales']);
      expect(dir.account).toBe('disabled');
    });
  }

  it('a late leave_start after a leave_end leaves the person active', () => {
    const { result, dir } = run(
      [
        { id: 'hire', type: 'hire', effective: '2030-01-07T08:00:00Z', arrives: '2030-01-07T08:00:00Z', attributes: ada },
        { id: 'back', type: 'leave_end', effective: '2030-01-07T12:00:00Z', arrives: '2030-01-07T12:00:00Z' },
        { id: 'away', type: 'leave_start', effective: '2030-01-07T10:00:00Z', arrives: '2030-01-07T13:00:00Z' },
      ],
      '2030-01-08T00:00:00Z',
    );
    expect(result.status).toBe('active');
    expect(dir.account).toBe('enabled');
    expect(result.accountsEnabled).toBe(true);
    expect(heldIds(result)).toEqual(['all-staff', 'directory-account', 'employees', 'engineering']);
  });
});

// Orders the properties found: each is the smallest history fast-check shrank a failure to.
describe('lifecycle core: orders found by the properties', () => {
  it('a leaver with a rehire announced in advance is erased at the end of retention, and the core settles', () => {
    // Retention ends at 11:00, while the 14:00 rehire is still ahead.
    const { result, dir, effects } = run(
      [
        { id: 'hire', type: 'hire', effective: '2030-01-07T07:00:00Z', arrives: '2030-01-07T07:00:00Z', attributes: ada },
        { id: 'terminate', type: 'terminate', effective: '2030-01-07T08:00:00Z', arrives: '2030-01-07T08:00:00Z' },
        { id: 'rehire', type: 'rehire', effective: '2030-01-07T14:00:00Z', arrives: '2030-01-07T08:30:00Z' },
      ],
      '2030-01-08T00:00:00Z',
    );
    expect(result.decisions.length).toBeLessThan(20);
    expect(effects.filter(({ effect }) => effect.kind === 'deleteAccounts').map(({ at }) => new Date(at).toISOString())).toEqual(['2030-01-07T11:00:00.000Z']);
    expect(result.status).toBe('active');
    expect(dir.account).toBe('enabled');
  });

  it('a repeat delivery at the very instant of a future hire does not lose the start', () => {
    const { result, dir } = run(
      [
        { id: 'hire', type: 'hire', effective: '2030-01-07T14:00:00Z', arrives: '2030-01-07T08:00:00Z', attributes: ada },
        { id: 'hire', type: 'hire', effective: '2030-01-07T14:00:00Z', arrives: '2030-01-07T14:00:00Z', attributes: ada },
      ],
      '2030-01-08T00:00:00Z',
    );
    expect(result.status).toBe('active');
    expect(result.outcomes.hire?.status).toBe('applied');
    expect(dir.account).toBe('enabled');
  });

  it('a mover back to a former department holds its group (simulated grants keep distinct ids after a revoke)', () => {
    const { result, dir } = run(
      [
        { id: 'hire', type: 'hire', effective: '2030-01-07T08:00:00Z', arrives: '2030-01-07T08:00:00Z', attributes: { ...ada, department: 'Sales' } },
        { id: 'to-engineering', type: 'update', effective: '2030-01-07T09:00:00Z', arrives: '2030-01-07T09:00:00Z', attributes: { department: 'Engineering' } },
        { id: 'back-to-sales', type: 'update', effective: '2030-01-07T12:00:00Z', arrives: '2030-01-07T12:00:00Z', attributes: { department: 'Sales' } },
      ],
      '2030-01-08T00:00:00Z',
    );
    expect(result.attributes.department).toBe('Sales');
    expect(heldIds(result)).toEqual(['all-staff', 'directory-account', 'employees', 'sales']);
    expect([...dir.grants].sort()).toEqual(heldIds(result));
  });
});
