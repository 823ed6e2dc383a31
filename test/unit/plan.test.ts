import { describe, expect, it } from 'vitest';
import { diffEntitlements } from '../../domain/entitlement-diff.js';
import { initialState, receive } from '../../domain/lifecycle.js';
import { explainPlan } from '../../domain/plan.js';
import type { HrEventType } from '../../domain/types.js';
import { policySnapshot } from '../../domain/policy.js';
import { testConfig } from '../support/config.js';

const ldap = { url: 'ldap://127.0.0.1:1', bindDN: 'cn=admin,dc=example,dc=com', bindPassword: 'x', baseDN: 'dc=example,dc=com', usersDN: 'ou=people,dc=example,dc=com', groupsDN: 'ou=groups,dc=example,dc=com', disabledDN: 'ou=disabled,dc=example,dc=com' };
const policy = policySnapshot(testConfig(ldap, { lifecycle: { moverGracePeriod: '1h', deleteAfter: '30d' } }));
const at = (iso: string) => Date.parse(iso);

describe('entitlement diff', () => {
  it('keeps what another rule or an approved request still wants, and lists requested access for review', () => {
    const diff = diffEntitlements(
      [{ entitlementId: 'all-staff', rules: ['everyone'] }, { entitlementId: 'sales', rules: ['sales'] }],
      [
        { entitlementId: 'all-staff', requestKind: 'birthright', grantStatus: 'active' },
        { entitlementId: 'engineering', requestKind: 'birthright', grantStatus: 'active' },
        { entitlementId: 'employees', requestKind: 'birthright', grantStatus: 'active' },
        { entitlementId: 'prod-admin', requestKind: 'requested', grantStatus: 'active' },
      ],
      ['employees'],
    );
    expect(diff.add.map((d) => d.entitlementId)).toEqual(['sales']);
    expect(diff.remove).toEqual(['engineering']);
    expect(diff.review).toEqual(['prod-admin']);
  });

  it('grants a failed grant again', () => {
    const diff = diffEntitlements([{ entitlementId: 'sales', rules: ['sales'] }], [{ entitlementId: 'sales', requestKind: 'birthright', grantStatus: 'failed' }], []);
    expect(diff.add.map((d) => d.entitlementId)).toEqual(['sales']);
  });
});

describe('explainPlan', () => {
  const T0 = at('2026-11-01T09:00:00.000Z');
  const signal = (id: string, type: HrEventType, effectiveAt: string, attributes = {}) => ({ eventId: id, employeeId: 'E1', type, effectiveAt, attributes });
  const none = { holdings: [], requestedEntitlements: [] };

  it('explains a future hire, a transfer and a leaver, with rules and due times, by replaying the core', () => {
    const state = initialState('E1');
    receive(state, signal('h', 'hire', '2026-12-01T09:00:00.000Z', { givenName: 'Ada', department: 'Engineering', employmentType: 'employee' }));
    receive(state, signal('u', 'update', '2027-01-01T09:00:00.000Z', { department: 'Sales' }));
    receive(state, signal('t', 'terminate', '2027-06-30T17:00:00.000Z'));
    const steps = explainPlan({ state, held: none, policy, now: T0 });
    const byStep = (eventId: string) => steps.find((s) => s.eventId === eventId && s.grants.length + s.revokes.length > 0);
    expect(steps[0]?.effect).toMatch(/pre_hire/);
    expect(byStep('h')?.dueAt).toBe('2026-12-01T09:00:00.000Z');
    expect(byStep('h')?.grants).toContainEqual({ entitlementId: 'engineering', rules: ['engineering'] });
    expect(byStep('u')?.grants).toEqual([{ entitlementId: 'sales', rules: ['sales'] }]);
    // The engineering group goes an hour later (moverGracePeriod 1h), as its own step.
    const grace = steps.find((s) => s.step === 'mover grace period ends');
    expect(grace?.dueAt).toBe('2027-01-01T10:00:00.000Z');
    expect(grace?.revokes.map((r) => r.entitlementId)).toEqual(['engineering']);
    expect(byStep('t')?.revokes.map((r) => r.entitlementId).sort()).toEqual(['all-staff', 'directory-account', 'employees', 'sales']);
    expect(steps.at(-1)?.step).toBe('retention period ends');
    expect(steps.at(-1)?.dueAt).toBe('2027-07-30T17:00:00.000Z'); // deleteAfter 30d
  });

  it('says a stale update will be ignored, and that an event before the hire waits for it', () => {
    const state = initialState('E1');
    receive(state, signal('h', 'hire', '2026-01-01T00:00:00.000Z', { givenName: 'Ada' }));
    receive(state, signal('u2', 'update', '2026-06-01T00:00:00.000Z', { title: 'new' }));
    const held = explainPlan({ state, held: none, policy, now: T0 });
    expect(held.length).toBeGreaterThan(0);
    // The workflow applied both; a late, older update of the same field then arrives.
    for (const e of state.events) e.outcome = { status: 'applied', reason: null };
    state.dirty = false;
    receive(state, signal('u1', 'update', '2026-02-01T00:00:00.000Z', { title: 'old' }));
    const steps = explainPlan({ state, held: none, policy, now: T0 });
    expect(steps.find((s) => s.eventId === 'u1')?.effect).toMatch(/stale/);

    const orphan = initialState('E2');
    receive(orphan, signal('x', 'update', '2026-02-01T00:00:00.000Z', { title: 'x' }));
    expect(explainPlan({ state: orphan, held: none, policy, now: T0 }).map((s) => s.effect).join(' ')).toMatch(/waiting for the hire|waits for the hire/);
  });
});
