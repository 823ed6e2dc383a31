// Reconciling a large directory: how long one reconcile of 10,000 identities against OpenLDAP
// takes, and how this process's memory grows with it.
//   npx tsx bench/reconcile.ts [--people 10000] [--drift 100]
// Starts its own slapd (temporary folder) and a fresh database jml_bench_reconcile_<random>,
// with a config like jml.config.example.yaml. Seeds, quickly and without the lifecycle:
//   - LDAP: --people inetOrgPerson accounts (adds in parallel batches), every one in all-staff
//     and in one of three department groups (each group added once with its member list);
//     every 100th account is locked (a leaver);
//   - Postgres: the identities, one request and one `active` grant per entitlement each
//     person holds (account, all-staff, department), leavers' grants `revoked`; rows in chunks.
// Then --drift memberships are removed from the directory (drift_missing) and --drift added
// (drift_unexpected), and one reconcile runs, in this process, through the reconcile activity
// and the real LDAP connector (paged results): the part whose cost grows with the directory.
// Temporal is not needed to measure it (the workflow only calls this activity per target).
// Prints the seeding time, the reconcile's duration and counts, and RSS and heap before,
// after and at their peak (sampled every 20 ms). Exit 1 when the counts are not the drift
// made, 2 when the bench itself failed. Everything it started is stopped and dropped.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Attribute, Change, Client as LdapClient } from 'ldapts';
import { pino } from 'pino';
import { createLdapConnector, PERMANENT_LOCK } from '../activities/connectors/ldap.js';
import { createReconcileActivities } from '../activities/reconcile.js';
import { createDb, dropDatabase, ensureDatabase, runMigrations } from '../db/client.js';
import { syncEntitlements } from '../db/entitlements.js';
import { accessRequests, grants, identities } from '../db/schema.js';
import { startSlapd, type SlapdServer } from '../scripts/slapd.js';
import { loadConfig } from '../services/config.js';
import { benchResources, cleanupStep, guardBench, runBench, writeBenchConfig } from './support.js';

const { values: args } = parseArgs({ options: { people: { type: 'string', default: '10000' }, drift: { type: 'string', default: '100' } } });
const people = Number(args.people);
const drift = Number(args.drift);
if (!Number.isInteger(people) || people < 10 || !Number.isInteger(drift) || drift < 0 || drift * 3 > people) {
  console.error('usage: bench/reconcile.ts [--people N>=10] [--drift M, at most N/3]');
  process.exit(2);
}

const resources = benchResources('reconcile');
const tmp = mkdtempSync(join(tmpdir(), 'jml-bench-reconcile-'));
const DEPARTMENTS = ['engineering', 'sales', 'employees'] as const;
const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
const chunks = <T>(list: T[], size: number) => Array.from({ length: Math.ceil(list.length / size) }, (_, i) => list.slice(i * size, (i + 1) * size));

let slapd: SlapdServer | undefined;
let database: ReturnType<typeof createDb> | undefined;
let admin: LdapClient | undefined;
let connector: ReturnType<typeof createLdapConnector> | undefined;

async function cleanup(): Promise<void> {
  await cleanupStep('ldap connector', async () => connector?.close());
  await cleanupStep('ldap admin', async () => admin?.unbind());
  await cleanupStep('database pool', async () => database?.close());
  await cleanupStep('database', () => dropDatabase(resources.databaseUrl));
  await cleanupStep('slapd', async () => slapd?.stop());
  await cleanupStep('temporary folder', async () => rmSync(tmp, { recursive: true, force: true }));
}
guardBench(15 * 60_000, cleanup);

