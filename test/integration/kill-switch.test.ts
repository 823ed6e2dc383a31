// The kill switch: a target paused through the API is called by nobody. A joiner and a leaver
// arriving meanwhile wait (nothing reaches the directory, nothing is lost); on resume they
// drain through the target's recovery, and both end proven in the directory.
import { and, eq } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiToken } from '../../api/auth.js';
import { auditLog, grants, identities } from '../../db/schema.js';
import { buildTestApp } from '../support/api.js';
import { testConfig } from '../support/config.js';
import { eventually, startTestEngine, type TestEngine } from '../support/engine.js';
import { testEnv, uniqueEmployeeId, uniqueName } from '../support/env.js';
import { hire } from '../support/requests.js';

let engine: TestEngine;
let app: FastifyInstance;
let admin: string;

beforeAll(async () => {
  engine = await startTestEngine({
    config: testConfig(testEnv.ldap, { retries: { initialInterval: '100ms', maximumInterval: '200ms', maximumAttempts: 2, afterFailure: { initialInterval: '1s', maximumInterval: '2s' } } }),
  });
  app = await buildTestApp(engine);
  admin = (await createApiToken(engine.db, { name: uniqueName('admin'), scopes: ['admin'] })).token;
}, 60_000);
afterAll(async () => {
  await app?.close();
  await engine?.stop();
});

const post = (url: string, payload?: object) => app.inject({ method: 'POST', url, headers: { authorization: `Bearer ${admin}` }, ...(payload ? { payload } : {}) });

async function accountGrant(employeeId: string) {
  const [row] = await engine.db
    .select({ status: grants.status })
    .from(grants)
    .innerJoin(identities, eq(identities.id, grants.identityId))
    .where(and(eq(identities.employeeId, employeeId), eq(grants.entitlementId, 'directory-account')));
  return row?.status;
}

describe('pausing a target', () => {
  it('holds a joiner and a leaver while paused, and drains both on resume', async () => {
    const leaver = uniqueEmployeeId('L');
    await hire(engine, leaver);

    const paused = await post('/api/v1/targets/directory/pause', { reason: 'directory migration' });
    expect(paused.statusCode, paused.body).toBe(200);
    expect(paused.json()).toMatchObject({ id: 'directory', paused: true, reason: 'directory migration' });
    const listed = await app.inject({ method: 'GET', url: '/api/v1/targets', headers: { authorization: `Bearer ${admin}` } });
    expect(listed.json()).toMatchObject({ items: [{ id: 'directory', paused: true }] });
    const [audited] = await engine.db.select().from(auditLog).where(and(eq(auditLog.action, 'target.paused'), eq(auditLog.subjectId, 'directory')));
    expect(audited?.after).toMatchObject({ paused: true, reason: 'directory migration' });

    // The workers read the switch at most a second late (services/target-controls.ts): past that, it holds.
    const pausedAt = Date.now();
    await eventually(async () => Date.now() - pausedAt > 1_200, 5_000, 100);
    const joiner = uniqueEmployeeId('J');
    await engine.submit({ type: 'hire', employeeId: joiner, attributes: { givenName: 'Joan', familyName: 'Clarke', department: 'Engineering', employmentType: 'employee' } });
    await engine.submit({ type: 'terminate', employeeId: leaver });
    // Each step tries, finds the target paused, and waits for it (with an alert): nothing reaches the directory.
    await eventually(async () => (await accountGrant(joiner)) === 'failed', 30_000);
    expect(await engine.connector.readAccount(joiner)).toBeNull();
    expect((await engine.connector.readAccount(leaver))?.enabled).toBe(true);

    const resumed = await post('/api/v1/targets/directory/resume');
    expect(resumed.statusCode).toBe(200);
    expect(resumed.json()).toMatchObject({ paused: false });
    await eventually(async () => (await accountGrant(joiner)) === 'active', 60_000);
    expect((await engine.connector.readAccount(joiner))?.enabled).toBe(true);
    await eventually(async () => (await engine.connector.readAccount(leaver))?.enabled === false, 60_000);
  });

  it('refuses an unknown target (404) and anyone but an admin (403)', async () => {
    expect((await post('/api/v1/targets/nowhere/pause')).statusCode).toBe(404);
    const reader = (await createApiToken(engine.db, { name: uniqueName('reader'), scopes: ['identities:read'] })).token;
    const refused = await app.inject({ method: 'POST', url: '/api/v1/targets/directory/pause', headers: { authorization: `Bearer ${reader}` } });
    expect(refused.statusCode).toBe(403);
  });
});
