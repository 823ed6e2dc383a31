// The whole lifecycle at the effective moment, against Temporal, Postgres, Redis and slapd:
// future-dated joiners, pre-provisioning and rescind, movers with a grace period, leavers
// (locked out: the bind fails), erasure, rehire, leave of absence, out-of-order delivery.
import { and, eq } from 'drizzle-orm';
import { Change, Attribute, Client as LdapClient } from 'ldapts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyAuditChain } from '../../db/audit.js';
import { getHrEvent } from '../../db/inbox.js';
import { accessRequests, grants, identities } from '../../db/schema.js';
import { testConfig } from '../support/config.js';
import { eventually, startTestEngine, type TestEngine } from '../support/engine.js';
import { testEnv, uniqueEmployeeId } from '../support/env.js';
import { saveHistory } from '../support/histories.js';
import { explainIdentity } from '../../services/explain.js';

const ENGINEER = { givenName: 'Ada', familyName: 'Lovelace', department: 'Engineering', employmentType: 'employee' };
const group = (cn: string) => `cn=${cn},${testEnv.ldap.groupsDN}`.toLowerCase();
const seconds = (n: number) => new Date(Date.now() + n * 1000);

let engine: TestEngine;
beforeAll(async () => {
  engine = await startTestEngine({
    config: testConfig(testEnv.ldap, { lifecycle: { preProvisionLead: '4s', moverGracePeriod: '3s', deleteAfter: '3s', grantSla: '1m' } }),
  });
});
afterAll(async () => {
  await engine?.stop();
});

async function account(employeeId: string) {
  const found = await engine.connector.readAccount(employeeId);
  return found && { ...found, groups: found.groups.map((g) => g.toLowerCase()) };
}

async function person(employeeId: string) {
  const [row] = await engine.db.select().from(identities).where(eq(identities.employeeId, employeeId));
  return row;
}

async function grantRows(employeeId: string) {
  return engine.db
    .select({ entitlementId: grants.entitlementId, status: grants.status, revokeReason: grants.revokeReason, verifiedAt: grants.verifiedAt, requestStatus: accessRequests.status })
    .from(grants)
    .innerJoin(identities, eq(grants.identityId, identities.id))
    .innerJoin(accessRequests, eq(grants.requestId, accessRequests.id))
    .where(eq(identities.employeeId, employeeId));
}

async function applied(eventId: string, timeoutMs = 20_000) {
  return eventually(async () => {
    const row = await getHrEvent(engine.db, eventId);
    return row && ['applied', 'ignored'].includes(row.status) && row;
  }, timeoutMs);
}

async function canBind(employeeId: string, password: string): Promise<boolean> {
  const dn = (await account(employeeId))?.ref;
  if (!dn) return false;
  const client = new LdapClient({ url: testEnv.ldap.url });
  try {
    await client.bind(dn, password);
    return true;
  } catch {
    return false;
  } finally {
    await client.unbind().catch(() => undefined);
  }
}

async function setPassword(employeeId: string, password: string): Promise<void> {
  const admin = new LdapClient({ url: testEnv.ldap.url });
  await admin.bind(testEnv.ldap.bindDN, testEnv.ldap.bindPassword);
  const dn = (await account(employeeId))?.ref as string;
  await admin.modify(dn, new Change({ operation: 'replace', modification: new Attribute({ type: 'userPassword', values: [password] }) }));
  await admin.unbind();
}

async function hired(attributes = ENGINEER): Promise<string> {
  const employeeId = uniqueEmployeeId();
  await applied(await engine.submit({ type: 'hire', employeeId, attributes }));
  return employeeId;
}

