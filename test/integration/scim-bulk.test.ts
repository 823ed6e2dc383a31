// SCIM 2.0 bulk input through the real app (app.inject) against the run's Postgres and
// Redis: a BulkRequest as Entra API-driven inbound provisioning sends it becomes one feed of
// HR events, with a status per operation. The lifecycle workflow is not running here:
// these tests look at the answer and the inbox only.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Queue } from 'bullmq';
import { eq, inArray } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../api/app.js';
import { createApiToken } from '../../api/auth.js';
import { createMetricsRegistry } from '../../api/metrics.js';
import { JML_SCIM_EXTENSION } from '../../api/routes/scim.js';
import { createDb, type DbHandle } from '../../db/client.js';
import { hrBatches, hrEvents, identities } from '../../db/schema.js';
import { mapScimUser, SCIM_SCHEMAS } from '../../domain/scim.js';
import { createHrEventQueue, type HrEventJob } from '../../services/hr-event-queue.js';
import { redisConnection } from '../../services/redis.js';
import { testConfig } from '../support/config.js';
import { testEnv, uniqueName } from '../support/env.js';

const BASE = '/api/v1/scim/v2';
const PUBLIC_URL = 'https://jml.test';
const ENTERPRISE = SCIM_SCHEMAS.enterpriseUser;
const CSV = 'urn:ietf:params:scim:schemas:extension:csv:1.0:User';

let handle: DbHandle;
let queue: Queue<HrEventJob>;
let app: FastifyInstance;
let writeToken: string;
let readToken: string;
/** Employee ids are unique per run of this file (other files share the database), and canonical. */
const run = randomBytes(3).toString('hex').toUpperCase();
const emp = (n: string) => `S${run}-${n}`;

interface BulkOperationResponse {
  method: string;
  bulkId?: string;
  location?: string;
  status: string;
  response?: { schemas: string[]; status: string; scimType?: string; detail: string };
  [JML_SCIM_EXTENSION]?: { eventId?: string; eventType?: string; created?: boolean; eventStatus?: string; batchId?: string; outcome?: string };
}
interface BulkResponse {
  schemas: string[];
  Operations: BulkOperationResponse[];
  [JML_SCIM_EXTENSION]: { batchId: string | null; batchStatus: string | null; events: number; errors: number };
}

beforeAll(async () => {
  handle = createDb(testEnv.databaseUrl, { max: 5 });
  queue = createHrEventQueue(redisConnection(testEnv.redisUrl, 'producer'), `${testEnv.redisPrefix}:${uniqueName('scim')}`);
  app = await buildApp({
    db: handle.db,
    hrEventQueue: queue,
    webhookSecrets: [`whsec_${randomBytes(32).toString('base64')}`],
    config: testConfig(testEnv.ldap),
    publicUrl: PUBLIC_URL,
    // Test double for Temporal: SCIM never calls it; only /api/health would.
    health: { redis: async () => void (await queue.getWaitingCount()), temporal: async () => {} },
    logger: false,
    metrics: createMetricsRegistry({ defaultMetrics: false }),
  });
  ({ token: writeToken } = await createApiToken(handle.db, { name: uniqueName('entra'), scopes: ['events:write'] }));
  ({ token: readToken } = await createApiToken(handle.db, { name: uniqueName('reader'), scopes: ['identities:read'] }));
});

afterAll(async () => {
  await app?.close();
  await queue?.obliterate({ force: true }).catch(() => undefined);
  await queue?.close();
  await handle?.close();
});

/** A user as Entra API-driven inbound provisioning sends it. */
function entraUser(externalId: string, overrides: Record<string, unknown> = {}, enterprise: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    schemas: [SCIM_SCHEMAS.user, ENTERPRISE, CSV],
    externalId,
    userName: `${externalId.toLowerCase()}@example.com`,
    name: { givenName: 'Ada', familyName: 'Lovelace' },
    displayName: 'Ada Lovelace',
    emails: [{ value: `${externalId.toLowerCase()}@example.com`, type: 'work', primary: true }],
    title: 'Engineer',
    active: true,
    addresses: [{ type: 'work', locality: 'London', country: 'GB', primary: true }],
    userType: 'employee',
    [ENTERPRISE]: { employeeNumber: externalId, department: 'Engineering', manager: { value: emp('BOSS') }, costCenter: 'CC-42', ...enterprise },
    ...overrides,
  };
}

