// The same bad inputs through all three doors HR data comes in by: the webhook, SCIM and
// CSV import. Each is answered 4xx naming the field as that door's sender knows it (the
// webhook's `attributes.title`, SCIM's `title`, the CSV's `JobTitle` column), and a
// snapshot of the engine's tables and of the whole directory tree, taken before and after,
// shows that nothing changed. A case a door cannot express (a JSON array in a CSV cell)
// runs through the doors that can; the CSV-only cases (a header named twice, 100,000
// columns) close the table. The directory is a private slapd, so the tree's snapshot sees no
// other test file's writes.
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { asc, count, ne } from 'drizzle-orm';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { Client as LdapClient } from 'ldapts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiToken } from '../../api/auth.js';
import { auditLog, grants, hrBatches, hrEvents, identities } from '../../db/schema.js';
import { SCIM_SCHEMAS } from '../../domain/scim.js';
import { startSlapd, type SlapdServer } from '../../scripts/slapd.js';
import { buildTestApp, newWebhookSecret } from '../support/api.js';
import { testConfig } from '../support/config.js';
import { startTestEngine, type TestEngine } from '../support/engine.js';
import { uniqueEmployeeId, uniqueName } from '../support/env.js';

type Door = 'webhook' | 'scim' | 'csv';
type Attribute = 'givenName' | 'familyName' | 'title' | 'costCenter';

/** How each door names a field: the webhook's JSON path, SCIM's attribute path, the CSV column. */
const FIELD: Record<Door, Record<Attribute | 'employeeId', string>> = {
  webhook: { givenName: 'attributes.givenName', familyName: 'attributes.familyName', title: 'attributes.title', costCenter: 'attributes.costCenter', employeeId: 'employeeId' },
  scim: { givenName: 'name.givenName', familyName: 'name.familyName', title: 'title', costCenter: 'costCenter', employeeId: 'externalId' },
  csv: { givenName: 'FirstName', familyName: 'LastName', title: 'JobTitle', costCenter: 'CostCenter', employeeId: 'WorkerID' },
};

interface BadCase {
  name: string;
  /** The field set to `value` (the rest of the hire is good), or the raw-bytes case. */
  field: Attribute | 'employeeId' | 'bytes';
  value: unknown;
  doors: Door[];
  /** For a fault of the whole body (per door, when it differs): what the answer says instead of a field's name. */
  says?: RegExp | Partial<Record<Door, RegExp>>;
}

/** JSON text put in place of a value as is: a value nested this deep cannot be built and stringified here. */
class RawJson {
  constructor(readonly text: string) {}
}

const deep = (levels: number) => new RawJson(`${'['.repeat(levels)}"x"${']'.repeat(levels)}`);
const ALL: Door[] = ['webhook', 'scim', 'csv'];
const JSON_DOORS: Door[] = ['webhook', 'scim'];

const CASES: BadCase[] = [
  { name: 'a 257-character title', field: 'title', value: 'x'.repeat(257), doors: ALL },
  // The CSV's line limit (64 KiB) answers before the cell's own cap.
  { name: 'a 100,000-character title', field: 'title', value: 'x'.repeat(100_000), doors: ALL, says: { csv: /a line may have at most/ } },
  { name: 'a terminal escape sequence', field: 'title', value: '\u001b[2J\u001b[31mBoss', doors: ALL },
  { name: 'a control character', field: 'givenName', value: 'A\u0007da', doors: ALL },
  { name: 'a NUL', field: 'familyName', value: 'Love\u0000lace', doors: ALL },
  { name: 'a right-to-left override', field: 'familyName', value: 'Love\u202Ecal', doors: ALL },
  { name: 'a name not in NFC', field: 'givenName', value: 'Ade\u0301le', doors: ALL },
  { name: 'a padded name', field: 'givenName', value: ' Ada ', doors: ALL },
  { name: 'an unknown attribute of 300 characters', field: 'costCenter', value: 'c'.repeat(300), doors: ALL },
  { name: 'an array for a string', field: 'title', value: ['Boss', 'Janitor'], doors: JSON_DOORS },
  { name: 'a number for a string', field: 'familyName', value: 42, doors: JSON_DOORS },
  { name: 'nesting 10,000 deep', field: 'costCenter', value: deep(10_000), doors: JSON_DOORS, says: /nested deeper than/ },
  // JSON's form of a CSV header named twice: JSON.parse would keep the last one silently.
  { name: 'an object naming a key twice', field: 'costCenter', value: new RawJson('{"code":"A","code":"B"}'), doors: JSON_DOORS, says: /names the key \\"code\\" twice/ },
  { name: 'a padded id', field: 'employeeId', value: ' E9001 ', doors: ALL },
  { name: 'an id in full-width letters', field: 'employeeId', value: '\uFF25\uFF19\uFF10\uFF10\uFF12', doors: ALL },
  { name: 'an id with a Kelvin sign (lower-cases to k)', field: 'employeeId', value: 'E\u212A9003', doors: ALL },
  { name: 'an id with a NUL', field: 'employeeId', value: 'E9004\u0000', doors: ALL },
  { name: 'bytes that are not UTF-8', field: 'bytes', value: null, doors: ALL, says: /UTF-8/ },
];

