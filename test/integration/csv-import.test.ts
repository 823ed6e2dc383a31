// CSV snapshot import end to end, on a whole engine with its own database: the HR sample
// extract of 1000 records ends with every active worker provisioned in OpenLDAP; importing
// it again stores nothing; a full snapshot that drops 30% of the workers is held by the
// mass-leaver brake and nobody is disabled. Also the import API: dry run, bad header.
import { readFileSync, createReadStream } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { parse } from 'csv-parse/sync';
import { and, count, eq, inArray, notInArray } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { Client, EqualityFilter, OrFilter } from 'ldapts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../api/app.js';
import { createApiToken } from '../../api/auth.js';
import { createMetricsRegistry } from '../../api/metrics.js';
import { discardBatch } from '../../services/feeds.js';
import { alerts, grants, hrBatches, hrEvents, identities } from '../../db/schema.js';
import { importCsv } from '../../services/csv-import.js';
import { eventually, startTestEngine, type TestEngine } from '../support/engine.js';
import { testConfig } from '../support/config.js';
import { testEnv } from '../support/env.js';

const SAMPLES = path.resolve(import.meta.dirname, '../../../shared/data/hr-samples');
const FILE = path.join(SAMPLES, 'csv-with-1000-records.csv');
const text = readFileSync(FILE, 'utf8');
const records = parse(text, { columns: true, skip_empty_lines: true }) as Array<Record<string, string>>;

// What the file says, worked out here independently of the importer: an id on one row is
// one person; an id on several rows names several people (the sample has many), and the
// importer refuses those rows rather than give one of them the other's account.
const rowsPerId = new Map<string, number>();
for (const r of records) rowsPerId.set(r.WorkerID!, (rowsPerId.get(r.WorkerID!) ?? 0) + 1);
const unique = records.filter((r) => rowsPerId.get(r.WorkerID!) === 1);
const activeWorkers = unique.filter((r) => r.WorkerStatus === 'Active');
const activeIds = activeWorkers.map((r) => r.WorkerID!).sort();
const onLeaveIds = new Set(activeWorkers.filter((r) => r.OnLeave === 'True').map((r) => r.WorkerID!));
const refusedRows = records.length - unique.length;

let engine: TestEngine;
let app: FastifyInstance;
let token: string;
let ldap: Client;

beforeAll(async () => {
  // testConfig's birthright rules fit the sample: everyone gets an account and all-staff;
  // WorkerType Employee / Contractor and the Sales and Product Engineering departments
  // get their groups (matching is case-insensitive).
  engine = await startTestEngine({ config: testConfig(testEnv.ldap, { brake: { maxTerminations: 25, maxShare: 0.05, minTerminations: 5, window: '15m' } }) });
  app = await buildApp({
    db: engine.db,
    hrEventQueue: engine.queue,
    webhookSecrets: [],
    config: engine.config,
    publicUrl: 'https://jml.test',
    health: { redis: async () => {}, temporal: async () => {} },
    logger: false,
    metrics: createMetricsRegistry({ defaultMetrics: false }),
  });
  ({ token } = await createApiToken(engine.db, { name: `importer-${randomBytes(3).toString('hex')}`, scopes: ['events:write'] }));
  ldap = new Client({ url: testEnv.ldap.url });
  await ldap.bind(testEnv.ldap.bindDN, testEnv.ldap.bindPassword);
});

afterAll(async () => {
  await ldap?.unbind().catch(() => undefined);
  await app?.close();
  await engine?.stop();
});

/** uids present under usersDN, among `ids` (the slapd is shared: only this file's people count). */
async function ldapUids(ids: readonly string[]): Promise<Set<string>> {
  const found = new Set<string>();
  for (let i = 0; i < ids.length; i += 50) {
    const filter = new OrFilter({ filters: ids.slice(i, i + 50).map((id) => new EqualityFilter({ attribute: 'uid', value: id })) });
    const { searchEntries } = await ldap.search(testEnv.ldap.usersDN, { scope: 'one', filter, attributes: ['uid'] });
    for (const entry of searchEntries) found.add(String(entry.uid));
  }
  return found;
}

async function provisioned(ids: readonly string[]): Promise<number> {
  const [row] = await engine.db
    .select({ n: count() })
    .from(grants)
    .innerJoin(identities, eq(identities.id, grants.identityId))
    .where(and(inArray(identities.employeeId, [...ids]), eq(grants.entitlementId, 'directory-account'), eq(grants.status, 'active')));
  return row!.n;
}