describe('joiner, future-dated', () => {
  it('creates a pre_hire at once, pre-provisions a disabled account before the start, enables it at the start', async () => {
    const employeeId = uniqueEmployeeId();
    const start = seconds(7); // preProvisionLead is 4s: accounts appear at ~3s
    await engine.submit({ type: 'hire', employeeId, effectiveAt: start, attributes: ENGINEER });
    await eventually(async () => (await person(employeeId))?.status === 'pre_hire');
    expect(await account(employeeId)).toBeNull(); // nothing before the lead time

    const early = await eventually(async () => {
      const found = await account(employeeId);
      return found?.groups.includes(group('engineering')) ? found : undefined;
    });
    // Provisioned (and read back) before the start, even on a slow machine: the database says when.
    const verified = await eventually(async () => {
      const rows = await engine.db.select({ at: grants.verifiedAt }).from(grants).innerJoin(identities, eq(grants.identityId, identities.id)).where(eq(identities.employeeId, employeeId));
      return rows.length === 4 && rows.every((r) => r.at) && rows;
    });
    for (const { at } of verified) expect(at!.getTime()).toBeLessThan(start.getTime());
    expect(early.enabled).toBe(false);
    expect(early.groups).toContain(group('engineering'));

    await eventually(async () => (await account(employeeId))?.enabled === true, 15_000);
    expect(Date.now()).toBeGreaterThanOrEqual(start.getTime());
    await eventually(async () => (await person(employeeId))?.status === 'active');
    await saveHistory(engine.client, `lifecycle:${employeeId}`, 'joiner-future');
  });

  it('with no lead time, provisions at the effective moment and not before', async () => {
    const quick = await startTestEngine({ config: testConfig(testEnv.ldap) });
    try {
      const employeeId = uniqueEmployeeId();
      const start = seconds(3);
      const eventId = await quick.submit({ type: 'hire', employeeId, effectiveAt: start, attributes: ENGINEER });
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      expect(await quick.connector.readAccount(employeeId)).toBeNull();
      await eventually(async () => (await getHrEvent(quick.db, eventId))?.status === 'applied', 15_000);
      const rows = await quick.db.select({ verifiedAt: grants.verifiedAt }).from(grants).innerJoin(identities, eq(grants.identityId, identities.id)).where(eq(identities.employeeId, employeeId));
      expect(rows.length).toBe(4);
      for (const row of rows) expect(row.verifiedAt!.getTime()).toBeGreaterThanOrEqual(start.getTime());
    } finally {
      await quick.stop();
    }
  });

  it('a rescind before the start deletes what was pre-provisioned and cancels the start', async () => {
    const employeeId = uniqueEmployeeId();
    await engine.submit({ type: 'hire', employeeId, effectiveAt: seconds(6), attributes: ENGINEER });
    await eventually(async () => (await account(employeeId)) ?? undefined); // pre-provisioned at ~2s
    const rescind = await engine.submit({ type: 'rescind', employeeId });
    await applied(rescind);
    expect(await account(employeeId)).toBeNull();
    expect((await person(employeeId))?.status).toBe('rescinded');
    expect((await grantRows(employeeId)).every((g) => g.status === 'revoked' && g.revokeReason === 'rescinded')).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 4_000)); // past the start: nothing comes back
    expect(await account(employeeId)).toBeNull();
    expect((await person(employeeId))?.status).toBe('rescinded');
  });
});

describe('mover', () => {
  it('adds the new groups at once and removes the old ones after the grace period', async () => {
    const employeeId = await hired();
    const update = await engine.submit({ type: 'update', employeeId, attributes: { department: 'Sales' } });
    await applied(update);
    const during = await account(employeeId);
    expect(during?.groups).toContain(group('sales'));
    // The entry follows the new department (ou), as the identity row does.
    const admin = new LdapClient({ url: testEnv.ldap.url });
    try {
      await admin.bind(testEnv.ldap.bindDN, testEnv.ldap.bindPassword);
      await eventually(async () => (await admin.search(during!.ref, { scope: 'base', attributes: ['ou'] })).searchEntries[0]?.ou === 'Sales', 15_000);
    } finally {
      await admin.unbind();
    }
    expect(during?.groups).toContain(group('engineering')); // grace period: still there
    expect(during?.groups).toContain(group('all-staff'));

    await eventually(async () => !(await account(employeeId))?.groups.includes(group('engineering')), 15_000);
    await eventually(async () => (await grantRows(employeeId)).find((g) => g.entitlementId === 'engineering')?.status === 'revoked');
    const after = await account(employeeId);
    expect(after?.groups).toContain(group('sales'));
    expect(after?.groups).toContain(group('all-staff')); // still due by another rule
    const rows = await grantRows(employeeId);
    expect(rows.find((g) => g.entitlementId === 'engineering')).toMatchObject({ status: 'revoked', revokeReason: 'mover' });
    expect(rows.find((g) => g.entitlementId === 'sales')).toMatchObject({ status: 'active' });
    await saveHistory(engine.client, `lifecycle:${employeeId}`, 'mover');
  });

  it('does not revoke what a move back made due again within the grace period', async () => {
    const employeeId = await hired();
    await applied(await engine.submit({ type: 'update', employeeId, attributes: { department: 'Sales' } }));
    await applied(await engine.submit({ type: 'update', employeeId, attributes: { department: 'Engineering' } }));
    // Sales goes when the second move's grace period ends, which is after the first move's
    // (when engineering would have gone): once sales is revoked, both have been decided.
    await eventually(async () => (await grantRows(employeeId)).find((g) => g.entitlementId === 'sales')?.status === 'revoked', 30_000);
    const groups = (await account(employeeId))?.groups;
    expect(groups).toContain(group('engineering'));
    expect(groups).not.toContain(group('sales'));
    expect((await grantRows(employeeId)).find((g) => g.entitlementId === 'engineering')).toMatchObject({ status: 'active' });
  });
});

