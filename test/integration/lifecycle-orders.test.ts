// The orders HR really sends, against Temporal, Postgres, Redis and slapd: each case here
// gave access to someone who must not have it, or lost a leaver, before the lifecycle
// became one pure fold (domain/lifecycle.ts). OpenLDAP is read directly, groups by their
// own `member` values, so nothing here trusts the engine's own bookkeeping.
import { and, eq, inArray } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { Client as LdapClient } from 'ldapts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiToken } from '../../api/auth.js';
import { getHrEvent } from '../../db/inbox.js';
import { alerts, grants, identities } from '../../db/schema.js';
import { testConfig } from '../support/config.js';
import { buildTestApp } from '../support/api.js';
import { eventually, startTestEngine, type TestEngine } from '../support/engine.js';
import { testEnv, uniqueEmployeeId, uniqueName } from '../support/env.js';
import { saveHistory } from '../support/histories.js';

const ENGINEER = { givenName: 'Ada', familyName: 'Lovelace', department: 'Engineering', employmentType: 'employee' };
const seconds = (n: number) => new Date(Date.now() + n * 1000);

let engine: TestEngine;
beforeAll(async () => {
  engine = await startTestEngine({
    config: testConfig(testEnv.ldap, { lifecycle: { preProvisionLead: '3s', moverGracePeriod: '2s', deleteAfter: '1h', grantSla: '1m' } }),
  });
});
afterAll(async () => {
  await engine?.stop();
});

/** The directory itself: the entry (anywhere under the base), its lock, and the groups whose `member` holds it. */
async function directory(employeeId: string): Promise<{ exists: false } | { exists: true; enabled: boolean; groups: string[] }> {
  const ldap = new LdapClient({ url: testEnv.ldap.url });
  try {
    await ldap.bind(testEnv.ldap.bindDN, testEnv.ldap.bindPassword);
    const { searchEntries } = await ldap.search(testEnv.ldap.baseDN, { scope: 'sub', filter: `(&(objectClass=inetOrgPerson)(uid=${employeeId}))`, attributes: ['uid', 'pwdAccountLockedTime'] });
    const entry = searchEntries[0];
    if (!entry) return { exists: false };
    const inDisabledOu = entry.dn.toLowerCase().endsWith(testEnv.ldap.disabledDN.toLowerCase());
    const locked = [entry.pwdAccountLockedTime ?? []].flat().length > 0;
    const enabled = !inDisabledOu && !locked;
    const groups = await ldap.search(testEnv.ldap.groupsDN, { scope: 'one', filter: `(member=${entry.dn})`, attributes: ['cn'] });
    return { exists: true, enabled, groups: groups.searchEntries.map((g) => String(g.cn)).sort() };
  } finally {
    await ldap.unbind();
  }
}

async function person(employeeId: string, on: TestEngine = engine) {
  const [row] = await on.db.select().from(identities).where(eq(identities.employeeId, employeeId));
  return row;
}

async function liveGrants(employeeId: string, on: TestEngine = engine) {
  return on.db
    .select({ entitlementId: grants.entitlementId, status: grants.status })
    .from(grants)
    .innerJoin(identities, eq(grants.identityId, identities.id))
    .where(and(eq(identities.employeeId, employeeId), inArray(grants.status, ['pending', 'provisioning', 'active', 'failed', 'revoking'])));
}

/** Waits until the event has its final word: applied, ignored or failed. */
async function settled(eventId: string, on: TestEngine = engine, timeoutMs = 20_000) {
  return eventually(async () => {
    const row = await getHrEvent(on.db, eventId);
    return row && ['applied', 'ignored', 'failed'].includes(row.status) && row;
  }, timeoutMs);
}

async function hired(attributes: Record<string, string> = ENGINEER, effectiveAt = new Date()): Promise<string> {
  const employeeId = uniqueEmployeeId();
  expect((await settled(await engine.submit({ type: 'hire', employeeId, effectiveAt, attributes }))).status).toBe('applied');
  return employeeId;
}

