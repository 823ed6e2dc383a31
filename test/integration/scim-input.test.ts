// Bad SCIM input through the real app over a whole engine (Temporal worker, ingestion
// worker, the run's slapd, a database of its own): each bad operation of a BulkRequest gets
// its own 400 naming the attribute by its SCIM path and stores nothing, while a good one in
// the same request still goes all the way to the directory; `bulkId:` references resolve
// to the referenced person; a body that is not JSON we take is a SCIM 400, never a 500.
import type { FastifyInstance } from 'fastify';
import { inArray, sql } from 'drizzle-orm';
import { Client as LdapClient } from 'ldapts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiToken } from '../../api/auth.js';
import { JML_SCIM_EXTENSION } from '../../api/routes/scim.js';
import { hrBatches, hrEvents, identities } from '../../db/schema.js';
import { SCIM_SCHEMAS } from '../../domain/scim.js';
import { buildTestApp } from '../support/api.js';
import { eventually, startTestEngine, type TestEngine } from '../support/engine.js';
import { testEnv, uniqueEmployeeId, uniqueName } from '../support/env.js';

const BULK = '/api/v1/scim/v2/Bulk';
const ENTERPRISE = SCIM_SCHEMAS.enterpriseUser;
const HR = 'urn:example:hr:1.0:User';

let engine: TestEngine;
let app: FastifyInstance;
let token: string;

beforeAll(async () => {
  engine = await startTestEngine();
  app = await buildTestApp(engine);
  ({ token } = await createApiToken(engine.db, { name: uniqueName('entra'), scopes: ['events:write'] }));
});
afterAll(async () => {
  await app?.close();
  await engine?.stop();
});

interface OperationResponse {
  bulkId?: string;
  status: string;
  response?: { schemas: string[]; status: string; scimType?: string; detail: string };
  [JML_SCIM_EXTENSION]?: { eventId?: string; eventType?: string };
}

function user(employeeId: unknown, overrides: Record<string, unknown> = {}, enterprise: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    schemas: [SCIM_SCHEMAS.user, ENTERPRISE],
    externalId: employeeId,
    userName: 'ada@example.com',
    name: { givenName: 'Ada', familyName: 'Lovelace' },
    emails: [{ value: 'ada@example.com', type: 'work', primary: true }],
    title: 'Engineer',
    active: true,
    [ENTERPRISE]: { department: 'Engineering', ...enterprise },
    ...overrides,
  };
}
const operation = (bulkId: string, data: unknown) => ({ method: 'POST', bulkId, path: '/Users', data });
const bulkRequest = (operations: unknown[]) => JSON.stringify({ schemas: [SCIM_SCHEMAS.bulkRequest], Operations: operations });

function post(payload: string | Buffer, contentType = 'application/scim+json') {
  return app.inject({ method: 'POST', url: BULK, payload, headers: { 'content-type': contentType, authorization: `Bearer ${token}` } });
}

async function bulk(operations: unknown[]): Promise<OperationResponse[]> {
  const response = await post(bulkRequest(operations));
  expect(response.statusCode).toBe(200);
  return (response.json() as { Operations: OperationResponse[] }).Operations;
}

/**
 * What the API has stored in this engine's database (its own): every HR event and batch.
 * Identities are written by the lifecycle, in the background, so they are checked per person.
 */
async function snapshot() {
  const events = await engine.db.select({ id: hrEvents.id, employeeId: hrEvents.employeeId }).from(hrEvents).orderBy(hrEvents.id);
  const batches = await engine.db.select({ id: hrBatches.id }).from(hrBatches).orderBy(hrBatches.id);
  return { events, batches };
}

/** Rows naming any of these ids, in any spelling. */
async function rowsFor(ids: string[]) {
  const lower = ids.map((id) => id.toLowerCase());
  const events = await engine.db.select().from(hrEvents).where(inArray(sql`lower(${hrEvents.employeeId})`, lower));
  const people = await engine.db.select().from(identities).where(inArray(sql`lower(${identities.employeeId})`, lower));
  return { events, people };
}

async function ldapEntries(filter: string, attributes: string[] = ['uid']) {
  const ldap = new LdapClient({ url: testEnv.ldap.url });
  await ldap.bind(testEnv.ldap.bindDN, testEnv.ldap.bindPassword);
  try {
    return (await ldap.search(testEnv.ldap.usersDN, { filter, attributes })).searchEntries;
  } finally {
    await ldap.unbind();
  }
}

/** Waits until the lifecycle has applied the HR events of these people. */
function applied(ids: string[]) {
  return eventually(async () => {
    const rows = await engine.db.select({ status: hrEvents.status }).from(hrEvents).where(inArray(hrEvents.employeeId, ids));
    return rows.length >= ids.length && rows.every((row) => row.status === 'applied') ? rows : undefined;
  }, 60_000);
}

