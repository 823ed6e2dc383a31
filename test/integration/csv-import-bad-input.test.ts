// POST /api/v1/hr/imports against bad files, on a whole engine with its own database: a file
// that cannot be imported (a column named twice, too many columns, too long a line, bytes
// that are not UTF-8, too big) is a 4xx problem naming what is wrong and stores nothing; a
// bad row (a padded id, a NUL in a cell) is a row error in the dry run and in the real run
// alike, the rest of the file goes on, and nothing of that row reaches Postgres or LDAP.
import { randomBytes } from 'node:crypto';
import { asc, count, eq, ne } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiToken } from '../../api/auth.js';
import { IMPORT_BODY_LIMIT, IMPORTS_PATH } from '../../api/routes/imports.js';
import { auditLog, hrBatches, hrEvents, identities } from '../../db/schema.js';
import { CSV_LIMITS } from '../../domain/csv-import.js';
import { buildTestApp } from '../support/api.js';
import { eventually, startTestEngine, type TestEngine } from '../support/engine.js';
import { uniqueEmployeeId } from '../support/env.js';

let engine: TestEngine;
let app: FastifyInstance;
let token: string;
/** Hired through a CSV import in beforeAll: a known, active person for the terminate cases. */
let known: string;

const HEADER = 'WorkerID,WorkerStatus,WorkerType,FirstName,LastName,JobTitle';

function post(payload: string | Buffer, query = '') {
  return app.inject({ method: 'POST', url: `${IMPORTS_PATH}${query}`, headers: { authorization: `Bearer ${token}`, 'content-type': 'text/csv' }, payload });
}

/** What the import could change: the inbox, the people, the feeds, the audit log. */
async function snapshot() {
  const db = engine.db;
  return {
    events: await db.select({ id: hrEvents.id, status: hrEvents.status }).from(hrEvents).orderBy(asc(hrEvents.id)),
    people: await db.select({ employeeId: identities.employeeId, status: identities.status, attributes: identities.attributes }).from(identities).orderBy(asc(identities.employeeId)),
    batches: await db.select({ id: hrBatches.id, status: hrBatches.status }).from(hrBatches).orderBy(asc(hrBatches.id)),
    // Alerts aside: a refused input raises event_rejected (services/input-rejections.ts), off the refusal's path.
    audit: (await db.select({ n: count() }).from(auditLog).where(ne(auditLog.subjectType, 'alert')))[0]!.n,
  };
}

/** Every event of the inbox applied: the engine is idle, so a snapshot stays as it is unless the import changes it. */
const settled = () => eventually(async () => (await engine.db.select({ status: hrEvents.status }).from(hrEvents)).every((e) => e.status === 'applied') || undefined, 60_000, 200);

beforeAll(async () => {
  engine = await startTestEngine();
  app = await buildTestApp(engine);
  ({ token } = await createApiToken(engine.db, { name: `importer-${randomBytes(3).toString('hex')}`, scopes: ['events:write'] }));
  known = uniqueEmployeeId('K');
  const hired = await post(`${HEADER}\n${known},Active,Employee,Ada,Lovelace,Analyst\n`);
  expect(hired.statusCode).toBe(202);
  await eventually(async () => (await engine.db.select().from(identities).where(eq(identities.employeeId, known)))[0]?.status === 'active' || undefined, 60_000, 200);
  await settled();
});

afterAll(async () => {
  await app?.close();
  await engine?.stop();
});

describe('a file that cannot be imported is refused whole, naming why, and changes nothing', () => {
  const wide = Array.from({ length: 100_000 }, (_, i) => `C${i}`);
  // [what, file, status, the problem's field, its message]
  const cases: Array<[string, string | Buffer, number, string, RegExp]> = [
    ['a WorkerID column twice', `WorkerID,WorkerStatus,FirstName,LastName,WorkerID\n${known},Inactive,Ada,Lovelace,X1\n`, 400, 'header.WorkerID', /"WorkerID" is in the header more than once \(columns 1 and 5\)/],
    ['a mapped column twice', `${HEADER},JobTitle\nD1,Active,Employee,Ada,Lovelace,Boss,Janitor\n`, 400, 'header.JobTitle', /"JobTitle" is in the header more than once/],
    [
      'a 100,000-column file of 20 rows',
      [[HEADER, ...wide].join(','), ...Array.from({ length: 20 }, (_, i) => [`W${i}`, 'Active', 'Employee', 'A', 'B', 'T', ...wide].join(','))].join('\n'),
      400,
      'columns',
      new RegExp(`at most ${CSV_LIMITS.columns} columns`),
    ],
    ['a line longer than the limit', `${HEADER}\nL1,Active,Employee,Ada,Lovelace,${'x'.repeat(CSV_LIMITS.lineCharacters + 1)}\n`, 400, 'line', new RegExp(`line 2 is too long: a line may have at most ${CSV_LIMITS.lineCharacters} characters`)],
    ['bytes that are not UTF-8', Buffer.concat([Buffer.from(`${HEADER}\nU1,Active,Employee,Ada,Love`), Buffer.from([0xff, 0xfe]), Buffer.from('lace,Boss\n')]), 400, '(body)', /must be UTF-8 text; line 2 is not/],
    ['a file past the size limit', `${HEADER}\n${`B1,Active,Employee,Ada,Lovelace,${'x'.repeat(1_000)}\n`.repeat(Math.ceil(IMPORT_BODY_LIMIT / 1_000))}`, 413, '(body)', /at most 20 MiB/],
  ];

  it.each(cases)('refuses %s, in a dry run and in a real one', async (_what, file, status, field, message) => {
    const before = await snapshot();
    for (const query of ['?dryRun=true', '']) {
      const response = await post(file, query);
      expect(response.statusCode).toBe(status);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.json()).toMatchObject({ status, errors: [{ field, message: expect.stringMatching(message) }] });
    }
    expect(await snapshot()).toEqual(before);
  });
});

