// Verification that can fail: the grant activities (provision, verify, revoke, verify the
// revocation, mark failed) called directly against their own Postgres database, the run's
// slapd and a second slapd started here WITHOUT the memberof overlay, so nothing can be
// "proven" by memberOf. Every read-back must be able to say no, and every refused status
// move must be seen.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { and, eq, inArray } from 'drizzle-orm';
import { Attribute, Change, Client } from 'ldapts';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeConnectors, createConnectors } from '../../activities/connectors/index.js';
import type { Connector } from '../../activities/connectors/types.js';
import { INVALID_TRANSITION, NOT_VERIFIED, PERMANENT } from '../../activities/grants.js';
import { createMailer } from '../../services/mailer.js';
import { createActivities, type Activities } from '../../activities/index.js';
import { createDb, dropDatabase, ensureDatabase, runMigrations, type DbHandle } from '../../db/client.js';
import { syncEntitlements } from '../../db/entitlements.js';
import { alerts, auditLog, grants } from '../../db/schema.js';
import { parseConfig } from '../../domain/config.js';
import { isNotVerified } from '../../workflows/activity-failures.js';
import { canonicalEmployeeId } from '../../domain/employee-id.js';
import { startSlapd, type SlapdServer } from '../../scripts/slapd.js';
import { testEnv, uniqueName, type LdapServerInfo } from '../support/env.js';

let plain: SlapdServer;
let plainDir: string;
let databaseUrl: string;
let handle: DbHandle;
let connectors: Map<string, Connector>;
let activities: Activities;
const admins: Client[] = [];
let directoryAdmin: Client;
let plainAdmin: Client;

// Names unique to this file: the run's slapd is shared with other test files.
const BARE = uniqueName('bare-group');
const GHOST = uniqueName('ghost');
const STAFF = uniqueName('staff');

function target(id: string, ldap: LdapServerInfo) {
  const { url, bindDN, bindPassword, baseDN, usersDN, groupsDN } = ldap;
  return { id, type: 'ldap', url, bindDN, bindPassword, baseDN, usersDN, groupsDN };
}

async function adminOf(ldap: LdapServerInfo): Promise<Client> {
  const client = new Client({ url: ldap.url, timeout: 5_000 });
  await client.bind(ldap.bindDN, ldap.bindPassword);
  admins.push(client);
  return client;
}

beforeAll(async () => {
  plainDir = await mkdtemp(join(tmpdir(), 'jml-slapd-plain-'));
  plain = await startSlapd({ dir: plainDir, memberOf: false });
  const url = new URL(testEnv.databaseUrl);
  url.pathname = `${url.pathname}_verify_${Math.random().toString(36).slice(2, 8)}`;
  databaseUrl = url.toString();
  await ensureDatabase(databaseUrl);
  await runMigrations(databaseUrl);
  handle = createDb(databaseUrl, { max: 5 });

  const ldap = testEnv.ldap;
  const config = parseConfig({
    targets: [target('directory', ldap), target('plain', plain)],
    entitlements: [
      { id: 'directory-account', target: 'directory', kind: 'account' },
      { id: 'ghost', target: 'directory', kind: 'group', ref: `cn=${GHOST},${ldap.groupsDN}` },
      { id: 'staff', target: 'directory', kind: 'group', ref: `cn=${STAFF},${ldap.groupsDN}` },
      { id: 'plain-account', target: 'plain', kind: 'account' },
      { id: 'plain-staff', target: 'plain', kind: 'group', ref: `cn=${STAFF},${plain.groupsDN}` },
    ],
  });
  // Start-up refuses a bare ref (domain/config.ts); the connector refuses it too, should one
  // reach it some other way (an entitlement row from an older release, a hand-made config).
  config.entitlements.push({ ...config.entitlements.find((e) => e.id === 'ghost')!, id: 'bare', ref: BARE });
  await syncEntitlements(handle.db, config);
  connectors = createConnectors(config.targets);
  // No mail is sent by the grant activities these tests call: a mailer without SMTP_URL refuses any that would be.
  activities = createActivities({ db: handle.db, config, connectors, logger: pino({ level: 'silent' }), mailer: createMailer({ smtpUrl: undefined, from: config.mail.from }), publicUrl: 'https://jml.test' });
  directoryAdmin = await adminOf(ldap);
  plainAdmin = await adminOf(plain);
});

