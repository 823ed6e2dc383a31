import { describe, expect, it } from 'vitest';
import { diffEntitlements } from '../../domain/entitlement-diff.js';
import { explainPlan, type PlanStep } from '../../domain/plan.js';
import { policySnapshot } from '../../domain/policy.js';
import { testConfig } from '../support/config.js';

const ldap = { url: 'ldap://127.0.0.1:1', bindDN: 'cn=admin,dc=example,dc=com', bindPassword: 'x', baseDN: 'dc=example,dc=com', usersDN: 'ou=people,dc=example,dc=com', groupsDN: 'ou=groups,dc=example,dc=com', disabledDN: 'ou=disabled,dc=example,dc=com' };
const policy = policySnapshot(testConfig(ldap, { lifecycle: { moverGracePeriod: '1h', deleteAfter: '30d' } }));
const at = (iso: string) => Date.parse(iso);
const event = (type: string, effectiveAt: string, attributes = {}) =>
  ({ kind: 'event', dueAt: at(effectiveAt), event: { eventId: `${type}-1`, employeeId: 'E1', type, effectiveAt, attributes } }) as PlanStep;

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
  it('explains a future hire, a transfer and a leaver, with rules and due times', () => {
    const steps = explainPlan({
      steps: [
        event('hire', '2026-12-01T09:00:00.000Z', { department: 'Engineering', employmentType: 'employee' }),
        event('update', '2027-01-01T09:00:00.000Z', { department: 'Sales' }),
        event('terminate', '2027-06-30T17:00:00.000Z'),
      ],
      parked: [],
      person: { status: 'pre_hire', attributes: { department: 'Engineering', employmentType: 'employee' } },
      held: [],
      requested: [],
      policy,
    });
    expect(steps.map((s) => s.step)).toEqual(['hire event', 'update event', 'terminate event']);
    expect(steps[0]?.dueAt).toBe('2026-12-01T09:00:00.000Z');
    expect(steps[0]?.grants).toContainEqual({ entitlementId: 'engineering', rules: ['engineering'] });
    expect(steps[1]?.grants).toEqual([{ entitlementId: 'sales', rules: ['sales'] }]);
    expect(steps[1]?.revokes).toEqual([{ entitlementId: 'engineering', why: 'no longer due by any birthright rule (after the grace period (3600s))' }]);
    expect(steps[2]?.revokes.map((r) => r.entitlementId).sort()).toEqual(['all-staff', 'directory-account', 'employees', 'sales']);
    expect(steps[2]?.effect).toContain('2027-07-30T17:00:00.000Z'); // deleteAfter 30d
  });

  it('says a stale update will be ignored and an event before the hire waits', () => {
    const steps = explainPlan({
      steps: [event('update', '2026-01-01T00:00:00.000Z', { title: 'x' })],
      parked: [{ eventId: 'p', employeeId: 'E1', type: 'update', effectiveAt: '2026-02-01T00:00:00.000Z', attributes: {} }],
      person: { status: 'active', attributes: {}, lastEffectiveAt: '2026-06-01T00:00:00.000Z' },
      held: [],
      requested: [],
      policy,
    });
    expect(steps[0]?.effect).toMatch(/stale/);
    expect(steps[1]?.effect).toMatch(/waits for the hire/);
  });
});