const operation = (bulkId: string, data: unknown) => ({ method: 'POST', bulkId, path: '/Users', data });
const bulkRequest = (operations: unknown[], extra: Record<string, unknown> = {}) => ({ schemas: [SCIM_SCHEMAS.bulkRequest], Operations: operations, ...extra });

async function post(body: unknown, options: { token?: string | null; contentType?: string } = {}) {
  const token = options.token === undefined ? writeToken : options.token;
  return app.inject({
    method: 'POST',
    url: `${BASE}/Bulk`,
    payload: JSON.stringify(body),
    headers: { 'content-type': options.contentType ?? 'application/scim+json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
  });
}

async function get(path: string, token: string | null = writeToken) {
  return app.inject({ method: 'GET', url: `${BASE}${path}`, headers: token ? { authorization: `Bearer ${token}` } : {} });
}

async function eventsFor(employeeIds: string[]) {
  return handle.db.select().from(hrEvents).where(inArray(hrEvents.employeeId, employeeIds));
}

function expectScimError(response: { statusCode: number; headers: Record<string, unknown>; json(): unknown }, status: number) {
  expect(response.statusCode).toBe(status);
  expect(String(response.headers['content-type'])).toMatch(/^application\/scim\+json/);
  const body = response.json() as { schemas: string[]; status: string; scimType?: string; detail: string };
  expect(body).toMatchObject({ schemas: [SCIM_SCHEMAS.error], status: String(status), detail: expect.any(String) });
  return body;
}

describe('POST /api/v1/scim/v2/Bulk', () => {
  it('answers a mixed BulkRequest with a status per operation and stores one feed of HR events', async () => {
    const [hire1, hire2, mover, leaver, invalid] = ['N1', 'N2', 'U1', 'L1', 'X1'].map(emp) as [string, string, string, string, string];
    // The mover is known and active, with exactly what the SCIM user maps to, but another title.
    const moverUser = entraUser(mover, { title: 'Principal Engineer' });
    const moverMapped = mapScimUser(moverUser);
    if ('error' in moverMapped) throw new Error(moverMapped.error.detail);
    await handle.db.insert(identities).values([
      { employeeId: mover, status: 'active', attributes: { ...moverMapped.attributes, title: 'Engineer' } },
      { employeeId: leaver, status: 'active', attributes: { givenName: 'Leo', familyName: 'Leaver' } },
    ]);
    const startDate = new Date(Date.now() + 30 * 86_400_000).toISOString();
    const body = bulkRequest(
      [
        operation('b-hire-1', entraUser(hire1)),
        operation('b-hire-2', entraUser(hire2, { [CSV]: { HireDate: startDate, BadgeColour: 'blue' } })),
        operation('b-mover', moverUser),
        operation('b-leaver', entraUser(leaver, { active: false })),
        operation('b-invalid', entraUser(invalid, { name: { givenName: 'No' } })),
      ],
      { failOnErrors: 10 },
    );

    const response = await post(body);
    expect(response.statusCode).toBe(200);
    expect(String(response.headers['content-type'])).toMatch(/^application\/scim\+json/);
    const answer = response.json() as BulkResponse;
    expect(answer.schemas).toEqual([SCIM_SCHEMAS.bulkResponse]);
    expect(answer.Operations.map((op) => [op.bulkId, op.status])).toEqual([
      ['b-hire-1', '201'],
      ['b-hire-2', '201'],
      ['b-mover', '200'],
      ['b-leaver', '200'],
      ['b-invalid', '400'],
    ]);
    expect(answer.Operations[0]).toMatchObject({ method: 'POST', location: `${PUBLIC_URL}${BASE}/Users/${hire1}` });
    expect(answer.Operations[4]).toEqual({
      method: 'POST',
      bulkId: 'b-invalid',
      status: '400',
      response: { schemas: [SCIM_SCHEMAS.error], status: '400', scimType: 'invalidValue', detail: 'name.familyName is required' },
    });
    const batch = answer[JML_SCIM_EXTENSION];
    expect(batch).toMatchObject({ batchId: expect.any(String), batchStatus: 'accepted', events: 4, errors: 1 });
    expect(answer.Operations.slice(0, 4).map((op) => op[JML_SCIM_EXTENSION])).toEqual([
      expect.objectContaining({ eventType: 'hire', created: true, eventStatus: 'received', batchId: batch.batchId }),
      expect.objectContaining({ eventType: 'hire', created: true }),
      expect.objectContaining({ eventType: 'update', created: true }),
      expect.objectContaining({ eventType: 'terminate', created: true }),
    ]);

    const rows = await eventsFor([hire1, hire2, mover, leaver, invalid]);
    const byEmployee = new Map(rows.map((row) => [row.employeeId, row]));
    expect(rows).toHaveLength(4);
    expect(byEmployee.has(invalid)).toBe(false);
    expect(Object.fromEntries(rows.map((row) => [row.employeeId, row.type]))).toEqual({ [hire1]: 'hire', [hire2]: 'hire', [mover]: 'update', [leaver]: 'terminate' });
    for (const row of rows) {
      expect(row).toMatchObject({ source: 'scim', status: 'received', batchId: batch.batchId });
      expect(row.id).toMatch(/^scim:[0-9a-f]{64}$/);
    }
    expect(byEmployee.get(hire1)!.payload).toMatchObject({
      type: 'hire',
      employeeId: hire1,
      scim: { bulkId: 'b-hire-1' },
      attributes: { givenName: 'Ada', familyName: 'Lovelace', email: `${hire1.toLowerCase()}@example.com`, department: 'Engineering', location: 'London', employmentType: 'employee', managerId: emp('BOSS'), costCenter: 'CC-42' },
    });
    // A future hire date in a custom extension dates the hire; the extension attributes are kept.
    expect(byEmployee.get(hire2)!.effectiveAt.toISOString()).toBe(startDate);
    expect(byEmployee.get(hire2)!.payload).toMatchObject({ attributes: { hireDate: startDate, badgeColour: 'blue' } });
    // The mover's update carries only what changed.
    expect((byEmployee.get(mover)!.payload as { attributes: unknown }).attributes).toEqual({ title: 'Principal Engineer' });

    const [batchRow] = await handle.db.select().from(hrBatches).where(eq(hrBatches.id, batch.batchId!));
    expect(batchRow).toMatchObject({ source: 'scim', status: 'accepted', events: 4, terminations: 1 });

    // Entra retries the same request: the same answer, nothing new stored.
    const again = await post(body);
    expect(again.statusCode).toBe(200);
    const second = again.json() as BulkResponse;
    expect(second.Operations.map((op) => op.status)).toEqual(['201', '201', '200', '200', '400']);
    expect(second.Operations.slice(0, 4).map((op) => op[JML_SCIM_EXTENSION]?.eventId)).toEqual(answer.Operations.slice(0, 4).map((op) => op[JML_SCIM_EXTENSION]?.eventId));
    expect(second.Operations.slice(0, 4).every((op) => op[JML_SCIM_EXTENSION]?.created === false)).toBe(true);
    expect(await eventsFor([hire1, hire2, mover, leaver, invalid])).toHaveLength(4);

    // A real change to a user that is still waiting to be hired makes a new event.
    const changed = await post(bulkRequest([operation('b-hire-1', entraUser(hire1, { title: 'Staff Engineer' }))]));
    expect((changed.json() as BulkResponse).Operations[0]).toMatchObject({ status: '201', [JML_SCIM_EXTENSION]: { created: true } });
    expect(await eventsFor([hire1])).toHaveLength(2);
  });

  it('answers an unknown inactive user and an unchanged known user with 200 and stores nothing', async () => {
    const [ghost, steady] = [emp('G1'), emp('S1')];
    const steadyUser = entraUser(steady);
    const mapped = mapScimUser(steadyUser);
    if ('error' in mapped) throw new Error(mapped.error.detail);
    await handle.db.insert(identities).values({ employeeId: steady, status: 'active', attributes: mapped.attributes });

    const response = await post(bulkRequest([operation('g', entraUser(ghost, { active: false })), operation('s', steadyUser)]), { contentType: 'application/json' });
    expect(response.statusCode).toBe(200);
    const answer = response.json() as BulkResponse;
    expect(answer.Operations).toEqual([
      expect.objectContaining({ bulkId: 'g', status: '200', [JML_SCIM_EXTENSION]: expect.objectContaining({ outcome: 'ignored' }) }),
      expect.objectContaining({ bulkId: 's', status: '200', [JML_SCIM_EXTENSION]: expect.objectContaining({ outcome: 'unchanged' }) }),
    ]);
    expect(answer[JML_SCIM_EXTENSION]).toMatchObject({ batchId: null, events: 0 });
    expect(await eventsFor([ghost, steady])).toHaveLength(0);
  });

  it('stops after failOnErrors errors: later operations get no entry and are not stored', async () => {
    const later = emp('F1');
    const response = await post(
      bulkRequest(
        [
          operation('bad-1', entraUser(emp('F0'), { name: {} })),
          { method: 'PUT', bulkId: 'bad-2', path: `/Users/${later}`, data: entraUser(later) },
          operation('never', entraUser(later)),
        ],
        { failOnErrors: 2 },
      ),
      { contentType: 'application/scim+json; charset=utf-8' },
    );
    expect(response.statusCode).toBe(200);
    const answer = response.json() as BulkResponse;
    expect(answer.Operations.map((op) => [op.bulkId, op.status])).toEqual([
      ['bad-1', '400'],
      ['bad-2', '405'],
    ]);
    expect(await eventsFor([later])).toHaveLength(0);
  });

  it('answers more than 50 operations with 413 and stores nothing', async () => {
    const ids = Array.from({ length: 51 }, (_, i) => emp(`M${i}`));
    const response = await post(bulkRequest(ids.map((id, i) => operation(`m${i}`, entraUser(id)))));
    const error = expectScimError(response, 413);
    expect(error.detail).toMatch(/maxOperations is 50/);
    expect(await eventsFor(ids)).toHaveLength(0);

    // A body over maxPayloadSize (1 MiB) is a SCIM 413 too.
    const huge = bulkRequest([operation('huge', entraUser(emp('H1'), { [CSV]: { Notes: 'x'.repeat(1_100_000) } }))]);
    expect(expectScimError(await post(huge, { contentType: 'application/scim+json; charset=utf-8' }), 413).detail).toMatch(/maxPayloadSize 1048576/);
  });

  it('answers a malformed envelope with 400 invalidSyntax naming the field', async () => {
    const wrongSchema = expectScimError(await post({ schemas: ['urn:nope'], Operations: [operation('x', entraUser(emp('Z1')))] }), 400);
    expect(wrongSchema).toMatchObject({ scimType: 'invalidSyntax', detail: expect.stringContaining(`schemas: must include ${SCIM_SCHEMAS.bulkRequest}`) });
    const noOperations = expectScimError(await post({ schemas: [SCIM_SCHEMAS.bulkRequest] }), 400);
    expect(noOperations.detail).toMatch(/^Operations: /);
    const notJson = await app.inject({ method: 'POST', url: `${BASE}/Bulk`, payload: '{"schemas":', headers: { 'content-type': 'application/scim+json', authorization: `Bearer ${writeToken}` } });
    expect(expectScimError(notJson, 400)).toMatchObject({ scimType: 'invalidSyntax' });
    expect(await eventsFor([emp('Z1')])).toHaveLength(0);
  });

  it('wants a bearer token with events:write', async () => {
    const body = bulkRequest([operation('a', entraUser(emp('A1')))]);
    const anonymous = await post(body, { token: null });
    expectScimError(anonymous, 401);
    expect(anonymous.headers['www-authenticate']).toMatch(/^Bearer /);
    const reader = await post(body, { token: readToken });
    expect(expectScimError(reader, 403).detail).toMatch(/events:write/);
    expect(await eventsFor([emp('A1')])).toHaveLength(0);
  });
});

describe('SCIM input as Entra really sends it', () => {
  /** test/fixtures/scim/entra-bulk-upload.json (see test/unit/scim.test.ts), its ids made unique to this run. */
  const entraBulkUpload = () =>
    JSON.parse(readFileSync(path.join(import.meta.dirname, '../fixtures/scim/entra-bulk-upload.json'), 'utf8').replaceAll('"8801', `"${run}8801`)) as unknown;

  it("takes Microsoft's documented bulkUpload shape, failOnErrors null and nulls throughout, and stores no null", async () => {
    const [manager, report, leaver] = ['880101', '880102', '880103'].map((n) => `${run}${n}`) as [string, string, string];
    await handle.db.insert(identities).values({ employeeId: leaver, status: 'active', attributes: { givenName: 'Lee', familyName: 'Leaver', department: 'Support' } });

    const response = await post(entraBulkUpload());
    expect(response.statusCode).toBe(200);
    const answer = response.json() as BulkResponse;
    expect(answer.Operations.map((op) => [op.bulkId, op.status])).toEqual([
      [manager, '201'],
      [report, '201'],
      [leaver, '200'],
    ]);
    expect(answer[JML_SCIM_EXTENSION]).toMatchObject({ events: 3, errors: 0 });

    const rows = await eventsFor([manager, report, leaver]);
    const byEmployee = new Map(rows.map((row) => [row.employeeId, row]));
    expect(Object.fromEntries(rows.map((row) => [row.employeeId, row.type]))).toEqual({ [manager]: 'hire', [report]: 'hire', [leaver]: 'terminate' });
    expect(byEmployee.get(report)!.payload).toMatchObject({ attributes: { givenName: 'Dorothy', familyName: 'Graham', email: 'dgraham@example.com', managerId: manager } });
    expect((byEmployee.get(report)!.payload as { attributes: Record<string, unknown> }).attributes).not.toHaveProperty('title');
    // The partial leaver carries only what changed; the manager sent as { value: null } is unassigned.
    expect((byEmployee.get(leaver)!.payload as { attributes: unknown }).attributes).toEqual({ department: 'Operations' });
    for (const row of rows) expect(JSON.stringify(row.payload)).not.toMatch(/null/);
  });

  it('folds employee ids: `e…` and `E…` are one person, found as known, with one event id', async () => {
    const [person, known] = [emp('C1'), emp('K1')];
    const lower = (id: string) => id.toLowerCase();
    const body = bulkRequest([
      operation('c-lower', entraUser(lower(person), {}, { manager: { value: lower(emp('BOSS')) } })),
      operation('c-upper', entraUser(person)),
    ]);
    const response = await post(body);
    expect(response.statusCode).toBe(200);
    const answer = response.json() as BulkResponse;
    expect(answer.Operations).toEqual([
      expect.objectContaining({ bulkId: 'c-lower', status: '201', location: `${PUBLIC_URL}${BASE}/Users/${person}` }),
      expect.objectContaining({ bulkId: 'c-upper', status: '200', [JML_SCIM_EXTENSION]: expect.objectContaining({ outcome: 'unchanged' }) }),
    ]);
    const rows = await eventsFor([person, lower(person)]);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ employeeId: person, type: 'hire', payload: { employeeId: person, attributes: { managerId: emp('BOSS') } } });

    // Entra retries in the other spelling: the same event, nothing new.
    const retry = (await post(bulkRequest([operation('c-upper', entraUser(person))]))).json() as BulkResponse;
    expect(retry.Operations[0]).toMatchObject({ status: '201', [JML_SCIM_EXTENSION]: { eventId: rows[0]!.id, created: false } });
    expect(await eventsFor([person, lower(person)])).toHaveLength(1);

    // A known person sent in lower case is that person: an update, not a second hire.
    const mapped = mapScimUser(entraUser(known));
    if ('error' in mapped) throw new Error(mapped.error.detail);
    await handle.db.insert(identities).values({ employeeId: known, status: 'active', attributes: { ...mapped.attributes, title: 'Intern' } });
    const update = (await post(bulkRequest([operation('k', entraUser(lower(known)))]))).json() as BulkResponse;
    expect(update.Operations[0]).toMatchObject({ status: '200', [JML_SCIM_EXTENSION]: { eventType: 'update', created: true } });
    expect(await eventsFor([known])).toEqual([expect.objectContaining({ employeeId: known, type: 'update', payload: expect.objectContaining({ attributes: { title: 'Engineer' } }) })]);
  });
});

