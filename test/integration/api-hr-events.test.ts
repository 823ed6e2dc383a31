// The HR webhook through the real app (app.inject) against the run's Postgres and Redis:
// signature first, then validation, then a durable row, then a BullMQ nudge.
import { createHmac, randomBytes } from 'node:crypto';
import type { Queue } from 'bullmq';
import { and, eq } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp, type ApiDeps } from '../../api/app.js';
import { createApiToken } from '../../api/auth.js';
import { createMetricsRegistry } from '../../api/metrics.js';
import { createDb, dropDatabase, type DbHandle } from '../../db/client.js';
import { auditLog, hrEvents } from '../../db/schema.js';
import { createHrEventQueue, hrEventJobId, type HrEventJob } from '../../services/hr-event-queue.js';
import { redisConnection } from '../../services/redis.js';
import { testConfig } from '../support/config.js';
import { freshDatabase } from '../support/engine.js';
import { testEnv, uniqueName } from '../support/env.js';

const PATH = '/api/v1/hr/events';
const PUBLIC_URL = 'https://jml.test';
const secret = `whsec_${randomBytes(32).toString('base64')}`;
const signer = new Webhook(secret);

interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  instance: string;
  errors?: Array<{ field: string; message: string }>;
}

let handle: DbHandle;
let databaseUrl: string | undefined;
let queue: Queue<HrEventJob>;
let app: FastifyInstance;
const logLines: string[] = [];
const toClose: Array<() => Promise<unknown>> = [];

function deps(overrides: Partial<ApiDeps> = {}): ApiDeps {
  return {
    db: handle.db,
    hrEventQueue: queue,
    webhookSecrets: [secret],
    config: testConfig(testEnv.ldap),
    publicUrl: PUBLIC_URL,
    health: {
      redis: async () => {
        await queue.getWaitingCount();
      },
      // Test double: these tests do not start a Temporal client; the API only needs a probe.
      temporal: async () => {},
    },
    logger: false,
    metrics: createMetricsRegistry({ defaultMetrics: false }),
    ...overrides,
  };
}

beforeAll(async () => {
  // A database of its own: the health check counts failing grants across the database, and
  // other files seed failing grants in the shared one.
  databaseUrl = await freshDatabase(testEnv.databaseUrl);
  handle = createDb(databaseUrl, { max: 5 });
  queue = createHrEventQueue(redisConnection(testEnv.redisUrl, 'producer'), `${testEnv.redisPrefix}:${uniqueName('api')}`);
  // A logger that writes into memory, so the test can check what was logged.
  app = await buildApp(deps({ logger: { level: 'debug', stream: { write: (line: string) => logLines.push(line) } } }));
});

afterAll(async () => {
  await app?.close();
  for (const close of toClose) await close();
  await queue?.obliterate({ force: true }).catch(() => undefined);
  await queue?.close();
  await handle?.close();
  if (databaseUrl) await dropDatabase(databaseUrl);
});

function hire(employeeId: string, attributes: Record<string, unknown> = {}) {
  return { type: 'hire', employeeId, effectiveAt: '2026-12-01T09:00:00Z', attributes: { givenName: 'Ada', familyName: 'Lovelace', email: 'ada@example.com', department: 'Engineering', ...attributes } };
}

function signedHeaders(payload: string, id: string, options: { at?: Date; webhook?: Webhook } = {}) {
  const at = options.at ?? new Date();
  return {
    'content-type': 'application/json',
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': (options.webhook ?? signer).sign(id, at, payload),
  };
}

async function post(body: unknown, options: { id?: string; at?: Date; webhook?: Webhook; target?: FastifyInstance } = {}) {
  const payload = typeof body === 'string' ? body : JSON.stringify(body);
  const id = options.id ?? uniqueName('msg');
  const response = await (options.target ?? app).inject({ method: 'POST', url: PATH, payload, headers: signedHeaders(payload, id, options) });
  return { id, response };
}

async function rowsWithId(id: string) {
  return handle.db.select().from(hrEvents).where(eq(hrEvents.id, id));
}