afterAll(async () => {
  await Promise.allSettled(admins.map((c) => c.unbind()));
  if (connectors) await closeConnectors(connectors);
  await handle?.close();
  if (databaseUrl) await dropDatabase(databaseUrl);
  await plain?.stop();
  if (plainDir) await rm(plainDir, { recursive: true, force: true });
});

/** A person (canonical id, as every input stores it) with pending grants of the given entitlements. */
async function personWith(entitlementIds: string[]) {
  const employeeId = canonicalEmployeeId(uniqueName('v'));
  const identity = await activities.upsertIdentity({
    employeeId,
    status: 'active',
    attributes: { givenName: 'Vera', familyName: 'Fied' },
    effectiveAt: new Date().toISOString(),
    eventId: uniqueName('evt'),
  });
  const planned = await activities.createBirthrightRequests({
    identityId: identity.id,
    eventId: uniqueName('evt'),
    items: entitlementIds.map((entitlementId) => ({ entitlementId, rules: ['test'] })),
  });
  const grant = Object.fromEntries(planned.map((g) => [g.entitlementId, g.grantId])) as Record<string, string>;
  return { employeeId, grant };
}

async function granted(grantId: string, options: { enabled?: boolean } = {}): Promise<void> {
  await activities.provisionGrant(grantId, options);
  await activities.verifyGrant(grantId, options);
}

async function row(grantId: string) {
  const [found] = await handle.db.select().from(grants).where(eq(grants.id, grantId));
  return found!;
}

/** The alerts of a grant's granting: grant_failed and grant_unverified. */
async function alertsFor(grantId: string) {
  return handle.db.select().from(alerts).where(inArray(alerts.dedupeKey, [`grant_failed:${grantId}`, `grant_unverified:${grantId}`]));
}

async function exists(client: Client, dn: string): Promise<boolean> {
  try {
    await client.search(dn, { scope: 'base', attributes: ['1.1'] });
    return true;
  } catch (err) {
    if ((err as { code?: number }).code === 32) return false;
    throw err;
  }
}

const member = (operation: 'add' | 'delete', dn: string) => new Change({ operation, modification: new Attribute({ type: 'member', values: [dn] }) });
const lock = (operation: 'replace' | 'delete') =>
  new Change({ operation, modification: new Attribute({ type: 'pwdAccountLockedTime', values: operation === 'replace' ? ['000001010000Z'] : [] }) });

describe('group read-back is the group entry\'s own member values', () => {
  it('a group grant is proven by the group entry where the directory has no memberOf, and only while it lists the account', async () => {
    const { employeeId, grant } = await personWith(['plain-account', 'plain-staff']);
    const group = `cn=${STAFF},${plain.groupsDN}`;
    await granted(grant['plain-account']!);
    await activities.provisionGrant(grant['plain-staff']!);
    await connectors.get('plain')!.removeFromGroup(employeeId, group); // gone again behind the grant's back
    await expect(activities.verifyGrant(grant['plain-staff']!)).rejects.toMatchObject({ type: NOT_VERIFIED, message: expect.stringContaining(group) });
    await activities.provisionGrant(grant['plain-staff']!);
    await activities.verifyGrant(grant['plain-staff']!);
    expect(await row(grant['plain-staff']!)).toMatchObject({ status: 'active', verifiedAt: expect.any(Date) });
  });

  it('a revocation whose membership is still in the group is not verified, where the directory has no memberOf', async () => {
    const { employeeId, grant } = await personWith(['plain-account', 'plain-staff']);
    const group = `cn=${STAFF},${plain.groupsDN}`;
    await granted(grant['plain-account']!);
    await activities.provisionGrant(grant['plain-staff']!);
    await activities.revokeGrant(grant['plain-staff']!, 'mover');
    // The directory said yes, but the value is there again (a sync job, a lagging replica).
    const accountDn = `uid=${employeeId},${plain.usersDN}`;
    await plainAdmin.modify(group, member('add', accountDn));
    await expect(activities.verifyRevoked(grant['plain-staff']!)).rejects.toMatchObject({ type: NOT_VERIFIED, message: expect.stringContaining(group) });
    expect(await row(grant['plain-staff']!)).toMatchObject({ status: 'revoking', revokedAt: null });

    await plainAdmin.modify(group, member('delete', accountDn));
    await activities.verifyRevoked(grant['plain-staff']!);
    expect(await row(grant['plain-staff']!)).toMatchObject({ status: 'revoked', revokedAt: expect.any(Date) });
  });

  it('a revocation from a group that does not exist is proven: no entry, no member; granting into it is not', async () => {
    const { grant } = await personWith(['directory-account', 'ghost']);
    await granted(grant['directory-account']!);
    await activities.revokeGrant(grant.ghost!, 'leaver'); // removing from nothing succeeds
    await activities.verifyRevoked(grant.ghost!);
    expect(await row(grant.ghost!)).toMatchObject({ status: 'revoked', revokedAt: expect.any(Date) });
  });
});