describe('future starters who never start', () => {
  it('a hire rescinded before pre-provisioning gives no account, on the start date or after', async () => {
    const employeeId = uniqueEmployeeId();
    const hire = await engine.submit({ type: 'hire', employeeId, effectiveAt: seconds(5), attributes: ENGINEER });
    await eventually(async () => (await person(employeeId))?.status === 'pre_hire');
    const rescind = await engine.submit({ type: 'rescind', employeeId });
    expect((await settled(rescind)).status).toBe('applied');
    // The hire's own moment passes and it is answered: void, nothing granted.
    const hireRow = await settled(hire);
    expect(hireRow.reason).toMatch(/rescinded/);
    expect(Date.now()).toBeGreaterThanOrEqual(hireRow.effectiveAt.getTime());
    expect(await directory(employeeId)).toEqual({ exists: false });
    expect(await liveGrants(employeeId)).toEqual([]);
    expect((await person(employeeId))?.status).toBe('rescinded');
    await saveHistory(engine.client, `lifecycle:${employeeId}`, 'rescinded-before-start');
  });

  it('a hire terminated before the start (SCIM active:false for a pre-hire) gives no account, in either delivery order', async () => {
    const inOrder = uniqueEmployeeId();
    const swapped = uniqueEmployeeId();
    const start = seconds(5);
    const hires = [await engine.submit({ type: 'hire', employeeId: inOrder, effectiveAt: start, attributes: ENGINEER })];
    await engine.submit({ type: 'terminate', employeeId: inOrder });
    await engine.submit({ type: 'terminate', employeeId: swapped });
    hires.push(await engine.submit({ type: 'hire', employeeId: swapped, effectiveAt: start, attributes: ENGINEER }));
    for (const hire of hires) expect((await settled(hire)).reason).toMatch(/terminated/);
    for (const employeeId of [inOrder, swapped]) {
      expect(await directory(employeeId)).toEqual({ exists: false });
      expect(await liveGrants(employeeId)).toEqual([]);
      expect((await person(employeeId))?.status).toBe('terminated');
    }
  });
});

describe('leavers stay leavers', () => {
  it('an update to a leaver changes attributes only', async () => {
    const employeeId = await hired();
    expect((await settled(await engine.submit({ type: 'terminate', employeeId }))).status).toBe('applied');
    const update = await settled(await engine.submit({ type: 'update', employeeId, attributes: { department: 'Sales', title: 'Account Executive' } }));
    expect(update.status).toBe('applied');
    expect(update.reason).toMatch(/attributes only/);
    const row = await person(employeeId);
    expect(row?.status).toBe('terminated');
    expect(row?.attributes).toMatchObject({ department: 'Sales', title: 'Account Executive' });
    expect(await liveGrants(employeeId)).toEqual([]);
    expect(await directory(employeeId)).toEqual({ exists: true, enabled: false, groups: [] });
  });

  it('an update after erasure does not re-create the account', async () => {
    const quick = await startTestEngine({ config: testConfig(testEnv.ldap, { lifecycle: { deleteAfter: '2s' } }) });
    try {
      const employeeId = uniqueEmployeeId();
      await settled(await quick.submit({ type: 'hire', employeeId, attributes: ENGINEER }), quick);
      await settled(await quick.submit({ type: 'terminate', employeeId }), quick);
      await eventually(async () => !(await directory(employeeId)).exists, 15_000);
      const update = await settled(await quick.submit({ type: 'update', employeeId, attributes: { givenName: 'Augusta', email: 'augusta@example.com' } }), quick);
      expect(update.status).toBe('applied');
      expect(await directory(employeeId)).toEqual({ exists: false });
      expect(await liveGrants(employeeId, quick)).toEqual([]);
      expect((await person(employeeId, quick))?.attributes).toMatchObject({ givenName: 'Augusta' });
    } finally {
      await quick.stop();
    }
  });
});

