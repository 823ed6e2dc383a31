// The engine against a SCIM 2.0 target it did not write: an HTTP server in this file that hands
// every SCIM request to the `scimmy` library's resources (test/support/scim-server.ts), reached
// with OAuth 2.0 client credentials. A joiner, a mover and a leaver run end to end; the server
// then throttles (429 + Retry-After), drops changes while answering 200, and goes down, and each
// failure ends where the issue says: retried after Retry-After, grant_unverified, grant_stuck
// then grant_failed and, once back, active with the alerts resolved. Reconcile lists it too.
import { and, eq } from 'drizzle-orm';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createReconcileActivities, driftKey } from '../../activities/reconcile.js';
import { alerts, auditLog, grants, identities } from '../../db/schema.js';
import { parseConfig } from '../../domain/config.js';
import { canonicalEmployeeId } from '../../domain/employee-id.js';
import { eventually, startTestEngine, type TestEngine } from '../support/engine.js';
import { uniqueEmployeeId } from '../support/env.js';
import { startScimServer, type ScimTestServer } from '../support/scim-server.js';
import { startSmtpCapture, type SmtpCapture } from '../support/smtp.js';
import { emailOf, startElevation, statuses } from '../support/requests.js';

const TARGET = 'saas';
let scim: ScimTestServer;
let smtp: SmtpCapture;
let engine: TestEngine;
let engineering: string;
let sales: string;
let finance: string;

beforeAll(async () => {
  scim = await startScimServer();
  smtp = await startSmtpCapture();
  engineering = scim.createGroup('Engineering');
  sales = scim.createGroup('Sales');
  finance = scim.createGroup('Finance');
  const config = parseConfig({
    targets: [
      {
        id: TARGET,
        type: 'scim',
        url: scim.url,
        auth: { type: 'oauth2', tokenUrl: scim.oauth.tokenUrl, clientId: scim.oauth.clientId, clientSecret: scim.oauth.clientSecret },
        userName: 'email',
        pageSize: 3,
      },
    ],
    entitlements: [
      { id: 'saas-account', target: TARGET, kind: 'account' },
      { id: 'saas-engineering', target: TARGET, kind: 'group', ref: engineering },
      { id: 'saas-sales', target: TARGET, kind: 'group', ref: sales },
      { id: 'saas-finance', target: TARGET, kind: 'group', ref: finance, jit: { eligible: true, maxDuration: '1h', approval: 'none' } },
    ],
    birthright: [
      { name: 'everyone', grant: ['saas-account'] },
      { name: 'engineering', when: { department: 'Engineering' }, grant: ['saas-engineering'] },
      { name: 'sales', when: { department: 'Sales' }, grant: ['saas-sales'] },
    ],
    lifecycle: { grantSla: '3s' },
    // About ten seconds of retries per attempt: past the SLA, short of a long test.
    retries: { initialInterval: '500ms', maximumInterval: '1s', maximumAttempts: 10, afterFailure: { initialInterval: '1s', maximumInterval: '2s' } },
  });
  engine = await startTestEngine({ config, watchdog: true, smtpUrl: smtp.url });
}, 120_000);
afterAll(async () => {
  await engine?.stop();
  await scim?.stop();
  await smtp?.stop();
});

const alertOf = async (dedupeKey: string) => (await engine.db.select().from(alerts).where(eq(alerts.dedupeKey, dedupeKey)))[0];

/** The person's grant of an entitlement: the live one if there is one, else the newest. */
async function grantOf(employeeId: string, entitlementId: string) {
  const rows = await engine.db
    .select({ id: grants.id, status: grants.status })
    .from(grants)
    .innerJoin(identities, eq(identities.id, grants.identityId))
    .where(and(eq(identities.employeeId, canonicalEmployeeId(employeeId)), eq(grants.entitlementId, entitlementId)));
  return rows.find((r) => r.status !== 'revoked') ?? rows.at(-1);
}
const statusOf = async (employeeId: string, entitlementId: string) => (await grantOf(employeeId, entitlementId))?.status;

/** The person's SCIM user, as the server stores it (found by its externalId). */
const userOf = (employeeId: string) => scim.users().find((u) => u.externalId === employeeId);
const memberIds = (groupId: string) => ((scim.group(groupId)?.members ?? []) as Array<{ value: string }>).map((m) => m.value);
const ENTERPRISE = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';