async function jobsFor(target: Queue<HrEventJob>, eventId: string) {
  const jobs = await target.getJobs(['waiting', 'active', 'delayed', 'completed', 'failed', 'prioritized']);
  return jobs.filter((job) => job?.data.eventId === eventId);
}

function expectProblem(response: { statusCode: number; headers: Record<string, unknown>; json(): unknown }, status: number, instance = PATH): Problem {
  expect(response.statusCode).toBe(status);
  expect(String(response.headers['content-type'])).toMatch(/^application\/problem\+json/);
  const problem = response.json() as Problem;
  expect(problem).toMatchObject({ status, instance });
  expect(problem.type).toEqual(expect.any(String));
  expect(problem.title).toEqual(expect.any(String));
  return problem;
}

describe('POST /api/v1/hr/events', () => {
  it('stores the event, enqueues one job and answers 202 with a status URL', async () => {
    const employeeId = uniqueName('E').slice(0, 60).toUpperCase();
    const { id, response } = await post(hire(employeeId, { costCentre: 'CC-42' }));

    expect(response.statusCode).toBe(202);
    const statusUrl = `${PUBLIC_URL}${PATH}/${id}`;
    expect(response.json()).toEqual({ id, status: 'received', statusUrl });
    expect(response.headers.location).toBe(statusUrl);

    const [row] = await rowsWithId(id);
    expect(row).toMatchObject({ employeeId, type: 'hire', source: 'webhook', status: 'received' });
    expect(row!.effectiveAt.toISOString()).toBe('2026-12-01T09:00:00.000Z');
    // Unknown attributes are kept as sent.
    expect(row!.payload).toMatchObject({ attributes: { givenName: 'Ada', costCentre: 'CC-42' } });

    const job = await queue.getJob(hrEventJobId(id));
    expect(job?.data).toEqual({ eventId: id });

    const audit = await handle.db.select().from(auditLog).where(and(eq(auditLog.subjectId, id), eq(auditLog.action, 'hr_event.received')));
    expect(audit).toHaveLength(1);
    expect(audit[0]!.actor).toBe('webhook');
  });

  it('defaults effectiveAt to now when the source gives none', async () => {
    const before = Date.now();
    const { id, response } = await post({ type: 'terminate', employeeId: 'E-default-time', attributes: {} });
    expect(response.statusCode).toBe(202);
    const [row] = await rowsWithId(id);
    expect(row!.effectiveAt.getTime()).toBeGreaterThanOrEqual(before - 1_000);
    expect(row!.effectiveAt.getTime()).toBeLessThanOrEqual(Date.now() + 1_000);
  });

  it('answers a repeated id with the first result: one row, one job', async () => {
    const body = hire('E-dup');
    const first = await post(body);
    const second = await post(body, { id: first.id });

    expect(second.response.statusCode).toBe(202);
    expect(second.response.json()).toEqual(first.response.json());
    expect(second.response.headers.location).toBe(first.response.headers.location);
    expect(await rowsWithId(first.id)).toHaveLength(1);
    expect(await jobsFor(queue, first.id)).toHaveLength(1);
    const audit = await handle.db.select().from(auditLog).where(eq(auditLog.subjectId, first.id));
    expect(audit).toHaveLength(1);
  });

  it('treats the same body with keys in another order as the same event', async () => {
    const first = await post(hire('E-order'));
    const reordered = `{"attributes":{"department":"Engineering","email":"ada@example.com","familyName":"Lovelace","givenName":"Ada"},"effectiveAt":"2026-12-01T09:00:00Z","employeeId":"E-order","type":"hire"}`;
    const second = await post(reordered, { id: first.id });
    expect(second.response.statusCode).toBe(202);
  });

  it('answers 409 when an id is reused with a different body, and keeps the first', async () => {
    const first = await post(hire('E-conflict'));
    const second = await post(hire('E-conflict', { department: 'Sales' }), { id: first.id });

    const problem = expectProblem(second.response, 409);
    expect(problem.detail).toMatch(/different body/);
    const rows = await rowsWithId(first.id);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.payload).toMatchObject({ attributes: { department: 'Engineering' } });
  });

  it('refuses a bad signature with 401 and stores nothing', async () => {
    const stranger = new Webhook(`whsec_${randomBytes(32).toString('base64')}`);
    const { id, response } = await post(hire('E-badsig'), { webhook: stranger });
    const problem = expectProblem(response, 401);
    expect(problem.detail).toBe('No matching signature found');
    expect(response.headers['www-authenticate']).toBeTruthy();
    expect(await rowsWithId(id)).toHaveLength(0);
  });

  it('refuses a stale timestamp with 401 and stores nothing', async () => {
    const { id, response } = await post(hire('E-stale'), { at: new Date(Date.now() - 6 * 60_000) });
    expect(expectProblem(response, 401).detail).toBe('Message timestamp too old');
    expect(await rowsWithId(id)).toHaveLength(0);
  });

  it('refuses a timestamp that is not all digits with 401, even when it is signed as sent, and stores nothing', async () => {
    // The library this test signs with elsewhere re-formats the timestamp, so sign by hand.
    const payload = JSON.stringify(hire('E-badts'));
    const id = uniqueName('msg');
    const timestamp = `${Math.floor(Date.now() / 1000)}xyz`;
    const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
    const signature = `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${payload}`).digest('base64')}`;
    const response = await app.inject({ method: 'POST', url: PATH, payload, headers: { 'content-type': 'application/json', 'webhook-id': id, 'webhook-timestamp': timestamp, 'webhook-signature': signature } });
    expect(expectProblem(response, 401).detail).toMatch(/^Invalid timestamp/);
    expect(await rowsWithId(id)).toHaveLength(0);
  });

  it('refuses a body altered after signing', async () => {
    const payload = JSON.stringify(hire('E-tamper'));
    const id = uniqueName('msg');
    const headers = signedHeaders(payload, id);
    const response = await app.inject({ method: 'POST', url: PATH, payload: payload.replace('Lovelace', 'Byron'), headers });
    expectProblem(response, 401);
    expect(await rowsWithId(id)).toHaveLength(0);
  });

  it('refuses a request without signature headers', async () => {
    const response = await app.inject({ method: 'POST', url: PATH, payload: JSON.stringify(hire('E-nosig')), headers: { 'content-type': 'application/json' } });
    expect(expectProblem(response, 401).detail).toBe('Missing required headers');
  });

  it('answers 400 on malformed JSON (validly signed)', async () => {
    const { id, response } = await post('{"type": "hire", "employeeId": ');
    const problem = expectProblem(response, 400);
    expect(problem.title).toBe('Malformed JSON');
    expect(await rowsWithId(id)).toHaveLength(0);
  });

  it('answers 400 naming every bad field, and stores nothing', async () => {
    const { id, response } = await post({ type: 'hire', employeeId: 'not valid!', effectiveAt: 'tomorrow', attributes: { email: 'not-an-email', givenName: 'Ada' } });
    const problem = expectProblem(response, 400);
    const fields = problem.errors!.map((e) => e.field).sort();
    expect(fields).toEqual(['attributes.email', 'attributes.familyName', 'effectiveAt', 'employeeId']);
    for (const error of problem.errors!) expect(error.message.length).toBeGreaterThan(0);
    expect(await rowsWithId(id)).toHaveLength(0);
  });

  it('folds the employee id and the manager id: `e…` then `E…` are stored as one canonical id', async () => {
    const employeeId = `E-${randomBytes(4).toString('hex').toUpperCase()}`;
    const first = await post(hire(employeeId.toLowerCase(), { managerId: 'e-boss.1' }));
    const second = await post({ type: 'update', employeeId, attributes: { title: 'Lead' } });
    expect(first.response.statusCode).toBe(202);
    expect(second.response.statusCode).toBe(202);
    const [hired] = await rowsWithId(first.id);
    const [updated] = await rowsWithId(second.id);
    expect(hired).toMatchObject({ employeeId, payload: { employeeId, attributes: { managerId: 'E-BOSS.1' } } });
    expect(updated).toMatchObject({ employeeId, payload: { employeeId } });
    const rows = await handle.db.select().from(hrEvents).where(eq(hrEvents.employeeId, employeeId.toLowerCase()));
    expect(rows).toEqual([]);
  });

  it('refuses a padded employee id and a manager id that is not an employee id, naming both, and stores nothing', async () => {
    const { id, response } = await post(hire(' E-padded ', { managerId: 'Grace Hopper' }));
    const problem = expectProblem(response, 400);
    expect(problem.errors!.map((e) => e.field).sort()).toEqual(['attributes.managerId', 'employeeId']);
    expect(problem.errors!.every((e) => e.message === 'must be 1..64 characters of letters, digits, . _ -')).toBe(true);
    expect(await rowsWithId(id)).toHaveLength(0);
  });

  it('answers 400 naming missing fields', async () => {
    const { id, response } = await post({ attributes: {} });
    const fields = expectProblem(response, 400).errors!.map((e) => e.field).sort();
    expect(fields).toEqual(['employeeId', 'type']);
    expect(await rowsWithId(id)).toHaveLength(0);
  });

  it('answers 400 naming `type` for an unknown event type', async () => {
    const { id, response } = await post({ type: 'promote', employeeId: 'E-type', attributes: {} });
    const problem = expectProblem(response, 400);
    expect(problem.errors).toEqual([{ field: 'type', message: expect.stringMatching(/hire/) }]);
    expect(await rowsWithId(id)).toHaveLength(0);
  });

  it('bounds unknown attributes: at most 100 keys', async () => {
    const attributes = Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`extra${i}`, 'x']));
    const { id, response } = await post({ type: 'update', employeeId: 'E-many', attributes });
    expect(expectProblem(response, 400).errors!.map((e) => e.field)).toEqual(['attributes']);
    expect(await rowsWithId(id)).toHaveLength(0);
  });

  // The attribute rules are the shared ones (domain/attributes.ts), the same for SCIM and CSV:
  // nothing is trimmed, normalised or coerced; a value that is not what its field takes is
  // refused, naming the field as the sender wrote it.
  it.each([
    ['a padded name (not trimmed)', { givenName: ' Ada ' }, 'attributes.givenName', /white space/],
    ['a blank name', { familyName: '   ' }, 'attributes.familyName', /white space/],
    ['a title over 256 characters', { title: 'x'.repeat(257) }, 'attributes.title', /at most 256/],
    ['a NUL character', { department: 'Engi\u0000neering' }, 'attributes.department', /control characters, NUL/],
    ['a control character', { location: 'Paris\u001b[2J' }, 'attributes.location', /control characters/],
    ['a right-to-left override', { title: 'Engineer\u202Eer' }, 'attributes.title', /bidirectional/],
    ['a name not in NFC', { familyName: 'Bronte\u0308' }, 'attributes.familyName', /NFC/],
    ['an array for a string', { title: ['Boss', 'Janitor'] }, 'attributes.title', /must be a string/],
    ['a number for a string', { employmentType: 42 }, 'attributes.employmentType', /must be a string/],
    ['an unknown attribute nested too deep', { costCentre: JSON.parse(`${'['.repeat(10)}1${']'.repeat(10)}`) as unknown }, 'attributes.costCentre', /nested at most 8/],
    ['an unknown attribute with a NUL inside', { costCentre: { code: 'CC\u000042' } }, 'attributes.costCentre', /control characters, NUL/],
    ['an attribute name that is not a name', { 'cost centre': 'CC-42' }, 'attributes.cost centre', /attribute names/],
  ] as const)('answers 400 for %s, naming the field, and stores nothing', async (_case, attributes, field, message) => {
    const body = JSON.stringify(hire(`E-rule-${randomBytes(3).toString('hex')}`, attributes as Record<string, unknown>));
    const { id, response } = await post(body);
    const problem = expectProblem(response, 400);
    expect(problem.errors).toEqual([{ field, message: expect.stringMatching(message) }]);
    expect(await rowsWithId(id)).toHaveLength(0);
  });

  it('refuses `__proto__` as an attribute name, and stores nothing', async () => {
    const { id, response } = await post('{"type":"update","employeeId":"E-proto","attributes":{"__proto__":{"isAdmin":true}}}');
    expect(expectProblem(response, 400).errors).toEqual([{ field: 'attributes.__proto__', message: expect.stringMatching(/attribute names/) }]);
    expect(await rowsWithId(id)).toHaveLength(0);
  });

  it('stores what was sent, exactly: non-ASCII names in NFC and an unknown attribute within the bounds', async () => {
    const attributes = { givenName: 'Zoë', familyName: 'Brontë', costCentre: { code: 'CC-42', owners: ['E-1', 'E-2'] } };
    const { id, response } = await post(hire('E-exact', attributes));
    expect(response.statusCode).toBe(202);
    const [row] = await rowsWithId(id);
    expect((row!.payload as { attributes: unknown }).attributes).toEqual({ ...attributes, email: 'ada@example.com', department: 'Engineering' });
  });

  it('answers 413 on a 2 MB body and stores nothing', async () => {
    const { id, response } = await post(hire('E-big', { notes: 'x'.repeat(2 * 1024 * 1024) }));
    expectProblem(response, 413);
    expect(await rowsWithId(id)).toHaveLength(0);
  });

  it('answers 415 for a body that is not JSON', async () => {
    const response = await app.inject({ method: 'POST', url: PATH, payload: 'type=hire', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expectProblem(response, 415);
  });

  it('never logs bodies, personal data, signatures or tokens', async () => {
    const { token } = await createApiToken(handle.db, { name: uniqueName('logcheck'), scopes: ['events:write'] });
    const body = hire('E-logcheck', { email: 'secret.person@example.com', givenName: 'Zenobia' });
    const payload = JSON.stringify(body);
    const id = uniqueName('msg');
    const headers = signedHeaders(payload, id);
    await app.inject({ method: 'POST', url: PATH, payload, headers });
    await app.inject({ method: 'GET', url: `${PATH}/${id}?employeeId=E-logcheck`, headers: { authorization: `Bearer ${token}` } });
    const logged = logLines.join('\n');
    expect(logged).toContain(PATH); // the logger did run
    for (const secretText of ['secret.person@example.com', 'Zenobia', headers['webhook-signature'], token, 'E-logcheck']) {
      expect(logged).not.toContain(secretText);
    }
  });
});

describe('GET /api/v1/hr/events/:id', () => {
  it('shows where the event is, to a token with events:write or identities:read', async () => {
    const { id } = await post(hire('E-status'));
    const writer = await createApiToken(handle.db, { name: uniqueName('writer'), scopes: ['events:write'] });
    const reader = await createApiToken(handle.db, { name: uniqueName('reader'), scopes: ['identities:read'] });
    for (const { token } of [writer, reader]) {
      const response = await app.inject({ method: 'GET', url: `${PATH}/${encodeURIComponent(id)}`, headers: { authorization: `Bearer ${token}` } });
      expect(response.statusCode).toBe(200);
      expect(response.json()).toMatchObject({ id, type: 'hire', employeeId: 'E-STATUS', source: 'webhook', status: 'received', effectiveAt: '2026-12-01T09:00:00.000Z', dispatchedAt: null });
    }
  });

  it('answers 401 without a token, 403 with another scope, 404 for an unknown id', async () => {
    const { id } = await post(hire('E-status-auth'));
    const unauthenticated = await app.inject({ method: 'GET', url: `${PATH}/${id}` });
    expectProblem(unauthenticated, 401, `${PATH}/${id}`);
    expect(unauthenticated.headers['www-authenticate']).toMatch(/^Bearer/);

    const other = await createApiToken(handle.db, { name: uniqueName('other'), scopes: ['alerts:write'] });
    const forbidden = await app.inject({ method: 'GET', url: `${PATH}/${id}`, headers: { authorization: `Bearer ${other.token}` } });
    expect(forbidden.statusCode).toBe(403);

    const admin = await createApiToken(handle.db, { name: uniqueName('admin'), scopes: ['admin'] });
    const missing = await app.inject({ method: 'GET', url: `${PATH}/no-such-event`, headers: { authorization: `Bearer ${admin.token}` } });
    expect(missing.statusCode).toBe(404);
    expect(missing.headers['content-type']).toMatch(/^application\/problem\+json/);
  });
});

describe('when a dependency is down', () => {
  it('answers 503 with Retry-After when Postgres is unreachable, and stores nothing', async () => {
    const deadDb = createDb('postgres://postgres@127.0.0.1:1/jml', { max: 1 });
    toClose.push(() => deadDb.close());
    const down = await buildApp(deps({ db: deadDb.db }));
    toClose.push(() => down.close());

    const { id, response } = await post(hire('E-pgdown'), { target: down });
    const problem = expectProblem(response, 503);
    expect(response.headers['retry-after']).toBe('5');
    expect(problem.detail).not.toMatch(/127\.0\.0\.1|ECONNREFUSED|insert/i);
    expect(await rowsWithId(id)).toHaveLength(0);
    expect(await jobsFor(queue, id)).toHaveLength(0);

    const health = await down.inject({ method: 'GET', url: '/api/health' });
    expect(health.statusCode).toBe(503);
    expect(health.json()).toMatchObject({ checks: { postgres: 'failing', redis: 'ok', temporal: 'ok' } });
  });

  it('still answers 202 when Redis is unreachable; the row stays received for the dispatcher', async () => {
    const deadQueue = createHrEventQueue(redisConnection('redis://127.0.0.1:1', 'producer'), `${testEnv.redisPrefix}:${uniqueName('dead')}`);
    toClose.push(() => deadQueue.close());
    const down = await buildApp(deps({ hrEventQueue: deadQueue, enqueueTimeoutMs: 1_000, health: { redis: async () => void (await deadQueue.getWaitingCount()), temporal: async () => {} } }));
    toClose.push(() => down.close());

    const { id, response } = await post(hire('E-redisdown'), { target: down });
    expect(response.statusCode).toBe(202);
    expect(response.json()).toMatchObject({ id, status: 'received' });
    const [row] = await rowsWithId(id);
    expect(row).toMatchObject({ status: 'received', dispatchedAt: null });

    const health = await down.inject({ method: 'GET', url: '/api/health' });
    // Events are still accepted: degraded, not down.
    expect(health.statusCode).toBe(200);
    expect(health.json()).toMatchObject({ status: 'degraded' });
    const checks = (health.json() as { checks: Record<string, string> }).checks;
    expect(checks.postgres).toBe('ok');
    expect(checks.redis).not.toBe('ok');
  });
});

describe('health and metrics', () => {
  it('reports every dependency ok', async () => {
    const response = await app.inject({ method: 'GET', url: '/api/health' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({ status: 'ok', reasons: [], checks: { postgres: 'ok', redis: 'ok', temporal: 'ok' }, targets: { directory: { reachable: true, bindOk: true } } });
  });

  it('names a check that hangs as timed out', async () => {
    const slow = await buildApp(deps({ healthTimeoutMs: 200, health: { redis: async () => {}, temporal: () => new Promise(() => {}) } }));
    toClose.push(() => slow.close());
    const response = await slow.inject({ method: 'GET', url: '/api/health' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({ status: 'degraded', reasons: ['temporal not answering (timeout)'], checks: { postgres: 'ok', redis: 'ok', temporal: 'timeout' } });
  });

  it('exposes request and accepted-event counters', async () => {
    await post(hire('E-metrics'));
    const response = await app.inject({ method: 'GET', url: '/metrics' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/plain/);
    expect(response.body).toMatch(/jml_hr_events_accepted_total\{source="webhook"\} [1-9]/);
    expect(response.body).toMatch(/jml_http_requests_total\{route="\/api\/v1\/hr\/events",method="POST",status="202"\} [1-9]/);
  });

  it('answers unknown routes with a problem', async () => {
    const response = await app.inject({ method: 'GET', url: '/api/v1/nope' });
    expect(response.statusCode).toBe(404);
    expect(response.json()).toMatchObject({ status: 404, title: 'Not found', instance: '/api/v1/nope' });
  });
});