describe('staleness is judged per attribute and per leave, not per event', () => {
  it('a 09:00 department change that arrives after a 09:05 title change still moves the person', async () => {
    const t0 = seconds(-60);
    const employeeId = await hired({ ...ENGINEER, department: 'Engineering' }, t0);
    const later = await engine.submit({ type: 'update', employeeId, effectiveAt: new Date(t0.getTime() + 35_000), attributes: { title: 'Staff Engineer' } });
    expect((await settled(later)).status).toBe('applied');
    const earlier = await settled(await engine.submit({ type: 'update', employeeId, effectiveAt: new Date(t0.getTime() + 30_000), attributes: { department: 'Sales' } }));
    expect(earlier.status).toBe('applied');
    expect((await person(employeeId))?.attributes).toMatchObject({ department: 'Sales', title: 'Staff Engineer' });
    await eventually(async () => {
      const now = await directory(employeeId);
      return now.exists && now.groups.includes('sales') && !now.groups.includes('engineering');
    }, 15_000);
  });

  it('an update and a leave_start 1 ms apart, delivered swapped, both apply', async () => {
    const t0 = seconds(-30);
    const employeeId = await hired(ENGINEER, t0);
    const leave = await engine.submit({ type: 'leave_start', employeeId, effectiveAt: new Date(t0.getTime() + 10_001) });
    expect((await settled(leave)).status).toBe('applied');
    const update = await settled(await engine.submit({ type: 'update', employeeId, effectiveAt: new Date(t0.getTime() + 10_000), attributes: { department: 'Sales' } }));
    expect(update.status).toBe('applied');
    const row = await person(employeeId);
    expect(row?.status).toBe('on_leave');
    expect(row?.attributes.department).toBe('Sales');
    const now = await eventually(async () => {
      const found = await directory(employeeId);
      return found.exists && found.groups.includes('sales') && found;
    });
    expect(now).toMatchObject({ exists: true, enabled: false });
  });

  it('a late leave_start after its leave_end leaves the person active', async () => {
    const t0 = seconds(-30);
    const employeeId = await hired(ENGINEER, t0);
    expect((await settled(await engine.submit({ type: 'leave_end', employeeId, effectiveAt: new Date(t0.getTime() + 20_000) }))).status).toBe('applied');
    const lateStart = await settled(await engine.submit({ type: 'leave_start', employeeId, effectiveAt: new Date(t0.getTime() + 10_000) }));
    expect(lateStart.status).toBe('ignored');
    expect(lateStart.reason).toMatch(/stale/);
    expect((await person(employeeId))?.status).toBe('active');
    expect(await directory(employeeId)).toMatchObject({ exists: true, enabled: true });
  });
});

