// GET /api/v1/entitlements: the catalogue as a requester or an operator sees it, made from the
// configuration (requestable or not, who approves, JIT limits, the birthright rules that
// grant it, the separation-of-duties rules that name it), behind a token.
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiToken } from '../../api/auth.js';
import type { DbHandle } from '../../db/client.js';
import { buildAppWithoutEngine } from '../support/api.js';
import { testConfig } from '../support/config.js';
import { testEnv, uniqueName } from '../support/env.js';

const PATH = '/api/v1/entitlements';

let app: FastifyInstance;
let db: DbHandle['db'];
let stop: () => Promise<void>;

beforeAll(async () => {
  const base = testConfig(testEnv.ldap);
  const config = testConfig(testEnv.ldap, {
    entitlements: base.entitlements.map((e) =>
      e.id === 'sales'
        ? { ...e, ref: e.ref, requestable: true, owner: 'E0001', risk: 'medium', maxDuration: '30d' }
        : e.id === 'engineering'
          ? { ...e, jit: { eligible: true, maxDuration: '2h', requiresApproval: true } }
          : e,
    ),
    approval: { approver: 'owner' },
    sod: [{ name: 'sales-vs-engineering', conflicting: ['sales', 'engineering'] }],
  });
  ({ app, db, stop } = await buildAppWithoutEngine('entitlements', config));
});
afterAll(async () => {
  await stop?.();
});

async function tokenWith(scopes: Parameters<typeof createApiToken>[1]['scopes']): Promise<string> {
  return (await createApiToken(db, { name: uniqueName('catalogue'), scopes })).token;
}

describe('the entitlement catalogue', () => {
  it('needs a token with requests:write or identities:read', async () => {
    expect((await app.inject({ method: 'GET', url: PATH })).statusCode).toBe(401);
    const writer = await tokenWith(['events:write']);
    expect((await app.inject({ method: 'GET', url: PATH, headers: { authorization: `Bearer ${writer}` } })).statusCode).toBe(403);
    for (const scope of ['requests:write', 'identities:read'] as const) {
      const token = await tokenWith([scope]);
      expect((await app.inject({ method: 'GET', url: PATH, headers: { authorization: `Bearer ${token}` } })).statusCode, scope).toBe(200);
    }
  });

  it('says what can be requested, who approves, the JIT limit, the birthright rules and the SoD rules of each', async () => {
    const token = await tokenWith(['identities:read']);
    const response = await app.inject({ method: 'GET', url: PATH, headers: { authorization: `Bearer ${token}` } });
    const body = response.json() as { items: Array<Record<string, unknown>>; nextCursor: null };
    expect(body.nextCursor).toBeNull();
    expect(body.items.map((e) => e.id)).toEqual(['directory-account', 'all-staff', 'employees', 'contractors', 'engineering', 'sales']);
    const byId = new Map(body.items.map((e) => [e.id, e]));
    expect(byId.get('sales')).toEqual({
      id: 'sales',
      name: null,
      target: 'directory',
      kind: 'group',
      risk: 'medium',
      owner: 'E0001',
      requestable: true,
      approval: { approver: 'owner', maxDuration: '30d' },
      jit: null,
      birthright: ['sales'],
      separationOfDuties: [{ rule: 'sales-vs-engineering', conflictsWith: ['engineering'] }],
    });
    expect(byId.get('engineering')).toMatchObject({
      requestable: false,
      approval: null,
      jit: { maxDuration: '2h', requiresApproval: true },
      birthright: ['engineering'],
      separationOfDuties: [{ rule: 'sales-vs-engineering', conflictsWith: ['sales'] }],
    });
    expect(byId.get('all-staff')).toMatchObject({ requestable: false, jit: null, birthright: ['everyone'], separationOfDuties: [] });
  });
});