describe('a bad SCIM operation: its own 400 naming the attribute, nothing stored; the good ones go through', () => {
  it('answers each bad user of one BulkRequest with a 400 naming its SCIM path, and hires the good one', async () => {
    const good = uniqueEmployeeId('SG');
    const ids: Record<string, string> = {};
    const id = (name: string) => (ids[name] ??= uniqueEmployeeId(`S${name}`));
    let nested: unknown = 'deep';
    for (let i = 0; i < 12; i += 1) nested = { level: nested };
    const cases: Array<[string, Record<string, unknown>, string]> = [
      ['title-list', user(id('T'), { title: ['Boss', 'Janitor'] }), 'title must be a single value, not a list'],
      ['id-list', user(['X', id('X')]), 'externalId must be a single value, not a list'],
      ['username-list', user(id('U'), { userName: ['a@example.com', 'b@example.com'] }), 'userName must be a single value, not a list'],
      ['manager-list', user(id('M'), {}, { manager: { value: ['E1', 'E2'] } }), `${ENTERPRISE}:manager.value must be a single value, not a list`],
      ['title-object', user(id('O'), { title: { value: 'Boss' } }), 'title must be a string, not an object'],
      ['padded-name', user(id('P'), { name: { givenName: ' Ada ', familyName: 'Lovelace' } }), 'name.givenName must not start or end with white space'],
      ['padded-id', user(` ${id('I')} `), 'externalId must be 1..64 characters of letters, digits, . _ -'],
      ['numeric-id', user(4711), 'externalId must be a string'],
      ['control', user(id('C'), { name: { givenName: 'Ada', familyName: 'Love\u001b]0;pwned\u0007lace' } }), 'name.familyName must not contain control characters, NUL or bidirectional overrides'],
      ['nul', user(id('N'), { displayName: 'Ada\u0000' }), 'displayName must not contain control characters, NUL or bidirectional overrides'],
      ['rtl', user(id('R'), {}, { department: 'Sales\u202Eexe' }), `${ENTERPRISE}:department must not contain control characters, NUL or bidirectional overrides`],
      ['nfd', user(id('D'), { name: { givenName: 'Rene\u0301', familyName: 'Lovelace' } }), 'name.givenName must be in Unicode normalisation form NFC'],
      ['long', user(id('L'), { title: 'x'.repeat(100_000) }), 'title must be at most 256 characters'],
      ['deep-extension', { ...user(id('E')), [HR]: { Badge: nested } }, `${HR}:Badge must be nested at most 8 levels deep`],
      ['dangling-bulkid', user(id('B'), {}, { manager: { value: 'bulkId:c2' } }), `${ENTERPRISE}:manager.value refers to a bulkId that no operation of this request has`],
    ];
    const before = await snapshot();

    const answer = await bulk([...cases.map(([bulkId, data]) => operation(bulkId, data)), operation('good', user(good))]);

    expect(answer.map((op) => [op.bulkId, op.status])).toEqual([...cases.map(([bulkId]) => [bulkId, '400']), ['good', '201']]);
    for (const [index, [bulkId, , detail]] of cases.entries()) {
      expect({ bulkId, response: answer[index]!.response }).toEqual({ bulkId, response: { schemas: [SCIM_SCHEMAS.error], status: '400', scimType: 'invalidValue', detail } });
    }

    // Stored: the good user's hire, and nothing else (not X, the first item of the id list).
    const after = await snapshot();
    expect(after.events.filter((row) => !before.events.some((old) => old.id === row.id))).toEqual([{ id: answer.at(-1)![JML_SCIM_EXTENSION]!.eventId, employeeId: good }]);
    const bad = [...Object.values(ids), 'X'];
    // Once the good hire is in the directory, the whole feed has been through the pipeline:
    // nothing of the bad users is in Postgres or LDAP.
    await applied([good]);
    expect(await ldapEntries(`(uid=${good})`)).toHaveLength(1);
    expect(await rowsFor(bad)).toEqual({ events: [], people: [] });
    for (const employeeId of bad) expect(await ldapEntries(`(uid=${employeeId})`)).toEqual([]);
  });
});