describe('a group ref that is a bare name, not a DN', () => {
  it('fails on grant, and nothing is created for a guessed name', async () => {
    const { grant } = await personWith(['directory-account', 'bare']);
    await granted(grant['directory-account']!);
    await expect(activities.provisionGrant(grant.bare!)).rejects.toMatchObject({ type: PERMANENT, nonRetryable: true, message: expect.stringContaining('not a DN') });
    await expect(activities.verifyGrant(grant.bare!)).rejects.toMatchObject({ type: PERMANENT, nonRetryable: true });
    expect(await row(grant.bare!)).toMatchObject({ status: 'provisioning', verifiedAt: null, lastError: expect.stringContaining('not a DN') });
    expect(await exists(directoryAdmin, `cn=${BARE},${testEnv.ldap.groupsDN}`)).toBe(false);
  });

  it('fails on revoke, even while the person is in the group the name might mean', async () => {
    const { employeeId, grant } = await personWith(['directory-account', 'bare']);
    await granted(grant['directory-account']!);
    const guessed = `cn=${BARE},${testEnv.ldap.groupsDN}`;
    await connectors.get('directory')!.addToGroup(employeeId, guessed);

    await expect(activities.revokeGrant(grant.bare!, 'leaver')).rejects.toMatchObject({ type: PERMANENT, nonRetryable: true });
    await expect(activities.verifyRevoked(grant.bare!)).rejects.toMatchObject({ type: PERMANENT, nonRetryable: true });
    expect(await row(grant.bare!)).toMatchObject({ status: 'revoking', revokedAt: null });
    expect(await connectors.get('directory')!.isGroupMember(employeeId, guessed)).toBe(true);
  });
});

describe('account read-back holds the account to the state asked for', () => {
  it('an account asked disabled (pre-provisioned) but found enabled is not verified', async () => {
    const { employeeId, grant } = await personWith(['directory-account']);
    const dn = `uid=${employeeId},${testEnv.ldap.usersDN}`;
    await activities.provisionGrant(grant['directory-account']!, { enabled: false });
    await directoryAdmin.modify(dn, lock('delete')); // unlocked behind the engine's back
    await expect(activities.verifyGrant(grant['directory-account']!, { enabled: false })).rejects.toMatchObject({ type: NOT_VERIFIED, message: expect.stringContaining('account disabled (it is enabled)') });
    expect(await row(grant['directory-account']!)).toMatchObject({ status: 'provisioning', verifiedAt: null });

    await directoryAdmin.modify(dn, lock('replace'));
    await activities.verifyGrant(grant['directory-account']!, { enabled: false });
    expect(await row(grant['directory-account']!)).toMatchObject({ status: 'active', verifiedAt: expect.any(Date) });
  });

  it('an account asked enabled but found disabled is not verified', async () => {
    const { employeeId, grant } = await personWith(['directory-account']);
    const dn = `uid=${employeeId},${testEnv.ldap.usersDN}`;
    await activities.provisionGrant(grant['directory-account']!, { enabled: true });
    await directoryAdmin.modify(dn, lock('replace'));
    await expect(activities.verifyGrant(grant['directory-account']!, { enabled: true })).rejects.toMatchObject({ type: NOT_VERIFIED, message: expect.stringContaining('account enabled (it is disabled)') });
    expect(await row(grant['directory-account']!)).toMatchObject({ status: 'provisioning' });

    await directoryAdmin.modify(dn, lock('delete'));
    await activities.verifyGrant(grant['directory-account']!);
    expect(await row(grant['directory-account']!)).toMatchObject({ status: 'active' });
  });

  it('an account grant is not provisioned on an entry that is another person\'s', async () => {
    const { employeeId, grant } = await personWith(['directory-account']);
    const dn = `uid=${employeeId},${testEnv.ldap.usersDN}`;
    const someoneElse = canonicalEmployeeId(uniqueName('other'));
    await directoryAdmin.add(dn, { objectClass: ['inetOrgPerson'], uid: [employeeId, someoneElse], cn: 'Someone Else', sn: 'Else', title: 'Theirs' });

    await expect(activities.provisionGrant(grant['directory-account']!)).rejects.toMatchObject({ type: PERMANENT, nonRetryable: true, message: expect.stringContaining('is not the account of') });
    await expect(activities.verifyGrant(grant['directory-account']!)).rejects.toMatchObject({ type: PERMANENT, nonRetryable: true });
    expect(await row(grant['directory-account']!)).toMatchObject({ status: 'provisioning', lastError: expect.stringContaining('is not the account of') });
    const { searchEntries } = await directoryAdmin.search(dn, { scope: 'base', attributes: ['title', 'employeeNumber'] });
    expect(searchEntries[0]).toMatchObject({ title: 'Theirs', employeeNumber: [] }); // not stamped as ours
  });
});