describe('a failed step never ends the person', () => {
  let broken: TestEngine;
  let app: FastifyInstance;
  let token: string;
  const missingOu = `ou=${uniqueName('missing').toLowerCase()},${testEnv.ldap.groupsDN}`;
  beforeAll(async () => {
    // A group under an OU the directory does not have: the directory refuses, permanently,
    // until an administrator creates the OU.
    const config = testConfig(testEnv.ldap, {
      entitlements: [
        { id: 'directory-account', target: 'directory', kind: 'account' },
        { id: 'all-staff', target: 'directory', kind: 'group', ref: `cn=all-staff,${testEnv.ldap.groupsDN}` },
        { id: 'lab', target: 'directory', kind: 'group', ref: `cn=lab,${missingOu}` },
      ],
      birthright: [
        { name: 'everyone', grant: ['directory-account', 'all-staff'] },
        { name: 'lab', when: { department: 'Lab' }, grant: ['lab'] },
      ],
    });
    broken = await startTestEngine({ config });
    app = await buildTestApp(broken);
    ({ token } = await createApiToken(broken.db, { name: uniqueName('ops'), scopes: ['alerts:write'] }));
  });
  afterAll(async () => {
    await app?.close();
    await broken?.stop();
  });

  it('the event fails with its error; a retry after the fix applies it; a later terminate still applies', async () => {
    const employeeId = uniqueEmployeeId();
    const hire = await broken.submit({ type: 'hire', employeeId, attributes: { givenName: 'Marie', familyName: 'Curie', department: 'Lab' } });
    const failed = await settled(hire, broken);
    expect(failed.status).toBe('failed');
    expect(failed.reason).toMatch(/lab/);
    const handle = broken.client.workflow.getHandle(`lifecycle:${employeeId}`);
    expect((await handle.describe()).status.name).toBe('RUNNING');
    // Only a failed event can be retried; the retry route needs a token.
    const update = await broken.submit({ type: 'update', employeeId, attributes: { title: 'Physicist' } });
    expect((await settled(update, broken)).status).toBe('applied');
    const refused = await app.inject({ method: 'POST', url: `/api/v1/hr/events/${update}/retry`, headers: { authorization: `Bearer ${token}` } });
    expect(refused.statusCode).toBe(409);
    expect(refused.json()).toMatchObject({ eventStatus: 'applied' });
    expect((await app.inject({ method: 'POST', url: '/api/v1/hr/events/nope/retry', headers: { authorization: `Bearer ${token}` } })).statusCode).toBe(404);
    expect((await app.inject({ method: 'POST', url: `/api/v1/hr/events/${hire}/retry` })).statusCode).toBe(401);
    expect((await getHrEvent(broken.db, hire))?.status).toBe('failed');
    const raised = await broken.db.select().from(alerts).where(and(eq(alerts.kind, 'grant_failed'), eq(alerts.status, 'open')));
    expect(raised.some((a) => (a.details as { employeeId?: string }).employeeId === employeeId)).toBe(true);

    // The administrator creates the missing OU, then retries.
    const ldap = new LdapClient({ url: testEnv.ldap.url });
    await ldap.bind(testEnv.ldap.bindDN, testEnv.ldap.bindPassword);
    await ldap.add(missingOu, { objectClass: ['organizationalUnit'], ou: missingOu.split(',')[0]!.slice(3) });
    await ldap.unbind();
    const retried = await app.inject({ method: 'POST', url: `/api/v1/hr/events/${hire}/retry`, headers: { authorization: `Bearer ${token}` } });
    expect(retried.statusCode).toBe(202);
    expect((await settled(hire, broken)).status).toBe('applied');
    expect((await liveGrants(employeeId, broken)).map((g) => `${g.entitlementId}:${g.status}`).sort()).toEqual(['all-staff:active', 'directory-account:active', 'lab:active']);
    expect((await settled(await broken.submit({ type: 'terminate', employeeId }), broken)).status).toBe('applied');
    expect(await liveGrants(employeeId, broken)).toEqual([]);
    expect(await directory(employeeId)).toEqual({ exists: true, enabled: false, groups: [] });
    await saveHistory(broken.client, `lifecycle:${employeeId}`, 'failed-retried-leaver');
  });

  it('an account that vanished before the start fails the start with an alert; the terminate still applies', async () => {
    const employeeId = uniqueEmployeeId();
    const hire = await engine.submit({ type: 'hire', employeeId, effectiveAt: seconds(5), attributes: ENGINEER });
    await eventually(async () => (await directory(employeeId)).exists); // pre-provisioned, disabled
    await eventually(async () => (await liveGrants(employeeId)).every((g) => g.status === 'active') && (await liveGrants(employeeId)).length === 4);
    // Someone deletes the entry in the directory; enabling it at the start cannot work.
    const ldap = new LdapClient({ url: testEnv.ldap.url });
    await ldap.bind(testEnv.ldap.bindDN, testEnv.ldap.bindPassword);
    await ldap.del(`uid=${employeeId},${testEnv.ldap.usersDN}`);
    await ldap.unbind();
    const failed = await settled(hire);
    expect(failed.status).toBe('failed');
    const [alert] = await engine.db.select().from(alerts).where(eq(alerts.dedupeKey, `event_failed:${hire}`));
    expect(alert).toMatchObject({ kind: 'event_failed', status: 'open' });
    expect((await engine.client.workflow.getHandle(`lifecycle:${employeeId}`).describe()).status.name).toBe('RUNNING');

    const terminate = await settled(await engine.submit({ type: 'terminate', employeeId }));
    expect(terminate.status).toBe('applied');
    expect((await person(employeeId))?.status).toBe('terminated');
    expect(await liveGrants(employeeId)).toEqual([]);
    expect(await directory(employeeId)).toEqual({ exists: false });
  });

  it('a run that starts without carried state rebuilds the person from the database', async () => {
    const employeeId = await hired();
    // The run ends for whatever reason (an operator terminated it, a bug failed it).
    await engine.client.workflow.getHandle(`lifecycle:${employeeId}`).terminate('test: the run ends');
    const terminate = await settled(await engine.submit({ type: 'terminate', employeeId }));
    expect(terminate.status).toBe('applied'); // not "waiting for the hire": the new run knows the person
    expect((await person(employeeId))?.status).toBe('terminated');
    expect(await liveGrants(employeeId)).toEqual([]);
    expect(await directory(employeeId)).toEqual({ exists: true, enabled: false, groups: [] });
    await saveHistory(engine.client, `lifecycle:${employeeId}`, 'rebuilt-leaver');
  });
});