async function hire(employeeId: string, department = 'Engineering'): Promise<void> {
  await engine.submit({ type: 'hire', employeeId, attributes: { givenName: 'Scim', familyName: employeeId, email: emailOf(employeeId), department, title: 'Engineer', employmentType: 'employee' } });
  await eventually(async () => (await statusOf(employeeId, 'saas-account')) === 'active' && (await statusOf(employeeId, department === 'Sales' ? 'saas-sales' : 'saas-engineering')) === 'active', 30_000);
}

describe('a SCIM target', () => {
  it('a joiner, a mover and a leaver run end to end: user created, groups changed, deactivated; every step proven', async () => {
    const employeeId = uniqueEmployeeId('SJ');
    await hire(employeeId);
    const user = userOf(employeeId)!;
    expect(user).toMatchObject({ userName: emailOf(employeeId), externalId: employeeId, active: true, name: { givenName: 'Scim', familyName: employeeId } });
    expect(user[ENTERPRISE]).toMatchObject({ employeeNumber: employeeId, department: 'Engineering' });
    expect(memberIds(engineering)).toContain(user.id);
    // Every call carried a request id of ours.
    expect(scim.calls.length).toBeGreaterThan(0);
    expect(scim.calls.every((c) => typeof c.requestId === 'string' && c.requestId.length > 0)).toBe(true);

    // Mover: Engineering -> Sales. The old group goes, the new one comes, the user's attributes follow.
    await engine.submit({ type: 'update', employeeId, attributes: { department: 'Sales', title: 'Account Executive' } });
    await eventually(async () => (await statusOf(employeeId, 'saas-sales')) === 'active' && (await statusOf(employeeId, 'saas-engineering')) === 'revoked', 30_000);
    expect(memberIds(sales)).toContain(user.id);
    expect(memberIds(engineering)).not.toContain(user.id);
    await eventually(async () => userOf(employeeId)?.[ENTERPRISE]?.department === 'Sales' && userOf(employeeId)?.title === 'Account Executive', 20_000);

    // Leaver: deactivated (not deleted: that comes after the retention period), out of every group.
    await engine.submit({ type: 'terminate', employeeId });
    await eventually(async () => (await statusOf(employeeId, 'saas-account')) === 'revoked' && (await statusOf(employeeId, 'saas-sales')) === 'revoked', 30_000);
    expect(userOf(employeeId)).toMatchObject({ id: user.id, active: false });
    expect(memberIds(sales)).not.toContain(user.id);
  });

  it('answering 429 with Retry-After: the call is tried again only after the time it asked for, and the grant ends active', async () => {
    const employeeId = uniqueEmployeeId('ST');
    scim.setMode('throttle', { retryAfterSeconds: 2, times: 2 });
    const from = scim.calls.length;
    await hire(employeeId);
    const calls = scim.calls.slice(from);
    const throttled = calls.filter((c) => c.status === 429);
    expect(throttled).toHaveLength(2);
    // The first call answered after each 429 came at least Retry-After later (the server's own clock).
    for (const refusal of throttled) {
      const next = calls.find((c) => c.at > refusal.at && c.status !== 429) ?? calls.find((c) => c.at > refusal.at);
      expect(next).toBeDefined();
      expect(next!.at - refusal.at).toBeGreaterThanOrEqual(1_900);
    }
    expect(userOf(employeeId)?.active).toBe(true);
  });

  it('a server that answers 200 but drops the change gives grant_unverified within seconds; fixed, the grant ends active and the alert resolves', async () => {
    const employeeId = uniqueEmployeeId('SD');
    await hire(employeeId);
    scim.setMode('drop');
    let dropping = true;
    try {
      const requestId = await startElevation(engine, { employeeId, entitlementId: 'saas-finance', durationMs: 3_600_000 });
      const grantId = await eventually(async () => (await statuses(engine, requestId)).grant?.id, 20_000);
      const unverified = await eventually(async () => {
        const alert = await alertOf(`grant_unverified:${grantId}`);
        return alert?.status === 'open' && alert;
      }, 30_000);
      expect(unverified).toMatchObject({ kind: 'grant_unverified' });
      expect(memberIds(finance)).not.toContain(userOf(employeeId)!.id);
      // The requester is told the access is not in place, never that it is done.
      const mail = await smtp.waitFor((m) => m.to.includes(emailOf(employeeId)) && /not in place yet/.test(m.subject ?? ''), 20_000);
      expect(mail.subject).toContain('saas-finance');

      scim.setMode('normal');
      dropping = false;
      await eventually(async () => (await statuses(engine, requestId)).grantStatus === 'active', 30_000);
      expect(memberIds(finance)).toContain(userOf(employeeId)!.id);
      await eventually(async () => (await alertOf(`grant_unverified:${grantId}`))?.status === 'resolved', 20_000);
      // One problem, one alert: counted, not repeated.
      const rows = (await engine.db.select().from(alerts).where(eq(alerts.kind, 'grant_unverified'))).filter((a) => (a.details as { grantId?: string }).grantId === grantId);
      expect(rows).toHaveLength(1);
    } finally {
      if (dropping) scim.setMode('normal');
    }
  });

  it('a server down long enough gives grant_stuck, then grant_failed; back up, the grant ends active and both alerts resolve', async () => {
    const employeeId = uniqueEmployeeId('SO');
    await hire(employeeId);
    await scim.down();
    let up = false;
    try {
      const requestId = await startElevation(engine, { employeeId, entitlementId: 'saas-finance', durationMs: 3_600_000 });
      const grantId = await eventually(async () => (await statuses(engine, requestId)).grant?.id, 20_000);
      const stuck = await eventually(async () => {
        const alert = await alertOf(`grant_stuck:${grantId}`);
        return alert?.status === 'open' && alert;
      }, 30_000);
      expect(stuck.details).toMatchObject({ grantId, employeeId, entitlementId: 'saas-finance', target: TARGET });
      expect((stuck.details as { lastError: string | null }).lastError).toBeTruthy();
      await eventually(async () => (await alertOf(`grant_failed:${grantId}`))?.status === 'open', 60_000);
      await eventually(async () => (await alertOf(`grant_stuck:${grantId}`))?.status === 'resolved', 20_000);

      await scim.up();
      up = true;
      await eventually(async () => (await statuses(engine, requestId)).grantStatus === 'active', 60_000);
      await eventually(async () => (await alertOf(`grant_failed:${grantId}`))?.status === 'resolved', 20_000);
      expect(memberIds(finance)).toContain(userOf(employeeId)!.id);
    } finally {
      if (!up) await scim.up();
    }
  });

  it('reconcile pages through /Users and /Groups: a member removed behind the back is drift_missing and repaired; a group added by hand to a leaver is drift_unexpected', async () => {
    const reconcile = (repair = false) =>
      createReconcileActivities({ db: engine.db, config: engine.config, connectors: engine.connectors, logger: pino({ level: 'silent' }) }).reconcileTarget({ target: TARGET, repair });
    const stays = uniqueEmployeeId('SR');
    const leaves = uniqueEmployeeId('SL');
    await hire(stays);
    await hire(leaves);
    await engine.submit({ type: 'terminate', employeeId: leaves });
    await eventually(async () => (await statusOf(leaves, 'saas-account')) === 'revoked' && (await statusOf(leaves, 'saas-engineering')) === 'revoked', 30_000);
    const clean = await reconcile();
    expect(clean.error).toBeUndefined();

    scim.removeMember(engineering, userOf(stays)!.id);
    scim.addMember(sales, userOf(leaves)!.id);
    const found = await reconcile();
    expect(found.error).toBeUndefined();
    // Several pages of three were read (every hire of this file is a user).
    expect(found.counts.accounts).toBeGreaterThanOrEqual(scim.users().length);
    const missing = driftKey('drift_missing', TARGET, stays, 'saas-engineering');
    const unexpected = driftKey('drift_unexpected', TARGET, leaves, 'saas-sales');
    expect(await alertOf(missing)).toMatchObject({ kind: 'drift_missing', status: 'open' });
    expect(await alertOf(unexpected)).toMatchObject({ kind: 'drift_unexpected', status: 'open' });

    const repaired = await reconcile(true);
    expect(repaired.counts).toMatchObject({ repairFailed: 0 });
    expect(repaired.counts.repaired).toBeGreaterThanOrEqual(2);
    expect(memberIds(engineering)).toContain(userOf(stays)!.id);
    expect(memberIds(sales)).not.toContain(userOf(leaves)!.id);
    expect((await alertOf(missing))?.status).toBe('resolved');
    expect((await alertOf(unexpected))?.status).toBe('resolved');
    const audit = await engine.db.select().from(auditLog).where(and(eq(auditLog.action, 'reconcile.repaired'), eq(auditLog.subjectId, stays)));
    expect(audit).toHaveLength(1);
  });
});
