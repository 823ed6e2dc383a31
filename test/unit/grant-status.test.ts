// The grant status machine as a whole: every pair of statuses is either a move a grant
// really makes (listed below, with the path that makes it) or refused.
import { describe, expect, it } from 'vitest';
import { canMoveGrant } from '../../domain/grant-status.js';
import { GRANT_STATUSES, type GrantStatus } from '../../domain/types.js';

const ALLOWED: Array<[GrantStatus, GrantStatus, string]> = [
  ['pending', 'provisioning', 'provisionGrant'],
  ['pending', 'failed', 'the account it needs failed, so it was never tried'],
  ['pending', 'revoking', 'a leaver or rescind before it was provisioned'],
  ['pending', 'revoked', 'withdrawn before anything reached the target'],
  ['provisioning', 'provisioning', 'provisionGrant retried'],
  ['provisioning', 'active', 'verifyGrant read it back'],
  ['provisioning', 'failed', 'retries exhausted or read-back failed'],
  ['provisioning', 'revoking', 'a leaver while it was being provisioned'],
  ['active', 'active', 'verified again'],
  ['active', 'revoking', 'a leaver, a mover, an expiry'],
  ['active', 'provisioning', 'provisioned again to repair drift'],
  ['failed', 'provisioning', 'a re-grant after a failure'],
  ['failed', 'revoking', 'a retried revoke, or a leaver revoking a failed grant'],
  ['failed', 'revoked', 'withdrawn after a failure'],
  ['failed', 'failed', 'a failure reported again (markGrantFailed retried)'],
  ['revoking', 'revoking', 'revokeGrant retried'],
  ['revoking', 'revoked', 'verifyRevoked read it back'],
  ['revoking', 'failed', 'the revoke failed'],
  ['revoked', 'provisioning', 'a rehire re-granting the row'],
];

describe('grant status machine', () => {
  const allowed = new Set(ALLOWED.map(([from, to]) => `${from}->${to}`));
  const pairs = GRANT_STATUSES.flatMap((from) => GRANT_STATUSES.map((to) => [from, to] as const));

  it.each(pairs)('%s -> %s is allowed exactly when a grant really makes that move', (from, to) => {
    expect(canMoveGrant(from, to)).toBe(allowed.has(`${from}->${to}`));
  });

  it.each([
    ['joiner', ['pending', 'provisioning', 'active']],
    ['a group whose account failed', ['pending', 'failed']],
    ['a failed revoke, retried', ['active', 'revoking', 'failed', 'revoking', 'revoked']],
    ['a re-grant after a failure', ['pending', 'provisioning', 'failed', 'failed', 'provisioning', 'active']],
    ['leaver then rehire', ['active', 'revoking', 'revoked', 'provisioning', 'active']],
  ] as Array<[string, GrantStatus[]]>)('walks the path of %s', (_name, path) => {
    for (let i = 1; i < path.length; i++) expect(canMoveGrant(path[i - 1]!, path[i]!), `${path[i - 1]} -> ${path[i]}`).toBe(true);
  });

  it('never goes straight to active, and never leaves revoked except to provision again', () => {
    for (const from of GRANT_STATUSES) {
      if (from !== 'provisioning' && from !== 'active') expect(canMoveGrant(from, 'active')).toBe(false);
    }
    expect(GRANT_STATUSES.filter((to) => canMoveGrant('revoked', to))).toEqual(['provisioning']);
  });
});
