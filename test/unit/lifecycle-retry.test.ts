// A decision that failed is tried again on a capped exponential backoff (retries.afterFailure),
// and the events it failed are decided afresh when the retry is due.
import { describe, expect, it } from 'vitest';
import { decide, initialState, nextWakeAt, receive, recordEffect, recordFailure, scheduleRetry } from '../../domain/lifecycle.js';
import { policySnapshot } from '../../domain/policy.js';
import { testConfig } from '../support/config.js';

const ldap = { url: 'ldap://127.0.0.1:1', bindDN: 'cn=admin,dc=example,dc=com', bindPassword: 'x', baseDN: 'dc=example,dc=com', usersDN: 'ou=people,dc=example,dc=com', groupsDN: 'ou=groups,dc=example,dc=com', disabledDN: 'ou=disabled,dc=example,dc=com' };
const policy = policySnapshot(testConfig(ldap, { retries: { afterFailure: { initialInterval: '30s', maximumInterval: '2m' } } }));
const T0 = Date.parse('2026-12-01T09:00:00Z');
const none = { holdings: [], requestedEntitlements: [] };

describe('retrying a failed decision', () => {
  it('backs off 30 s, 60 s, 120 s, then stays at the cap; a decision that succeeds clears it', () => {
    const state = initialState('E1');
    receive(state, { eventId: 'h', employeeId: 'E1', type: 'hire', effectiveAt: new Date(T0).toISOString(), attributes: { givenName: 'Ada' } });
    let now = T0;
    const delays: number[] = [];
    for (let i = 0; i < 4; i += 1) {
      const decision = decide(state, now, policy, none);
      for (const effect of decision.effects) if (effect.kind !== 'provision') recordEffect(state, effect, { identityId: 'id-1' });
      recordFailure(state, 'h', 'provision failed: the directory is down');
      scheduleRetry(state, now, policy, true);
      const wake = nextWakeAt(state, now, policy) as number;
      delays.push((wake - now) / 1000);
      now = wake;
    }
    expect(delays).toEqual([30, 60, 120, 120]);

    // The retry is due: the failed hire is decided afresh, and its provisioning comes again.
    const retry = decide(state, now, policy, none);
    expect(retry.effects.map((e) => e.kind)).toEqual(['provision', 'eventOutcome']);
    expect(retry.effects.find((e) => e.kind === 'provision')).toMatchObject({ retryRequested: true });
    for (const effect of retry.effects) recordEffect(state, effect);
    scheduleRetry(state, now, policy, false);
    expect(state.retryAt).toBeUndefined();
    expect(state.failures).toBeUndefined();
    expect(nextWakeAt(state, now, policy)).toBeUndefined();
  });
});