async function unsettledEvents(): Promise<number> {
  const [row] = await engine.db.select({ n: count() }).from(hrEvents).where(notInArray(hrEvents.status, ['applied', 'ignored', 'held', 'rejected']));
  return row!.n;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('importing the 1000-record HR sample', () => {
  it('provisions every active worker in OpenLDAP', { timeout: 240_000 }, async () => {
    expect(activeIds.length).toBeGreaterThan(100);
    const started = Date.now();
    const result = await importCsv(engine, createReadStream(FILE), { actor: 'test' });
    const stored = Date.now() - started;

    expect(result).toMatchObject({ rows: records.length, dryRun: false, batchStatus: 'accepted', stored: activeIds.length + onLeaveIds.size });
    expect(result.counts).toMatchObject({ hire: activeIds.length, leave_start: onLeaveIds.size, update: 0, terminate: 0, rehire: 0 });
    expect(result.errors).toHaveLength(refusedRows);
    expect(result.skippedInactive).toBe(unique.length - activeWorkers.length);

    await eventually(async () => (await provisioned(activeIds)) === activeIds.length || undefined, 200_000, 1_000);
    const allProvisioned = Date.now() - started;
    const inLdap = await ldapUids(activeIds);
    expect(activeIds.filter((id) => !inLdap.has(id))).toEqual([]);
    console.log(
      `[csv-import] ${records.length} rows -> ${activeIds.length} hires (+${onLeaveIds.size} leaves): stored in ${stored} ms, ` +
        `every account active and verified after ${(allProvisioned / 1000).toFixed(1)} s`,
    );

    // The people on leave were hired, then their leave began: accounts kept, locked.
    await eventually(async () => (await unsettledEvents()) === 0 || undefined, 60_000, 500);
    const people = await engine.db.select({ employeeId: identities.employeeId, status: identities.status }).from(identities).where(inArray(identities.employeeId, activeIds));
    expect(people.filter((p) => p.status !== (onLeaveIds.has(p.employeeId) ? 'on_leave' : 'active'))).toEqual([]);
  });

  it('stores nothing new when the same file is imported again', async () => {
    const again = await importCsv(engine, createReadStream(FILE), { actor: 'test' });
    expect(again.stored).toBe(0);
    expect(again.batchId).toBeNull();
    expect(Object.values(again.counts).every((n) => n === 0)).toBe(true);
    expect(again.unchanged).toBe(activeWorkers.length);
  });

  it('holds a full snapshot that drops 30% of the workers, and disables nobody', { timeout: 60_000 }, async () => {
    const dropped = activeIds.filter((_, i) => i % 10 < 3);
    const droppedSet = new Set(dropped);
    // The sample is one record per line, without quotes: drop lines by their first field.
    const snapshot = text
      .split('\n')
      .filter((line, i) => i === 0 || !droppedSet.has(line.split(',')[0]!))
      .join('\n');

    // The dry run says what would happen, the brake included, and changes nothing.
    const dry = await app.inject({
      method: 'POST',
      url: '/api/v1/hr/imports?fullSnapshot=true&dryRun=true',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'text/csv' },
      payload: snapshot,
    });
    expect(dry.statusCode).toBe(200);
    const plan = dry.json() as { brake: unknown; counts: Record<string, number>; plan: Array<{ employeeId: string; line: number | null; revoke: Array<{ entitlementId: string }> }> };
    expect(plan.brake).toEqual({ terminations: dropped.length, activeIdentities: activeIds.length, wouldHold: true });
    const leaver = plan.plan.find((p) => p.employeeId === dropped[0]);
    expect(leaver).toMatchObject({ line: null, revoke: expect.arrayContaining([expect.objectContaining({ entitlementId: 'directory-account' })]) });
    expect(await engine.db.select().from(hrBatches).where(eq(hrBatches.status, 'held'))).toEqual([]);

    const response = await app.inject({
      method: 'POST',
      url: '/api/v1/hr/imports?fullSnapshot=true',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'text/csv' },
      payload: snapshot,
    });
    expect(response.statusCode).toBe(202);
    const body = response.json() as { batchId: string; batchStatus: string; batchUrl: string; counts: Record<string, number>; errors: unknown[] };
    expect(body).toMatchObject({ batchStatus: 'held', counts: { terminate: dropped.length, hire: 0, update: 0 } });
    expect(body.batchUrl).toBe(`https://jml.test/api/v1/hr/batches/${body.batchId}`);

    const [batch] = await engine.db.select().from(hrBatches).where(eq(hrBatches.id, body.batchId));
    expect(batch).toMatchObject({ source: 'csv', status: 'held', terminations: dropped.length, activeIdentities: activeIds.length });
    const [alert] = await engine.db.select().from(alerts).where(eq(alerts.dedupeKey, `brake:${body.batchId}`));
    expect(alert).toMatchObject({ kind: 'brake_held', severity: 'critical', status: 'open' });

    // Several dispatcher passes later, not one termination has moved and nobody changed.
    await sleep(3_000);
    const terminations = await engine.db.select().from(hrEvents).where(and(eq(hrEvents.batchId, body.batchId), eq(hrEvents.type, 'terminate')));
    expect(terminations).toHaveLength(dropped.length);
    expect(new Set(terminations.map((t) => t.status))).toEqual(new Set(['held']));
    const people = await engine.db.select({ employeeId: identities.employeeId, status: identities.status }).from(identities).where(inArray(identities.employeeId, dropped));
    expect(people.filter((p) => p.status !== 'active' && p.status !== 'on_leave')).toEqual([]);
    for (const id of dropped.filter((d) => !onLeaveIds.has(d)).slice(0, 5)) {
      expect(await engine.connector.readAccount(id)).toMatchObject({ enabled: true });
    }
    expect(await provisioned(dropped)).toBe(dropped.length);

    // Discarded (say HR sent a bad extract). A later extract that drops them again is a new
    // decision, not a repeat of the discarded one: it is held again, not silently ignored.
    await discardBatch(engine.db, body.batchId, 'test-admin', 'bad extract');
    const again = await importCsv(engine, snapshot, { actor: 'test', fullSnapshot: true });
    expect(again).toMatchObject({ batchStatus: 'held', stored: dropped.length, counts: { terminate: dropped.length } });
    await discardBatch(engine.db, again.batchId!, 'test-admin', 'still a bad extract');
  });
});

