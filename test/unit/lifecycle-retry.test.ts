// A decision that failed is tried again on a capped exponential backoff (retries.afterFailure),
// and the events it failed are decided afresh when the retry is due.
import { describe, expect, it } from 'vitest';
import { decide, initialState, nextWakeAt, receive, recordEffect, recordFailure, scheduleRetry, targetRecovered, type LifecycleState } from '../../domain/lifecycle.js';
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

  describe('waiting for an unreachable target', () => {
    /** A hire whose provisioning failed once, the way `outcome` says. */
    function failedHire(waitingOn: { targets: string[]; only: boolean }): LifecycleState {
      const state = initialState('E1');
      receive(state, { eventId: 'h', employeeId: 'E1', type: 'hire', effectiveAt: new Date(T0).toISOString(), attributes: { givenName: 'Ada' } });
      for (const effect of decide(state, T0, policy, none).effects) if (effect.kind !== 'provision') recordEffect(state, effect, { identityId: 'id-1' });
      recordFailure(state, 'h', 'provision failed: the directory is down');
      scheduleRetry(state, T0, policy, true, waitingOn);
      return state;
    }

    it('falls back to the longest backoff, and is due at once when the target answers again', () => {
      const state = failedHire({ targets: ['ldap'], only: true });
      expect(state.waitingOn).toEqual(['ldap']);
      expect(nextWakeAt(state, T0, policy)).toBe(T0 + 120_000);

      const back = T0 + 5_000;
      targetRecovered(state, 'ldap', 'target-recovery:ldap', back);
      expect(state.waitingOn).toBeUndefined();
      expect(state.releasedBy).toEqual(['target-recovery:ldap']);
      expect(state.dirty).toBe(true);
      expect(decide(state, back, policy, none).effects.map((e) => e.kind)).toEqual(['provision', 'eventOutcome']);
    });

    it('stays waiting while another target it needs is still down', () => {
      const state = failedHire({ targets: ['ldap', 'hr-app'], only: true });
      targetRecovered(state, 'ldap', 'target-recovery:ldap', T0 + 5_000);
      expect(state.waitingOn).toEqual(['hr-app']);
      expect(state.retryAt).toBe(T0 + 120_000);
      // The failed hire is not decided afresh yet: its event stays failed.
      decide(state, T0 + 5_000, policy, none);
      expect(state.events.find((e) => e.eventId === 'h')?.outcome?.status).toBe('failed');
    });

    it('keeps the ordinary backoff when something else failed too', () => {
      const state = failedHire({ targets: ['ldap'], only: false });
      expect(state.waitingOn).toEqual(['ldap']);
      expect(nextWakeAt(state, T0, policy)).toBe(T0 + 30_000);
    });

    it('answers a release it no longer waits for, and changes nothing else', () => {
      const state = failedHire({ targets: [], only: false });
      const retryAt = state.retryAt;
      targetRecovered(state, 'ldap', 'target-recovery:ldap', T0 + 1_000);
      expect(state.retryAt).toBe(retryAt);
      expect(state.releasedBy).toEqual(['target-recovery:ldap']);
      expect(state.dirty).toBe(true);
    });
  });
});
