// The first complete path: a signed HR hire posted to the real API becomes an OpenLDAP
// account with its birthright groups in memberOf, and the API shows an auto-approved
// request beside active, verified grants.
import type { FastifyInstance } from 'fastify';
import { Client as LdapClient } from 'ldapts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiToken } from '../../api/auth.js';
import { buildTestApp, newWebhookSecret, signedWebhook } from '../support/api.js';
import { eventually, startTestEngine, type TestEngine } from '../support/engine.js';
import { testEnv, uniqueEmployeeId, uniqueName } from '../support/env.js';
import { saveHistory } from '../support/histories.js';

const secret = newWebhookSecret();
let engine: TestEngine;
let app: FastifyInstance;
let token: string;

beforeAll(async () => {
  engine = await startTestEngine();
  app = await buildTestApp(engine, {
    secret,
    health: {
      redis: async () => {
        await engine.queue.getWaitingCount();
      },
      temporal: async () => {
        await engine.client.connection.workflowService.getSystemInfo({});
      },
    },
  });
  ({ token } = await createApiToken(engine.db, { name: uniqueName('e2e'), scopes: ['identities:read'] }));
});
afterAll(async () => {
  await app?.close();
  await engine?.stop();
});

describe('hire through the API', () => {
  it('ends with an LDAP account in the birthright groups and verified grants visible in the API', async () => {
    const employeeId = uniqueEmployeeId();
    const event = signedWebhook(secret, {
      type: 'hire',
      employeeId,
      attributes: { givenName: 'Ada', familyName: 'Lovelace', email: 'ada@example.com', department: 'Engineering', title: 'Engineer', location: 'London', employmentType: 'employee', managerId: 'E0001' },
    });
    const accepted = await app.inject({ method: 'POST', url: '/api/v1/hr/events', headers: event.headers, payload: event.payload });
    expect(accepted.statusCode).toBe(202);
    expect(accepted.json()).toMatchObject({ id: event.id });

    const status = await eventually(async () => {
      const res = await app.inject({ method: 'GET', url: `/api/v1/hr/events/${event.id}`, headers: { authorization: `Bearer ${token}` } });
      const body = res.json<{ status: string; type: string }>();
      return body.status === 'applied' ? body : undefined;
    });
    expect(status.type).toBe('hire');

    // The directory itself, read as an administrator would.
    const ldap = new LdapClient({ url: testEnv.ldap.url });
    await ldap.bind(testEnv.ldap.bindDN, testEnv.ldap.bindPassword);
    const { searchEntries } = await ldap.search(testEnv.ldap.usersDN, { filter: `(uid=${employeeId})`, attributes: ['memberOf', 'mail', 'cn'] });
    await ldap.unbind();
    expect(searchEntries).toHaveLength(1);
    expect(searchEntries[0]?.mail).toBe('ada@example.com');
    const memberOf = [searchEntries[0]?.memberOf ?? []].flat().map((dn) => String(dn).toLowerCase());
    for (const cn of ['all-staff', 'employees', 'engineering']) expect(memberOf).toContain(`cn=${cn},${testEnv.ldap.groupsDN}`);

    // The API: the person, then each grant with its request status and grant status side by side.
    const list = await app.inject({ method: 'GET', url: `/api/v1/identities?employeeId=${employeeId}`, headers: { authorization: `Bearer ${token}` } });
    expect(list.statusCode).toBe(200);
    const [person] = list.json().items;
    expect(person).toMatchObject({ employeeId, status: 'active' });
    const grants = await app.inject({ method: 'GET', url: `/api/v1/identities/${person.id}/grants`, headers: { authorization: `Bearer ${token}` } });
    const items = grants.json().items as Array<{ entitlementId: string; requestKind: string; requestStatus: string; grantStatus: string; verifiedAt: string | null }>;
    expect(items.map((g) => g.entitlementId).sort()).toEqual(['all-staff', 'directory-account', 'employees', 'engineering']);
    for (const grant of items) {
      expect(grant).toMatchObject({ requestKind: 'birthright', requestStatus: 'auto_approved', grantStatus: 'active' });
      expect(Date.parse(grant.verifiedAt ?? '')).not.toBeNaN();
    }

    const timeline = await app.inject({ method: 'GET', url: `/api/v1/identities/${person.id}/timeline`, headers: { authorization: `Bearer ${token}` } });
    expect(timeline.statusCode).toBe(200);
    expect(JSON.stringify(timeline.json())).toContain('grant.active');

    const health = await app.inject({ method: 'GET', url: '/api/health' });
    expect(health.statusCode).toBe(200);
    await saveHistory(engine.client, `lifecycle:${employeeId}`, 'e2e-hire');
  });
});