describe('POST /api/v1/hr/imports', () => {
  const post = (url: string, payload: string, contentType = 'text/csv') =>
    app.inject({ method: 'POST', url, headers: { authorization: `Bearer ${token}`, 'content-type': contentType }, payload });

  it('answers a dry run with the plan per person and entitlement, and stores nothing', async () => {
    const [before] = await engine.db.select({ n: count() }).from(hrEvents);
    const response = await post('/api/v1/hr/imports?dryRun=true', readFileSync(path.join(SAMPLES, 'csv-with-2-records.csv'), 'utf8'));
    expect(response.statusCode).toBe(200);
    // 1513 is on two rows of the big sample (refused there), so it is new here; 1222 is inactive.
    expect(response.json()).toMatchObject({
      dryRun: true,
      batchId: null,
      counts: { hire: 1 },
      skippedInactive: 1,
      plan: [
        {
          employeeId: '1513',
          line: 3,
          statusBefore: null,
          events: [{ type: 'hire', effectiveAt: '2010-07-10T00:00:00.000Z' }],
          grant: [
            { entitlementId: 'all-staff', rules: ['everyone'] },
            { entitlementId: 'directory-account', rules: ['everyone'] },
            { entitlementId: 'employees', rules: ['employees'] },
            { entitlementId: 'engineering', rules: ['engineering'] },
          ],
          revoke: [],
        },
      ],
    });
    const [after] = await engine.db.select({ n: count() }).from(hrEvents);
    expect(after!.n).toBe(before!.n);
  });

  it('refuses a padded id with a line error, and plans a lower-case id as its canonical spelling', async () => {
    const file = ['WorkerID,WorkerStatus,WorkerType,FirstName,LastName,ManagerID', ' CANON-1 ,Active,Employee,Ada,Lovelace,', 'canon-2,Active,Employee,Grace,Hopper,canon-1'].join('\n');
    const response = await post('/api/v1/hr/imports?dryRun=true', file);
    expect(response.statusCode).toBe(200);
    const result = response.json() as { errors: Array<{ line: number; message: string }>; plan: Array<{ employeeId: string; line: number; events: Array<{ type: string; attributes: Record<string, unknown> }> }> };
    expect(result.errors).toEqual([{ line: 2, message: 'WorkerID must be 1..64 characters of letters, digits, . _ -', columns: ['WorkerID'] }]);
    expect(result.plan).toEqual([expect.objectContaining({ employeeId: 'CANON-2', line: 3, events: [expect.objectContaining({ type: 'hire', attributes: expect.objectContaining({ managerId: 'CANON-1' }) })] })]);
  });

  it('refuses a file without the id column (400), a body that is not CSV (415), and no token (401)', async () => {
    const bad = await post('/api/v1/hr/imports', 'Name,Status\nAda,Active\n');
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ errors: [{ message: expect.stringMatching(/WorkerID/) }] });
    expect((await post('/api/v1/hr/imports', '{}', 'application/json')).statusCode).toBe(415);
    expect((await post('/api/v1/hr/imports?dryRun=maybe', 'WorkerID\n')).statusCode).toBe(400);
    expect((await app.inject({ method: 'POST', url: '/api/v1/hr/imports', headers: { 'content-type': 'text/csv' }, payload: 'x' })).statusCode).toBe(401);
  });
});
