// Reconciliation against a real OpenLDAP of this file's own, with people hired through the
// engine so their grants are real: drift made behind the engine's back with an admin ldapts
// client is found (drift_missing, drift_unexpected), repaired when asked (verified by
// read-back, audited, its alert resolved), and a run with nothing changed finds nothing new.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { and, eq } from 'drizzle-orm';
import { Attribute, Change, Client } from 'ldapts';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiToken } from '../../api/auth.js';
import { createReconcileActivities, driftKey, type ReconcileResult } from '../../activities/reconcile.js';
import { alerts, auditLog, grants, identities, reconcileRuns } from '../../db/schema.js';
import { canonicalEmployeeId } from '../../domain/employee-id.js';
import { startSlapd, type SlapdServer } from '../../scripts/slapd.js';
import { buildTestApp } from '../support/api.js';
import { testConfig } from '../support/config.js';
import { eventually, startTestEngine, type TestEngine } from '../support/engine.js';
import { saveHistory } from '../support/histories.js';
import { uniqueEmployeeId, uniqueName } from '../support/env.js';
import { hire } from '../support/requests.js';

let dir: string;
let slapd: SlapdServer;
let engine: TestEngine;
let admin: Client;
const TARGET = 'directory';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'jml-slapd-reconcile-'));
  slapd = await startSlapd({ dir });
  engine = await startTestEngine({ config: testConfig(slapd) });
  admin = new Client({ url: slapd.url });
  await admin.bind(slapd.bindDN, slapd.bindPassword);
}, 120_000);
afterAll(async () => {
  await admin?.unbind().catch(() => undefined);
  await engine?.stop();
  await slapd?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The reconcile activity on the engine's database, config and (unwrapped) connector. */
function reconcile(repair = false): Promise<ReconcileResult> {
  const activities = createReconcileActivities({ db: engine.db, config: engine.config, connectors: new Map([[TARGET, engine.connector]]), logger: pino({ level: 'silent' }) });
  return activities.reconcileTarget({ target: TARGET, repair });
}

const group = (cn: string) => `cn=${cn},${slapd.groupsDN}`;
const userDn = (employeeId: string) => `uid=${employeeId},${slapd.usersDN}`;
const modify = (dn: string, operation: 'add' | 'delete', type: string, values: string[]) => admin.modify(dn, new Change({ operation, modification: new Attribute({ type, values }) }));
/** As an administrator would: a group's last member gives way to a placeholder (groupOfNames needs one). */
async function removeByHand(groupDn: string, memberDn: string): Promise<void> {
  try {
    await modify(groupDn, 'delete', 'member', [memberDn]);
  } catch {
    await admin.modify(groupDn, [
      new Change({ operation: 'add', modification: new Attribute({ type: 'member', values: [`cn=by-hand,${slapd.baseDN}`] }) }),
      new Change({ operation: 'delete', modification: new Attribute({ type: 'member', values: [memberDn] }) }),
    ]);
  }
}
/** As an administrator would: into the group, made first if nobody was ever granted it. */
async function addByHand(groupDn: string, memberDn: string): Promise<void> {
  try {
    await modify(groupDn, 'add', 'member', [memberDn]);
  } catch {
    await admin.add(groupDn, { objectClass: ['top', 'groupOfNames'], cn: groupDn.slice(3, groupDn.indexOf(',')), member: [memberDn] });
  }
}
const alertOf = async (key: string) => (await engine.db.select().from(alerts).where(eq(alerts.dedupeKey, key)))[0];

async function grantStatus(employeeId: string, entitlementId: string): Promise<string | undefined> {
  const rows = await engine.db
    .select({ status: grants.status })
    .from(grants)
    .innerJoin(identities, eq(identities.id, grants.identityId))
    .where(and(eq(identities.employeeId, canonicalEmployeeId(employeeId)), eq(grants.entitlementId, entitlementId)));
  return rows.some((r) => r.status !== 'revoked') ? rows.find((r) => r.status !== 'revoked')!.status : rows[0]?.status;
}

async function hireAndLeave(employeeId: string): Promise<void> {
  await hire(engine, employeeId);
  await eventually(async () => (await grantStatus(employeeId, 'engineering')) === 'active', 30_000);
  await engine.submit({ type: 'terminate', employeeId });
  await eventually(async () => (await grantStatus(employeeId, 'directory-account')) === 'revoked' && (await grantStatus(employeeId, 'engineering')) === 'revoked', 30_000);
}

describe('reconcile (LDAP)', () => {
  it('a membership removed behind the engine’s back is drift_missing; with repair it is back, verified, audited, its alert resolved', async () => {
    const employeeId = uniqueEmployeeId('RM');
    await hire(engine, employeeId);
    await eventually(async () => (await grantStatus(employeeId, 'engineering')) === 'active', 30_000);
    const before = await reconcile();
    expect(before.error).toBeUndefined();

    await removeByHand(group('engineering'), userDn(employeeId));
    const found = await reconcile();
    expect(found.error).toBeUndefined();
    expect(found.counts.drift_missing).toBe(1);
    expect(found.counts.repaired).toBe(0);
    const key = driftKey('drift_missing', TARGET, employeeId, 'engineering');
    expect(await alertOf(key)).toMatchObject({ kind: 'drift_missing', status: 'open', severity: 'warning' });
    expect((await alertOf(key))!.details).toMatchObject({ target: TARGET, employeeId, entitlementId: 'engineering', aspect: 'membership' });
    expect(await engine.connector.isGroupMember(employeeId, group('engineering'))).toBe(false);

    const repaired = await reconcile(true);
    expect(repaired.counts).toMatchObject({ drift_missing: 1, repaired: 1, repairFailed: 0 });
    expect(await engine.connector.isGroupMember(employeeId, group('engineering'))).toBe(true);
    expect((await alertOf(key))?.status).toBe('resolved');
    const audit = await engine.db.select().from(auditLog).where(and(eq(auditLog.action, 'reconcile.repaired'), eq(auditLog.subjectId, employeeId)));
    expect(audit).toHaveLength(1);
    expect(audit[0]!.after).toMatchObject({ kind: 'drift_missing', entitlementId: 'engineering', verified: true });
  });

  it('a group added by hand to a leaver is drift_unexpected', async () => {
    const employeeId = uniqueEmployeeId('RU');
    await hireAndLeave(employeeId);
    await addByHand(group('sales'), userDn(employeeId));
    const result = await reconcile();
    expect(result.counts.drift_unexpected).toBeGreaterThanOrEqual(1);
    const alert = await alertOf(driftKey('drift_unexpected', TARGET, employeeId, 'sales'));
    expect(alert).toMatchObject({ kind: 'drift_unexpected', status: 'open', severity: 'critical' });
    expect(alert!.details).toMatchObject({ employeeId, entitlementId: 'sales', aspect: 'membership' });

    // Repaired: removed, verified, and the alert resolves.
    await reconcile(true);
    expect(await engine.connector.isGroupMember(employeeId, group('sales'))).toBe(false);
    expect((await alertOf(driftKey('drift_unexpected', TARGET, employeeId, 'sales')))?.status).toBe('resolved');
  });

  it('a leaver’s locked account re-enabled behind the back (pwdAccountLockedTime removed) is drift_unexpected', async () => {
    const employeeId = uniqueEmployeeId('RE');
    await hireAndLeave(employeeId);
    expect((await engine.connector.readAccount(employeeId))?.enabled).toBe(false);
    // What an OpenLDAP 2.5 admin password reset does to the lock.
    await modify(userDn(employeeId), 'delete', 'pwdAccountLockedTime', []);
    expect((await engine.connector.readAccount(employeeId))?.enabled).toBe(true);

    const result = await reconcile();
    expect(result.counts.drift_unexpected).toBeGreaterThanOrEqual(1);
    const key = driftKey('drift_unexpected', TARGET, employeeId, 'directory-account');
    expect(await alertOf(key)).toMatchObject({ kind: 'drift_unexpected', status: 'open', severity: 'critical' });
    expect((await alertOf(key))!.details).toMatchObject({ employeeId, aspect: 'enabled' });

    // Locked again by hand: the finding is gone and its alert resolves at the next run.
    await modify(userDn(employeeId), 'add', 'pwdAccountLockedTime', ['000001010000Z']);
    const after = await reconcile();
    expect(after.counts.drift_unexpected).toBe(0);
    expect((await alertOf(key))?.status).toBe('resolved');
  });

  it('a second run with nothing changed raises nothing new, and every run is recorded', async () => {
    const first = await reconcile();
    const openBefore = await engine.db.select().from(alerts).where(eq(alerts.status, 'open'));
    const second = await reconcile();
    expect(second.error).toBeUndefined();
    expect(second.counts).toMatchObject({ drift_missing: first.counts.drift_missing, drift_unexpected: first.counts.drift_unexpected, resolved: 0 });
    expect(second.counts.drift_missing + second.counts.drift_unexpected).toBe(0);
    expect(second.counts.accounts).toBeGreaterThanOrEqual(3);
    expect(second.counts.groups).toBeGreaterThanOrEqual(1);
    expect(await engine.db.select().from(alerts).where(eq(alerts.status, 'open'))).toHaveLength(openBefore.length);
    const runs = await engine.db.select().from(reconcileRuns).where(eq(reconcileRuns.id, second.runId));
    expect(runs[0]).toMatchObject({ target: TARGET, error: null, counts: second.counts });
    expect(runs[0]!.finishedAt).toBeInstanceOf(Date);
  });

  it('the reconcile workflow (what the Schedule and jml reconcile start) runs through the connector the worker uses, the pausable one', async () => {
    const handle = await engine.client.workflow.start('reconcile', { workflowId: `reconcile-now:${Date.now()}`, taskQueue: engine.taskQueue, args: [{ target: TARGET }] });
    const results = (await handle.result()) as Array<{ target: string; error?: string | null }>;
    expect(results).toHaveLength(1);
    expect(results[0]).toMatchObject({ target: TARGET });
    expect(results[0]?.error ?? null).toBeNull();
    await saveHistory(engine.client, handle.workflowId, 'reconcile');
  });

  it('GET /api/v1/reconcile/runs lists the runs newest first, a page at a time, to alerts:write or identities:read', async () => {
    const app = await buildTestApp(engine);
    try {
      const { token: reader } = await createApiToken(engine.db, { name: uniqueName('reader'), scopes: ['identities:read'] });
      const { token: outsider } = await createApiToken(engine.db, { name: uniqueName('feed'), scopes: ['events:write'] });
      const latest = await reconcile();
      const get = (url: string, token: string) => app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}` } });
      expect((await get('/api/v1/reconcile/runs', outsider)).statusCode).toBe(403);
      const first = await get('/api/v1/reconcile/runs?limit=2', reader);
      expect(first.statusCode).toBe(200);
      const page = first.json() as { items: Array<{ id: string; target: string; startedAt: string; counts: Record<string, number>; error: string | null }>; nextCursor: string | null };
      expect(page.items).toHaveLength(2);
      expect(page.items[0]).toMatchObject({ id: latest.runId, target: TARGET, error: null, counts: latest.counts });
      expect(page.nextCursor).toBeTruthy();
      const all = await engine.db.select({ id: reconcileRuns.id }).from(reconcileRuns);
      const seen = new Set(page.items.map((r) => r.id));
      for (let cursor = page.nextCursor; cursor; ) {
        const next = (await get(`/api/v1/reconcile/runs?limit=2&cursor=${cursor}`, reader)).json() as typeof page;
        for (const run of next.items) seen.add(run.id);
        cursor = next.nextCursor;
      }
      expect(seen.size).toBe(all.length);
      expect((await get('/api/v1/reconcile/runs?cursor=nonsense!', reader)).statusCode).toBe(400);
    } finally {
      await app.close();
    }
  });
});