describe('partial users: Entra sends only externalId, active and what changed', () => {
  /** The shape of Microsoft's documented bulkUpload update ("Example 3"): no name, `active` only when `extra` has it. */
  const partialUser = (externalId: string, department: string, extra: Record<string, unknown> = {}) => ({
    schemas: [SCIM_SCHEMAS.user, ENTERPRISE],
    externalId,
    [ENTERPRISE]: { department },
    ...extra,
  });
  const attributesOf = (row: { payload: unknown }) => (row.payload as { attributes: unknown }).attributes;
  const namesRequired = { schemas: [SCIM_SCHEMAS.error], status: '400', scimType: 'invalidValue', detail: 'name.givenName and name.familyName are required' };

  it('never rehires a terminated person whose active is absent or null: an update or nothing; active: true still rehires', async () => {
    const leaver = emp('T1');
    await handle.db.insert(identities).values({ employeeId: leaver, status: 'terminated', attributes: { givenName: 'Tess', familyName: 'Gone', department: 'Support' } });

    const absent = (await post(bulkRequest([operation('t-absent', partialUser(leaver, 'Operations'))]))).json() as BulkResponse;
    expect(absent.Operations[0]).toMatchObject({ status: '200', [JML_SCIM_EXTENSION]: { eventType: 'update', created: true } });
    const [update, ...others] = await eventsFor([leaver]);
    expect(others).toEqual([]);
    expect(update).toMatchObject({ type: 'update' });
    expect(attributesOf(update!)).toEqual({ department: 'Operations' });

    // active: null is absent: the same event, nothing new.
    const nulled = (await post(bulkRequest([operation('t-null', partialUser(leaver, 'Operations', { active: null }))]))).json() as BulkResponse;
    expect(nulled.Operations[0]).toMatchObject({ status: '200', [JML_SCIM_EXTENSION]: { eventId: update!.id, eventType: 'update', created: false } });
    // A whole user without active, nothing changed: nothing at all (not a rehire).
    const same = (await post(bulkRequest([operation('t-same', partialUser(leaver, 'Support', { name: { givenName: 'Tess', familyName: 'Gone' } }))]))).json() as BulkResponse;
    expect(same.Operations[0]).toMatchObject({ status: '200', [JML_SCIM_EXTENSION]: { outcome: 'unchanged' } });
    expect(await eventsFor([leaver])).toHaveLength(1);

    // An explicit active: true is a rehire, names or not (the same record reopens), also
    // after an update of the same person earlier in the request, which left them terminated.
    const back = (await post(bulkRequest([operation('t-again', partialUser(leaver, 'Operations')), operation('t-back', partialUser(leaver, 'Operations', { active: true }))]))).json() as BulkResponse;
    expect(back.Operations.map((op) => [op.status, op[JML_SCIM_EXTENSION]?.eventType])).toEqual([
      ['200', 'update'],
      ['200', 'rehire'],
    ]);
    const rows = await eventsFor([leaver]);
    expect(rows.map((row) => row.type).sort()).toEqual(['rehire', 'update']);
    expect(attributesOf(rows.find((row) => row.type === 'rehire')!)).toEqual({ department: 'Operations' });
  });

  it('takes a partial update of a known active person without names: 200, an update carrying only the attribute sent', async () => {
    const people = [emp('P1'), emp('P2'), emp('P3')];
    await handle.db
      .insert(identities)
      .values(people.map((employeeId) => ({ employeeId, status: 'active' as const, attributes: { givenName: 'Pat', familyName: 'Partial', department: 'Support', title: 'Agent' } })));
    const [absent, nulled, explicit] = people as [string, string, string];
    const response = await post(
      bulkRequest([
        operation('p-absent', partialUser(absent, 'Operations')),
        operation('p-null', partialUser(nulled, 'Operations', { active: null })),
        operation('p-true', partialUser(explicit, 'Operations', { active: true })),
      ]),
    );
    expect(response.statusCode).toBe(200);
    const answer = response.json() as BulkResponse;
    expect(answer.Operations.map((op) => [op.bulkId, op.status, op[JML_SCIM_EXTENSION]?.eventType])).toEqual([
      ['p-absent', '200', 'update'],
      ['p-null', '200', 'update'],
      ['p-true', '200', 'update'],
    ]);
    expect(answer[JML_SCIM_EXTENSION]).toMatchObject({ events: 3, errors: 0 });
    const rows = await eventsFor(people);
    expect(rows.map((row) => row.employeeId).sort()).toEqual([...people].sort());
    for (const row of rows) {
      expect(row).toMatchObject({ type: 'update', source: 'scim' });
      expect(attributesOf(row)).toEqual({ department: 'Operations' });
    }
  });

  it('refuses to hire an unknown person from a partial user, naming the paths, and counts that toward failOnErrors', async () => {
    const [known, stranger, other, never] = [emp('Q1'), emp('Q2'), emp('Q3'), emp('Q4')];
    await handle.db.insert(identities).values({ employeeId: known, status: 'active', attributes: { givenName: 'Kim', familyName: 'Known', department: 'Support' } });
    const response = await post(
      bulkRequest(
        [
          operation('q-stranger', partialUser(stranger, 'Operations')),
          operation('q-known', partialUser(known, 'Operations')),
          operation('q-other', partialUser(other, 'Operations', { active: true })),
          operation('q-never', entraUser(never)),
        ],
        { failOnErrors: 2 },
      ),
    );
    expect(response.statusCode).toBe(200);
    const answer = response.json() as BulkResponse;
    expect(answer.Operations).toEqual([
      { method: 'POST', bulkId: 'q-stranger', status: '400', response: namesRequired },
      expect.objectContaining({ bulkId: 'q-known', status: '200', [JML_SCIM_EXTENSION]: expect.objectContaining({ eventType: 'update' }) }),
      { method: 'POST', bulkId: 'q-other', status: '400', response: namesRequired },
    ]);
    expect(answer[JML_SCIM_EXTENSION]).toMatchObject({ events: 1, errors: 2 });
    expect((await eventsFor([known, stranger, other, never])).map((row) => [row.employeeId, row.type])).toEqual([[known, 'update']]);
  });
});