async function main(): Promise<boolean> {
  slapd = await startSlapd({ dir: join(tmp, 'slapd') });
  const configFile = join(tmp, 'jml.config.yaml');
  writeBenchConfig(configFile, slapd);
  const config = loadConfig(configFile, { ...process.env, JML_WEBHOOK_SECRET: 'whsec_' + Buffer.from('bench-reconcile-secret-0123456789').toString('base64'), LDAP_BIND_PASSWORD: slapd.bindPassword });
  const target = config.targets[0]!;
  if (target.type !== 'ldap') throw new Error('bench/reconcile.ts reconciles an LDAP target');
  await ensureDatabase(resources.databaseUrl);
  await runMigrations(resources.databaseUrl);
  database = createDb(resources.databaseUrl, { max: 5 });
  const { db } = database;
  await syncEntitlements(db, config);
  const groupDn = (cn: string) => `cn=${cn},${slapd!.groupsDN}`;
  const userDn = (id: string) => `uid=${id},${slapd!.usersDN}`;

  // --- seed ---------------------------------------------------------------------------------
  const seedStart = Date.now();
  const ids = Array.from({ length: people }, (_, i) => `B${String(i).padStart(6, '0')}`);
  const departmentOf = (i: number) => DEPARTMENTS[i % DEPARTMENTS.length]!;
  const leaver = (i: number) => i % 100 === 99;
  admin = new LdapClient({ url: slapd.url });
  await admin.bind(slapd.bindDN, slapd.bindPassword);
  const ldap = admin;
  for (const batch of chunks(ids.map((id, i) => ({ id, i })), 200)) {
    await Promise.all(
      batch.map(({ id, i }) =>
        ldap.add(userDn(id), {
          objectClass: ['top', 'person', 'organizationalPerson', 'inetOrgPerson'],
          uid: id,
          cn: `Bench ${id}`,
          sn: id,
          employeeNumber: id,
          ...(leaver(i) ? { pwdAccountLockedTime: PERMANENT_LOCK } : {}),
        }),
      ),
    );
  }
  const current = ids.filter((_, i) => !leaver(i));
  await ldap.add(groupDn('all-staff'), { objectClass: ['top', 'groupOfNames'], cn: 'all-staff', member: current.map(userDn) });
  for (const department of DEPARTMENTS) {
    const members = ids.filter((_, i) => !leaver(i) && departmentOf(i) === department).map(userDn);
    await ldap.add(groupDn(department), { objectClass: ['top', 'groupOfNames'], cn: department, member: members });
  }
  const ldapSeeded = Date.now();

  const identityRows = await Promise.all(
    chunks(ids, 1_000).map((chunk) =>
      db
        .insert(identities)
        .values(chunk.map((employeeId) => ({ employeeId, status: leaver(ids.indexOf(employeeId)) ? 'terminated' : 'active', attributes: { givenName: 'Bench', familyName: employeeId } })))
        .returning({ id: identities.id, employeeId: identities.employeeId }),
    ),
  );
  const identityId = new Map(identityRows.flat().map((r) => [r.employeeId, r.id]));
  const held = ids.flatMap((employeeId, i) => ['directory-account', 'all-staff', departmentOf(i)].map((entitlementId) => ({ employeeId, entitlementId, revoked: leaver(i) })));
  for (const chunk of chunks(held, 1_000)) {
    const requests = await db
      .insert(accessRequests)
      .values(chunk.map((h) => ({ idempotencyKey: `bench:${h.employeeId}:${h.entitlementId}`, identityId: identityId.get(h.employeeId)!, entitlementId: h.entitlementId, kind: 'birthright', status: 'auto_approved', requestedBy: 'engine' })))
      .returning({ id: accessRequests.id });
    await db.insert(grants).values(
      chunk.map((h, i) => ({
        identityId: identityId.get(h.employeeId)!,
        entitlementId: h.entitlementId,
        requestId: requests[i]!.id,
        status: h.revoked ? 'revoked' : 'active',
        verifiedAt: new Date(),
        ...(h.revoked ? { revokedAt: new Date(), revokeReason: 'leaver' } : {}),
      })),
    );
  }
  const dbSeeded = Date.now();

  // --- drift, behind the engine's back -------------------------------------------------------
  const engineering = ids.filter((_, i) => !leaver(i) && departmentOf(i) === 'engineering');
  const removed = engineering.slice(0, drift);
  const added = ids.filter((_, i) => !leaver(i) && departmentOf(i) === 'sales').slice(0, drift);
  if (removed.length) await ldap.modify(groupDn('engineering'), new Change({ operation: 'delete', modification: new Attribute({ type: 'member', values: removed.map(userDn) }) }));
  if (added.length) await ldap.modify(groupDn('engineering'), new Change({ operation: 'add', modification: new Attribute({ type: 'member', values: added.map(userDn) }) }));
  console.log(`seeded ${people} identities (${ids.filter((_, i) => leaver(i)).length} leavers), ${held.length} grants: LDAP ${((ldapSeeded - seedStart) / 1000).toFixed(1)} s, Postgres ${((dbSeeded - ldapSeeded) / 1000).toFixed(1)} s; drift made: ${removed.length} missing, ${added.length} unexpected`);

  // --- one reconcile ------------------------------------------------------------------------------
  connector = createLdapConnector({ ...target, url: slapd.url });
  const activities = createReconcileActivities({ db, config, connectors: new Map([[target.id, connector]]), logger: pino({ level: 'silent' }) });
  global.gc?.();
  const before = process.memoryUsage();
  let peakRss = before.rss;
  let peakHeap = before.heapUsed;
  const sampler = setInterval(() => {
    const now = process.memoryUsage();
    peakRss = Math.max(peakRss, now.rss);
    peakHeap = Math.max(peakHeap, now.heapUsed);
  }, 20);
  const started = performance.now();
  const result = await activities.reconcileTarget({ target: target.id, repair: false });
  const wall = performance.now() - started;
  clearInterval(sampler);
  const after = process.memoryUsage();
  peakRss = Math.max(peakRss, after.rss);
  peakHeap = Math.max(peakHeap, after.heapUsed);

  const c = result.counts;
  console.log(`reconcile of ${people} identities: ${(wall / 1000).toFixed(2)} s (activity says ${c.durationMs} ms); ${c.accounts} accounts, ${c.groups} groups listed`);
  console.log(`found: ${c.drift_missing} drift_missing, ${c.drift_unexpected} drift_unexpected${result.error ? `; error: ${result.error}` : ''}`);
  console.log(`RSS: ${mb(before.rss)} before, ${mb(after.rss)} after, ${mb(peakRss)} peak (+${mb(peakRss - before.rss)}); heap used: ${mb(before.heapUsed)} before, ${mb(after.heapUsed)} after, ${mb(peakHeap)} peak`);
  const ok = !result.error && c.drift_missing === removed.length && c.drift_unexpected === added.length && c.accounts === people;
  if (!ok) console.error(`expected ${removed.length} missing, ${added.length} unexpected and ${people} accounts`);
  return ok;
}

void runBench(main, cleanup);