describe('bulkId references (RFC 7644 section 3.7.2)', () => {
  it("stores a manager's bulkId as the referenced person's employee id, in Postgres and LDAP, whatever the order", async () => {
    const [report, boss] = [uniqueEmployeeId('SR'), uniqueEmployeeId('SB')];
    // The report comes first and refers to an operation further on: it is processed after it.
    const answer = await bulk([operation('c1', user(report, {}, { manager: { value: 'bulkId:c2' } })), operation('c2', user(boss, { name: { givenName: 'Grace', familyName: 'Hopper' } }))]);
    expect(answer.map((op) => [op.bulkId, op.status])).toEqual([
      ['c1', '201'],
      ['c2', '201'],
    ]);

    const { events } = await rowsFor([report]);
    expect(events).toHaveLength(1);
    expect(events[0]!.payload).toMatchObject({ type: 'hire', employeeId: report, attributes: { managerId: boss } });
    await applied([report, boss]);
    const { people } = await rowsFor([report, boss]);
    expect(people.find((p) => p.employeeId === report)?.attributes).toMatchObject({ managerId: boss });
    const [entry] = await ldapEntries(`(uid=${report})`, ['manager']);
    expect(String(entry?.manager).toLowerCase()).toBe(`uid=${boss},${testEnv.ldap.usersDN}`.toLowerCase());
    expect(JSON.stringify({ events, people })).not.toContain('bulkId:');
    expect(await ldapEntries('(manager=*bulkId*)')).toEqual([]);
  });

  it('fails an operation on a cycle, with an unknown bulkId, or referring to a failed operation; the others still go through', async () => {
    const [a, b, self, unknown, broken, orphan, boss, report] = ['A', 'B', 'S', 'U', 'F', 'O', 'G', 'R'].map((p) => uniqueEmployeeId(`SC${p}`)) as [string, string, string, string, string, string, string, string];
    const managedBy = (employeeId: string, bulkId: string) => user(employeeId, {}, { manager: { value: `bulkId:${bulkId}` } });
    const before = await snapshot();
    const answer = await bulk([
      operation('a', managedBy(a, 'b')),
      operation('b', managedBy(b, 'a')),
      operation('self', managedBy(self, 'self')),
      operation('unknown', managedBy(unknown, 'nobody')),
      operation('orphan', managedBy(orphan, 'broken')),
      operation('broken', user(broken, { title: ['Boss', 'Janitor'] })),
      operation('report', managedBy(report, 'boss')),
      operation('boss', user(boss)),
    ]);
    const manager = `${ENTERPRISE}:manager.value`;
    expect(answer.map((op) => [op.bulkId, op.status, op.response?.scimType, op.response?.detail])).toEqual([
      ['a', '400', 'invalidValue', `${manager} refers to bulkId "b" on a cycle of bulkId references`],
      ['b', '400', 'invalidValue', `${manager} refers to bulkId "a" on a cycle of bulkId references`],
      ['self', '400', 'invalidValue', `${manager} refers to bulkId "self" on a cycle of bulkId references`],
      ['unknown', '400', 'invalidValue', `${manager} refers to a bulkId that no operation of this request has`],
      ['orphan', '400', 'invalidValue', `${manager} refers to bulkId "broken", whose operation failed`],
      ['broken', '400', 'invalidValue', 'title must be a single value, not a list'],
      ['report', '201', undefined, undefined],
      ['boss', '201', undefined, undefined],
    ]);
    const after = await snapshot();
    const added = after.events.filter((row) => !before.events.some((old) => old.id === row.id)).map((row) => row.employeeId);
    expect(added.sort()).toEqual([boss, report].sort());
    expect(await rowsFor([a, b, self, unknown, broken, orphan])).toEqual({ events: [], people: [] });
    const { events } = await rowsFor([report]);
    expect(events[0]!.payload).toMatchObject({ attributes: { managerId: boss } });
    await applied([report, boss]);
    expect(await rowsFor([a, b, self, unknown, broken, orphan])).toEqual({ events: [], people: [] });
  });
});

describe('bodies that are not JSON we take: a SCIM 400, never a 500', () => {
  async function expectInvalidSyntax(body: string | Buffer, contentType: string, detail: string) {
    const response = await post(body, contentType);
    const answer = { contentType, status: response.statusCode, type: String(response.headers['content-type']).split(';')[0], body: response.json() as unknown };
    expect(answer).toEqual({ contentType, status: 400, type: 'application/scim+json', body: { schemas: [SCIM_SCHEMAS.error], status: '400', scimType: 'invalidSyntax', detail } });
  }

  it('refuses JSON nested 10,000 deep in an extension, whichever JSON media type', async () => {
    const employeeId = uniqueEmployeeId('SN');
    const deep = `${'['.repeat(10_000)}${']'.repeat(10_000)}`;
    const body = bulkRequest([operation('deep', user(employeeId))]).replace('"active":true', `"active":true,"${HR}":{"Deep":${deep}}`);
    expect(body).toContain(deep);
    const before = await snapshot();
    for (const contentType of ['application/scim+json', 'application/scim+json; charset=utf-8', 'application/json']) {
      await expectInvalidSyntax(body, contentType, 'The body is nested deeper than 32 levels.');
    }
    expect(await snapshot()).toEqual(before);
    expect(await rowsFor([employeeId])).toEqual({ events: [], people: [] });
  });

  it('refuses a body that is not valid UTF-8, rather than storing U+FFFD', async () => {
    const employeeId = uniqueEmployeeId('SU');
    const text = bulkRequest([operation('utf8', user(employeeId, { title: 'Eng@@r' }))]);
    const [head, tail] = text.split('@@') as [string, string];
    const bytes = Buffer.concat([Buffer.from(head), Buffer.from([0xff, 0xfe]), Buffer.from(tail)]);
    const before = await snapshot();
    await expectInvalidSyntax(bytes, 'application/scim+json', 'The body is not valid UTF-8.');
    await expectInvalidSyntax(bytes, 'application/json', 'The body is not valid UTF-8.');
    await expectInvalidSyntax('', 'application/scim+json', 'The body is empty.');
    await expectInvalidSyntax('{"schemas":', 'application/scim+json', 'The body is not valid JSON.');
    expect(await snapshot()).toEqual(before);
    expect(await rowsFor([employeeId])).toEqual({ events: [], people: [] });
  });
});