describe('refused status moves are never silent', () => {
  it('"succeeded but not there": a grant the target took and the read-back does not find is grant_unverified, resolved once proven', async () => {
    const { employeeId, grant } = await personWith(['plain-account', 'plain-staff']);
    const group = `cn=${STAFF},${plain.groupsDN}`;
    await granted(grant['plain-account']!);
    await activities.provisionGrant(grant['plain-staff']!);
    await connectors.get('plain')!.removeFromGroup(employeeId, group); // the target "succeeded", and it is not there
    const failure = await activities.verifyGrant(grant['plain-staff']!).catch((err: unknown) => err);
    expect(isNotVerified({ cause: failure })).toBe(true);
    await activities.markGrantFailed(grant['plain-staff']!, (failure as Error).message, 'grant', true);
    expect(await alertsFor(grant['plain-staff']!)).toEqual([expect.objectContaining({ kind: 'grant_unverified', status: 'open', subject: expect.stringContaining('read-back does not find it') })]);
    await activities.provisionGrant(grant['plain-staff']!);
    await activities.verifyGrant(grant['plain-staff']!);
    expect(await alertsFor(grant['plain-staff']!)).toEqual([expect.objectContaining({ kind: 'grant_unverified', status: 'resolved' })]);
  });

  it('pending -> failed: a group whose account failed ends failed, with the error and an alert', async () => {
    const { grant } = await personWith(['directory-account', 'staff']);
    const staff = grant.staff!;
    await activities.markGrantFailed(staff, 'the directory account could not be provisioned');
    expect(await row(staff)).toMatchObject({ status: 'failed', lastError: 'the directory account could not be provisioned' });
    expect(await alertsFor(staff)).toEqual([
      expect.objectContaining({ kind: 'grant_failed', status: 'open', details: expect.objectContaining({ grantId: staff, grantStatus: 'failed' }) }),
    ]);
    const audit = await handle.db.select().from(auditLog).where(and(eq(auditLog.subjectId, staff), eq(auditLog.action, 'grant.failed')));
    expect(audit).toHaveLength(1);

    // Reported again (a retried activity): still failed, the latest error, still one alert.
    await activities.markGrantFailed(staff, 'reported again');
    expect(await row(staff)).toMatchObject({ status: 'failed', lastError: 'reported again' });
    expect(await alertsFor(staff)).toHaveLength(1);
  });

  it('a failure reported for a grant the machine cannot mark failed is still recorded and alerted', async () => {
    const { grant } = await personWith(['directory-account']);
    const account = grant['directory-account']!;
    await granted(account);
    await activities.markGrantFailed(account, 'a late failure report');
    expect(await row(account)).toMatchObject({ status: 'active', lastError: 'a late failure report' });
    const [refused] = await handle.db.select().from(auditLog).where(and(eq(auditLog.subjectId, account), eq(auditLog.action, 'grant.failure_refused')));
    expect(refused?.after).toMatchObject({ status: 'active', refused: 'active -> failed', lastError: 'a late failure report' });
    expect(await alertsFor(account)).toEqual([
      expect.objectContaining({ severity: 'critical', subject: expect.stringContaining('the grant is active and could not be marked failed'), details: expect.objectContaining({ grantStatus: 'active' }) }),
    ]);
  });

  it('verifyGrant refuses to make active a grant that was never provisioned', async () => {
    const { employeeId, grant } = await personWith(['directory-account']);
    await connectors.get('directory')!.ensureAccount({ employeeId, attributes: {}, enabled: true });
    await expect(activities.verifyGrant(grant['directory-account']!)).rejects.toMatchObject({ type: INVALID_TRANSITION, nonRetryable: true });
    expect(await row(grant['directory-account']!)).toMatchObject({ status: 'pending', verifiedAt: null });
  });
});
