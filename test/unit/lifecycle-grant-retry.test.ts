// An operator's retry of a failed grant (requestGrantRetry): the lifecycle's failed decision is
// due now, not at the end of its backoff nor of its wait for a target's recovery, and the
// decision then provisions the failed grant again as an operator's retry.
import { describe, expect, it } from 'vitest';
import { decide, initialState, nextWakeAt, receive, recordEffect, recordFailure, requestGrantRetry, scheduleRetry, type Holdings, type LifecycleState } from '../../domain/lifecycle.js';
import { policySnapshot } from '../../domain/policy.js';
import { testConfig } from '../support/config.js';

const ldap = { url: 'ldap://127.0.0.1:1', bindDN: 'cn=admin,dc=example,dc=com', bindPassword: 'x', baseDN: 'dc=example,dc=com', usersDN: 'ou=people,dc=example,dc=com', groupsDN: 'ou=groups,dc=example,dc=com', disabledDN: 'ou=disabled,dc=example,dc=com' };
const policy = policySnapshot(testConfig(ldap, { retries: { afterFailure: { initialInterval: '10m', maximumInterval: '1h' } } }));
const T0 = Date.parse('2026-12-01T09:00:00Z');

/** The engineer's birthright held, with all-staff failed. */
const held: Holdings = {
  requestedEntitlements: [],
  holdings: ['directory-account', 'all-staff', 'employees', 'engineering'].map((entitlementId, i) => ({
    grantId: `g${i}`,
    entitlementId,
    kind: entitlementId === 'directory-account' ? ('account' as const) : ('group' as const),
    target: 'directory',
    grantStatus: entitlementId === 'all-staff' ? ('failed' as const) : ('active' as const),
    requestKind: 'birthright' as const,
  })),
};

/** A hire whose all-staff grant failed: the event failed, the decision waits for its retry. */
function failedHire(waitingOn = { targets: [] as string[], only: false }): LifecycleState {
  const state = initialState('E1');
  receive(state, { eventId: 'h', employeeId: 'E1', type: 'hire', effectiveAt: new Date(T0).toISOString(), attributes: { givenName: 'Ada', department: 'Engineering', employmentType: 'employee' } });
  for (const effect of decide(state, T0, policy, { holdings: [], requestedEntitlements: [] }).effects) if (effect.kind !== 'provision') recordEffect(state, effect, { identityId: 'id-1' });
  recordFailure(state, 'h', 'provision failed: all-staff could not be granted');
  scheduleRetry(state, T0, policy, true, waitingOn);
  return state;
}

describe('requestGrantRetry', () => {
  it('makes the failed decision due now rather than after its ten-minute backoff, as an operator retry of the failed grant', () => {
    const state = failedHire();
    expect(nextWakeAt(state, T0 + 5_000, policy)).toBe(T0 + 600_000);

    const now = T0 + 5_000;
    requestGrantRetry(state, now);
    expect(nextWakeAt(state, now, policy)).toBe(now);
    const decision = decide(state, now, policy, held);
    expect(decision.effects.find((e) => e.kind === 'provision')).toMatchObject({ items: [expect.objectContaining({ entitlementId: 'all-staff' })], retried: ['all-staff'], retryRequested: true });
    // The failed hire is decided afresh with it.
    expect(decision.effects.filter((e) => e.kind === 'eventOutcome').map((e) => e.eventId)).toEqual(['h']);
    expect(state.retryAt).toBeUndefined();
  });

  it('does not wait for the recovery of a target it was waiting on', () => {
    const state = failedHire({ targets: ['directory'], only: true });
    expect(state.waitingOn).toEqual(['directory']);
    const now = T0 + 1_000;
    requestGrantRetry(state, now);
    expect(state.waitingOn).toBeUndefined();
    expect(decide(state, now, policy, held).effects.find((e) => e.kind === 'provision')).toMatchObject({ retried: ['all-staff'], retryRequested: true });
  });

  it('provisions a failed grant of a person whose decisions had all succeeded, and never puts a due retry off', () => {
    const state = failedHire();
    scheduleRetry(state, T0, policy, false);
    expect(nextWakeAt(state, T0, policy)).toBeUndefined();
    requestGrantRetry(state, T0 + 1_000);
    expect(decide(state, T0 + 1_000, policy, held).effects.find((e) => e.kind === 'provision')).toMatchObject({ retried: ['all-staff'], retryRequested: true });

    const overdue = failedHire();
    overdue.retryAt = T0;
    requestGrantRetry(overdue, T0 + 60_000);
    expect(overdue.retryAt).toBe(T0);
  });
});