describe('leaver', () => {
  it('at the effective moment disables the account (the bind fails), revokes every grant, and erases later', async () => {
    const employeeId = await hired();
    await setPassword(employeeId, 'S3cret-pass');
    expect(await canBind(employeeId, 'S3cret-pass')).toBe(true);

    const at = seconds(3);
    const terminate = await engine.submit({ type: 'terminate', employeeId, effectiveAt: at });
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect((await account(employeeId))?.enabled).toBe(true); // not before
    // Explain shows the pending leaver: when, and every grant it will revoke.
    const plan = await explainIdentity({ db: engine.db, temporal: engine.client, config: engine.config }, employeeId);
    // Two steps: the leaver at its moment, and erasure deleteAfter (3s) later.
    expect(plan.steps.map((s) => [s.step, s.dueAt])).toEqual([
      ['terminate event', at.toISOString()],
      ['retention period ends', new Date(at.getTime() + 3_000).toISOString()],
    ]);
    expect(plan.steps[0]?.revokes.map((r) => r.entitlementId).sort()).toEqual(['all-staff', 'directory-account', 'employees', 'engineering']);
    await applied(terminate);
    expect(Date.now()).toBeGreaterThanOrEqual(at.getTime());
    const gone = await account(employeeId);
    expect(gone?.enabled).toBe(false);
    expect(gone?.groups).toEqual([]);
    expect(await canBind(employeeId, 'S3cret-pass')).toBe(false);
    const rows = await grantRows(employeeId);
    expect(rows.length).toBe(4);
    expect(rows.every((g) => g.status === 'revoked' && g.revokeReason === 'leaver')).toBe(true);
    expect((await person(employeeId))?.status).toBe('terminated');

    await eventually(async () => (await account(employeeId)) === null, 15_000); // deleteAfter: 3s
    await saveHistory(engine.client, `lifecycle:${employeeId}`, 'leaver');
  });

  it('a rehire before erasure restores access', async () => {
    const employeeId = await hired();
    await applied(await engine.submit({ type: 'terminate', employeeId }));
    expect((await account(employeeId))?.enabled).toBe(false);
    await applied(await engine.submit({ type: 'rehire', employeeId, attributes: { department: 'Sales' } }));
    const back = await account(employeeId);
    expect(back?.enabled).toBe(true);
    expect(back?.groups).toEqual(expect.arrayContaining([group('all-staff'), group('employees'), group('sales')]));
    expect((await person(employeeId))?.status).toBe('active');
    await new Promise((resolve) => setTimeout(resolve, 3_500)); // the erase step was cancelled
    expect(await account(employeeId)).not.toBeNull();
  });
});

describe('leave of absence', () => {
  it('suspends and restores the account', async () => {
    const employeeId = await hired();
    await applied(await engine.submit({ type: 'leave_start', employeeId }));
    expect((await account(employeeId))?.enabled).toBe(false);
    expect((await person(employeeId))?.status).toBe('on_leave');
    expect((await account(employeeId))?.groups).toContain(group('engineering')); // suspended, not revoked
    await applied(await engine.submit({ type: 'leave_end', employeeId }));
    expect((await account(employeeId))?.enabled).toBe(true);
    expect((await person(employeeId))?.status).toBe('active');
  });
});

describe('events out of order', () => {
  it('an update that arrives before its hire is applied after it', async () => {
    const employeeId = uniqueEmployeeId();
    const update = await engine.submit({ type: 'update', employeeId, effectiveAt: seconds(-1), attributes: { title: 'Principal Engineer' } });
    await eventually(async () => (await getHrEvent(engine.db, update))?.reason?.includes('waiting for the hire'));
    const hire = await engine.submit({ type: 'hire', employeeId, effectiveAt: seconds(-5), attributes: { ...ENGINEER, title: 'Engineer' } });
    await applied(hire);
    await applied(update);
    expect((await person(employeeId))?.attributes.title).toBe('Principal Engineer');
  });

  it('a terminate before an update dated earlier ends terminated; the stale update is ignored with a reason', async () => {
    const employeeId = await hired();
    await applied(await engine.submit({ type: 'terminate', employeeId, effectiveAt: seconds(-1) }));
    const stale = await engine.submit({ type: 'update', employeeId, effectiveAt: seconds(-30), attributes: { department: 'Sales' } });
    const row = await applied(stale);
    expect(row.status).toBe('ignored');
    expect(row.reason).toMatch(/stale/);
    expect((await person(employeeId))?.status).toBe('terminated');
    // No enabled account: disabled, or already erased on a slow machine (deleteAfter is 3 s here).
    expect((await account(employeeId))?.enabled ?? false).toBe(false);
    expect(await engine.db.select().from(grants).innerJoin(identities, eq(grants.identityId, identities.id)).where(and(eq(identities.employeeId, employeeId), eq(grants.status, 'active')))).toEqual([]);
  });

  it('keeps the audit chain intact through all of it', async () => {
    expect((await verifyAuditChain(engine.db)).ok).toBe(true);
  });
});