describe('a bad row is refused alone, the same in the dry run and in the real run', () => {
  it('refuses a padded id (" K1 ",Inactive) with a row error: the person it names is not terminated', async () => {
    const file = `${HEADER}\n" ${known} ",Inactive,Employee,Ada,Lovelace,Analyst\n`;
    const before = await snapshot();
    const rowError = { line: 2, message: 'WorkerID must be 1..64 characters of letters, digits, . _ -', columns: ['WorkerID'] };

    // Its only row refused: the file as a whole is a 422 naming the row's column, in the dry
    // run, as a full snapshot (the padded row does not make the person absent) and for real.
    const refused = { status: 422, errors: [{ field: 'line 2.WorkerID', message: rowError.message }] };
    for (const query of ['?dryRun=true', '?dryRun=true&fullSnapshot=true', '', '?fullSnapshot=true']) {
      const answer = await post(file, query);
      expect(answer.statusCode, query).toBe(422);
      expect(answer.json(), query).toMatchObject(refused);
    }
    expect(await snapshot()).toEqual(before);
    expect(await engine.connector.readAccount(known)).toMatchObject({ enabled: true });
  });

  it('refuses a row with a NUL in a cell or in its id in both runs, and imports the rest: nothing of that row in Postgres or LDAP', async () => {
    const good = uniqueEmployeeId('G');
    const nul = uniqueEmployeeId('N');
    const file = [HEADER, `${good},Active,Employee,Grace,Hopper,Admiral`, `${nul},Active,Employee,Ada,Love\u0000lace,Analyst`, `${nul}\u0000X,Active,Employee,Edsger,Dijkstra,Professor`].join('\n');
    const rowErrors = [
      { line: 3, employeeId: nul, message: 'LastName must not contain control characters, NUL or bidirectional overrides', columns: ['LastName'] },
      { line: 4, message: 'WorkerID must be 1..64 characters of letters, digits, . _ -', columns: ['WorkerID'] },
    ];

    const before = await snapshot();
    const dry = await post(file, '?dryRun=true');
    expect(dry.statusCode).toBe(200);
    const planned = dry.json() as { errors: unknown[]; counts: Record<string, number>; plan: Array<{ employeeId: string }> };
    expect(planned.errors).toEqual(rowErrors);
    expect(planned.counts).toMatchObject({ hire: 1 });
    expect(planned.plan.map((p) => p.employeeId)).toEqual([good]);
    expect(await snapshot()).toEqual(before);

    const real = await post(file);
    expect(real.statusCode).toBe(202);
    const imported = real.json() as { errors: unknown[]; counts: Record<string, number>; stored: number };
    expect(imported.errors).toEqual(planned.errors);
    expect(imported).toMatchObject({ counts: planned.counts, stored: 1 });

    const stored = await engine.db.select({ employeeId: hrEvents.employeeId, type: hrEvents.type }).from(hrEvents).where(eq(hrEvents.batchId, (real.json() as { batchId: string }).batchId));
    expect(stored).toEqual([{ employeeId: good, type: 'hire' }]);
    await eventually(async () => (await engine.connector.readAccount(good)) ?? undefined, 60_000, 200);
    await settled();
    const people = (await snapshot()).people.map((p) => p.employeeId);
    expect(people).toContain(good);
    expect(people.filter((id) => id.startsWith(nul))).toEqual([]);
    expect(await engine.connector.readAccount(nul)).toBeNull();
  });
});