const BULK = '/api/v1/scim/v2/Bulk';
const IMPORTS = '/api/v1/hr/imports';
const CSV_HEADER = ['WorkerID', 'WorkerStatus', 'WorkerType', 'FirstName', 'LastName', 'JobTitle', 'CostCenter'];
/** Bytes that no UTF-8 decoder accepts; a lossy one makes them U+FFFD. */
const NOT_UTF8 = Buffer.from([0xff, 0xfe]);

let dir: string;
let slapd: SlapdServer;
let engine: TestEngine;
let app: FastifyInstance;
let token: string;
const secret = newWebhookSecret();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'jml-slapd-doors-'));
  slapd = await startSlapd({ dir });
  engine = await startTestEngine({ config: testConfig(slapd) });
  app = await buildTestApp(engine, { secret });
  ({ token } = await createApiToken(engine.db, { name: uniqueName('feeds'), scopes: ['events:write'] }));
});
afterAll(async () => {
  await app?.close();
  await engine?.stop();
  await slapd?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A good hire as each door sends it, with one field replaced; the employee id fresh unless replaced. */
function good(field: BadCase['field']): { employeeId: unknown; attributes: Record<string, unknown> } {
  return { employeeId: field === 'employeeId' ? undefined : uniqueEmployeeId('D'), attributes: { givenName: 'Ada', familyName: 'Lovelace', title: 'Analyst', costCenter: 'CC-1' } };
}

/** Signs raw bytes as Standard Webhooks specifies (the HR system's side). */
function signed(body: Buffer) {
  const id = `msg_${randomBytes(12).toString('hex')}`;
  const timestamp = String(Math.floor(Date.now() / 1000));
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  const signature = createHmac('sha256', key).update(`${id}.${timestamp}.`).update(body).digest('base64');
  return { 'content-type': 'application/json', 'webhook-id': id, 'webhook-timestamp': timestamp, 'webhook-signature': `v1,${signature}` };
}

/** Text with the marker replaced by raw bytes. */
function withRawBytes(text: string, marker: string): Buffer {
  const [before, after] = text.split(marker) as [string, string];
  return Buffer.concat([Buffer.from(before), NOT_UTF8, Buffer.from(after)]);
}

const MARKER = 'RAW-BYTES-HERE';
const RAW_JSON = 'RAW-JSON-HERE';

/** JSON.stringify, with a RawJson value written as its text. */
function toJson(value: unknown): string {
  let raw = '';
  const json = JSON.stringify(value, (_key, v: unknown) => {
    if (!(v instanceof RawJson)) return v;
    raw = v.text;
    return RAW_JSON;
  });
  return raw ? json.replace(`"${RAW_JSON}"`, raw) : json;
}

async function send(door: Door, bad: BadCase): Promise<LightMyRequestResponse> {
  const hire = good(bad.field);
  const employeeId = bad.field === 'employeeId' ? bad.value : hire.employeeId;
  const attributes: Record<string, unknown> = { ...hire.attributes };
  if (bad.field === 'bytes') attributes.familyName = MARKER;
  else if (bad.field !== 'employeeId') attributes[bad.field] = bad.value;
  if (door === 'webhook') {
    const json = toJson({ type: 'hire', employeeId, attributes: { ...attributes, employmentType: 'employee' } });
    const body = bad.field === 'bytes' ? withRawBytes(json, MARKER) : Buffer.from(json);
    return app.inject({ method: 'POST', url: '/api/v1/hr/events', payload: body, headers: signed(body) });
  }
  if (door === 'scim') {
    const { givenName, familyName, costCenter, ...rest } = attributes;
    const user = { schemas: [SCIM_SCHEMAS.user, SCIM_SCHEMAS.enterpriseUser], externalId: employeeId, userName: 'ada@example.com', active: true, name: { givenName, familyName }, ...rest, [SCIM_SCHEMAS.enterpriseUser]: { costCenter } };
    const json = toJson({ schemas: [SCIM_SCHEMAS.bulkRequest], Operations: [{ method: 'POST', bulkId: 'u1', path: '/Users', data: user }] });
    const body = bad.field === 'bytes' ? withRawBytes(json, MARKER) : Buffer.from(json);
    return app.inject({ method: 'POST', url: BULK, payload: body, headers: { 'content-type': 'application/scim+json', authorization: `Bearer ${token}` } });
  }
  const cells = [employeeId, 'Active', 'Employee', attributes.givenName, attributes.familyName, attributes.title, attributes.costCenter].map((cell) => {
    const text = String(cell);
    return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
  });
  const csv = `${CSV_HEADER.join(',')}\n${cells.join(',')}\n`;
  const body = bad.field === 'bytes' ? withRawBytes(csv, MARKER) : Buffer.from(csv);
  return app.inject({ method: 'POST', url: IMPORTS, payload: body, headers: { 'content-type': 'text/csv', authorization: `Bearer ${token}` } });
}

/**
 * The answer's status and text where the field must be named. A SCIM bulk answers 200
 * overall with a status per operation (RFC 7644 3.7): the operation's own counts then.
 */
function outcome(door: Door, response: LightMyRequestResponse): { status: number; text: string } {
  if (door === 'scim' && response.statusCode === 200) {
    const [operation] = (response.json() as { Operations: Array<{ status: string; response?: unknown }> }).Operations;
    return { status: Number(operation?.status), text: JSON.stringify(operation?.response ?? {}) };
  }
  return { status: response.statusCode, text: response.body };
}

/** Everything an input could change: the engine's tables and the whole directory tree. */
async function snapshot() {
  const db = engine.db;
  const ldap = new LdapClient({ url: slapd.url });
  try {
    await ldap.bind(slapd.bindDN, slapd.bindPassword);
    const { searchEntries } = await ldap.search(slapd.baseDN, { scope: 'sub', filter: '(objectClass=*)', attributes: ['*', 'modifyTimestamp', 'entryCSN'] });
    return {
      events: await db.select().from(hrEvents).orderBy(asc(hrEvents.id)),
      people: await db.select().from(identities).orderBy(asc(identities.employeeId)),
      grants: await db.select().from(grants).orderBy(asc(grants.id)),
      batches: await db.select().from(hrBatches).orderBy(asc(hrBatches.id)),
      // Alerts aside: a refused input raises event_rejected (services/input-rejections.ts), off the refusal's path.
      audit: (await db.select({ n: count() }).from(auditLog).where(ne(auditLog.subjectType, 'alert')))[0]!.n,
      directory: searchEntries.map((e) => JSON.stringify(e)).sort(),
    };
  } finally {
    await ldap.unbind();
  }
}

describe('the same bad input through the webhook, SCIM and the CSV import', () => {
  const rows = CASES.flatMap((bad) => bad.doors.map((door) => ({ ...bad, door })));

  it.each(rows)('$door: $name is a 4xx naming the field, and changes nothing', async (bad) => {
    const before = await snapshot();
    const { status, text } = outcome(bad.door, await send(bad.door, bad));
    expect(status).toBeGreaterThanOrEqual(400);
    expect(status).toBeLessThan(500);
    // A fault of the whole body says what it is; any other names the field as the door spells it.
    const says = bad.says instanceof RegExp ? bad.says : bad.says?.[bad.door];
    if (says) expect(text).toMatch(says);
    else expect(text).toContain(FIELD[bad.door][bad.field as Attribute | 'employeeId']);
    // Nothing of the input echoed back: not a control character, nor the long value.
    for (const raw of ['\u0000', '\u0007', '\u001b', '\u202e']) expect(text).not.toContain(raw);
    expect(text).not.toContain('x'.repeat(257));
    expect(await snapshot()).toEqual(before);
  });

  it('csv: a column named twice is a 400 naming it, and changes nothing', async () => {
    const before = await snapshot();
    const csv = `${[...CSV_HEADER, 'JobTitle'].join(',')}\n${uniqueEmployeeId('D')},Active,Employee,Ada,Lovelace,Analyst,CC-1,Janitor\n`;
    const response = await app.inject({ method: 'POST', url: IMPORTS, payload: csv, headers: { 'content-type': 'text/csv', authorization: `Bearer ${token}` } });
    expect(response.statusCode).toBe(400);
    expect(response.body).toContain('JobTitle');
    expect(await snapshot()).toEqual(before);
  });

  it('csv: 100,000 columns is a 4xx naming the column limit, and changes nothing', async () => {
    const before = await snapshot();
    const header = [...CSV_HEADER, ...Array.from({ length: 100_000 }, (_, i) => `C${i}`)].join(',');
    const row = [uniqueEmployeeId('D'), 'Active', 'Employee', 'Ada', 'Lovelace', 'Analyst', 'CC-1', ...Array.from({ length: 100_000 }, () => 'v')].join(',');
    const response = await app.inject({ method: 'POST', url: IMPORTS, payload: `${header}\n${row}\n`, headers: { 'content-type': 'text/csv', authorization: `Bearer ${token}` } });
    expect(response.statusCode).toBeGreaterThanOrEqual(400);
    expect(response.statusCode).toBeLessThan(500);
    expect(response.json()).toMatchObject({ errors: [expect.objectContaining({ field: 'columns' })] });
    expect(await snapshot()).toEqual(before);
  });

  it('every door takes the good hire the cases were made from (the table is not refusing everything)', async () => {
    for (const door of ALL) {
      const { status } = outcome(door, await send(door, { name: 'good', field: 'costCenter', value: 'CC-2', doors: [door] }));
      expect(status, door).toBeLessThan(300);
    }
  });
});