describe('SCIM discovery', () => {
  it('serves /ServiceProviderConfig with bulk limits and bearer auth', async () => {
    const response = await get('/ServiceProviderConfig');
    expect(response.statusCode).toBe(200);
    expect(String(response.headers['content-type'])).toMatch(/^application\/scim\+json/);
    expect(response.json()).toMatchObject({
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig'],
      bulk: { supported: true, maxOperations: 50, maxPayloadSize: 1_048_576 },
      patch: { supported: false },
      filter: { supported: false },
      etag: { supported: false },
      changePassword: { supported: false },
      sort: { supported: false },
      authenticationSchemes: [expect.objectContaining({ type: 'oauthbearertoken' })],
    });
  });

  it('serves /ResourceTypes: User with the enterprise extension', async () => {
    const response = await get('/ResourceTypes', readToken);
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({
      schemas: [SCIM_SCHEMAS.listResponse],
      totalResults: 1,
      Resources: [{ id: 'User', endpoint: '/Users', schema: SCIM_SCHEMAS.user, schemaExtensions: [{ schema: ENTERPRISE, required: false }] }],
    });
    expect((await get('/ResourceTypes/User')).json()).toMatchObject({ id: 'User' });
    expectScimError(await get('/ResourceTypes/Group'), 404);
  });

  it('serves /Schemas: core User and enterprise User with the attributes read', async () => {
    const response = await get('/Schemas');
    expect(response.statusCode).toBe(200);
    const list = response.json() as { schemas: string[]; totalResults: number; Resources: Array<{ id: string; attributes: Array<{ name: string; subAttributes?: Array<{ name: string }> }> }> };
    expect(list).toMatchObject({ schemas: [SCIM_SCHEMAS.listResponse], totalResults: 2 });
    expect(list.Resources.map((r) => r.id)).toEqual([SCIM_SCHEMAS.user, ENTERPRISE]);
    const [user, enterprise] = list.Resources;
    expect(user!.attributes.map((a) => a.name)).toEqual(expect.arrayContaining(['userName', 'name', 'displayName', 'emails', 'title', 'userType', 'active', 'addresses']));
    expect(user!.attributes.find((a) => a.name === 'name')!.subAttributes!.map((a) => a.name)).toEqual(['givenName', 'familyName']);
    expect(enterprise!.attributes.map((a) => a.name)).toEqual(expect.arrayContaining(['employeeNumber', 'department', 'manager']));
    expect((await get(`/Schemas/${ENTERPRISE}`)).json()).toMatchObject({ id: ENTERPRISE });
  });

  it('wants a token, and answers unknown SCIM paths with a SCIM 404', async () => {
    expectScimError(await get('/Schemas', null), 401);
    expectScimError(await get('/Users'), 404);
  });
});
