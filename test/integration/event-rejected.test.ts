// `event_rejected`: HR input an authenticated sender had refused as invalid (the signed
// webhook, SCIM bulk, the CSV import) raises one alert per source and field, counted on every
// repeat, naming the field and the rule but no value from the payload; an unauthenticated
// request raises nothing; and a held batch of terminations that an admin discards raises one
// alert for that batch. The app runs over a database of its own (alerts are counted), with
// no Temporal: none of this needs a workflow.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eq, like } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import type { Queue } from 'bullmq';
import { buildApp } from '../../api/app.js';
import { createApiToken } from '../../api/auth.js';
import { createMetricsRegistry } from '../../api/metrics.js';
import { createDb, dropDatabase, type DbHandle } from '../../db/client.js';
import { alerts } from '../../db/schema.js';
import { SCIM_SCHEMAS } from '../../domain/scim.js';
import { discardBatch, submitFeed } from '../../services/feeds.js';
import { createHrEventQueue, type HrEventJob } from '../../services/hr-event-queue.js';
import { reportRejectedInput } from '../../services/input-rejections.js';
import { redisConnection } from '../../services/redis.js';
import { newWebhookSecret, signedWebhook } from '../support/api.js';
import { testConfig } from '../support/config.js';
import { eventually, freshDatabase } from '../support/engine.js';
import { testEnv, uniqueEmployeeId, uniqueName } from '../support/env.js';

const secret = newWebhookSecret();
// Values that must never reach an alert: a name and an address as HR would send them.
const SECRET_NAME = 'Zebulon-Quarterhouse';
const BAD_EMAIL = 'zebulon.quarterhouse(at)example';

let handle: DbHandle;
let databaseUrl: string;
let queue: Queue<HrEventJob>;
let app: FastifyInstance;
let writer: string;

const alertOf = async (dedupeKey: string) => (await handle.db.select().from(alerts).where(eq(alerts.dedupeKey, dedupeKey)))[0];
/** Waits until the alert has been raised `count` times (raising is off the refusal's path). */
const seen = (dedupeKey: string, count: number) =>
  eventually(async () => {
    const alert = await alertOf(dedupeKey);
    return alert !== undefined && alert.count >= count && alert;
  }, 10_000);

function webhook(body: unknown, key = secret) {
  const request = signedWebhook(key, body);
  return app.inject({ method: 'POST', url: '/api/v1/hr/events', payload: request.payload, headers: request.headers });
}
const badHire = () => ({ type: 'hire', employeeId: uniqueEmployeeId('R'), attributes: { givenName: SECRET_NAME, familyName: SECRET_NAME, email: BAD_EMAIL } });

beforeAll(async () => {
  databaseUrl = await freshDatabase(testEnv.databaseUrl);
  handle = createDb(databaseUrl, { max: 3 });
  queue = createHrEventQueue(redisConnection(testEnv.redisUrl, 'producer'), `${testEnv.redisPrefix}:${uniqueName('rejected')}`);
  app = await buildApp({
    db: handle.db,
    hrEventQueue: queue,
    webhookSecrets: [secret],
    config: testConfig(testEnv.ldap),
    publicUrl: 'http://jml.test',
    logger: false,
    metrics: createMetricsRegistry({ defaultMetrics: false }),
    // Test double: the health probes are not what these tests look at.
    health: { redis: async () => {}, temporal: async () => {} },
  });
  writer = (await createApiToken(handle.db, { name: uniqueName('hr-feed'), scopes: ['events:write'] })).token;
});

afterAll(async () => {
  await app?.close();
  await queue?.close();
  await handle?.close();
  if (databaseUrl) await dropDatabase(databaseUrl);
});

describe('event_rejected for refused HR input', () => {
  it('webhook: one alert per field, counted on a repeat, with no value of the payload; an unsigned request raises nothing', async () => {
    // Unsigned (a signature under another secret): 401, before anything is read.
    const forged = await webhook({ type: 'hire', employeeId: 'X1', attributes: { givenName: 'A', familyName: 'B', title: 7 } }, newWebhookSecret());
    expect(forged.statusCode).toBe(401);

    const first = await webhook(badHire());
    expect(first.statusCode).toBe(400);
    const alert = await seen('event_rejected:webhook:attributes.email', 1);
    expect(alert).toMatchObject({ kind: 'event_rejected', severity: 'warning', status: 'open', details: { source: 'webhook', field: 'attributes.email', reason: 'must be an e-mail address' } });
    expect(JSON.stringify(alert)).not.toContain(SECRET_NAME);
    expect(JSON.stringify(alert)).not.toContain('zebulon');

    // The same problem again, from another event: the same alert, counted.
    expect((await webhook(badHire())).statusCode).toBe(400);
    await seen('event_rejected:webhook:attributes.email', 2);
    expect(await handle.db.select().from(alerts).where(like(alerts.dedupeKey, 'event_rejected:webhook:attributes.email'))).toHaveLength(1);

    // Body that is not JSON at all: the body is the field.
    const notJson = signedWebhook(secret, '{"type": "hire",');
    expect((await app.inject({ method: 'POST', url: '/api/v1/hr/events', payload: notJson.payload, headers: notJson.headers })).statusCode).toBe(400);
    expect(await seen('event_rejected:webhook:(body)', 1)).toMatchObject({ details: { source: 'webhook', field: '(body)', reason: 'The body is not valid JSON.' } });

    // Raised after the unsigned request was refused, and that one raised nothing (its field is its own).
    expect(await alertOf('event_rejected:webhook:attributes.title')).toBeUndefined();
  });

  it('SCIM: each operation refused as invalid raises its field (positions folded), unauthenticated requests nothing', async () => {
    const user = (active: unknown) => ({
      schemas: [SCIM_SCHEMAS.user],
      externalId: uniqueEmployeeId('S'),
      userName: `${SECRET_NAME}@example.com`,
      name: { givenName: SECRET_NAME, familyName: SECRET_NAME },
      active,
    });
    const body = (active: unknown) =>
      JSON.stringify({ schemas: [SCIM_SCHEMAS.bulkRequest], Operations: [1, 2].map((n) => ({ method: 'POST', bulkId: `u${n}`, path: '/Users', data: user(active) })) });
    const post = (payload: string, headers: Record<string, string>) =>
      app.inject({ method: 'POST', url: '/api/v1/scim/v2/Bulk', payload, headers: { 'content-type': 'application/scim+json', ...headers } });

    expect((await post(body('sometimes'), {})).statusCode).toBe(401);
    const refused = await post(body('maybe'), { authorization: `Bearer ${writer}` });
    expect(refused.statusCode).toBe(200);
    expect(refused.json<{ Operations: Array<{ status: string }> }>().Operations.map((o) => o.status)).toEqual(['400', '400']);
    // Two operations, one problem: one alert, raised once for the request.
    const alert = await seen('event_rejected:scim:active', 1);
    expect(alert).toMatchObject({ count: 1, details: { source: 'scim', field: 'active', reason: 'must be a boolean.' } });
    expect(JSON.stringify(alert)).not.toContain(SECRET_NAME);
    expect(JSON.stringify(alert)).not.toContain('maybe');

    const broken = await post('{"schemas": [', { authorization: `Bearer ${writer}` });
    expect(broken.statusCode).toBe(400);
    await seen('event_rejected:scim:(body)', 1);
    expect((await alertOf('event_rejected:scim:active'))?.count).toBe(1);
  });

  it('CSV: a file whose every row is refused raises each refused column; a dry run raises nothing', async () => {
    const post = (csv: string, query = '') =>
      app.inject({ method: 'POST', url: `/api/v1/hr/imports${query}`, payload: csv, headers: { 'content-type': 'text/csv', authorization: `Bearer ${writer}` } });
    // A dry run first, its rows refused for a column of their own: the sender checking a file.
    expect((await post(`WorkerID,WorkerStatus,FirstName,LastName\n${uniqueEmployeeId('C')},,Ann,Other\n`, '?dryRun=true')).statusCode).toBe(422);
    expect((await post(`WorkerID,WorkerStatus,FirstName,LastName\n,Active,${SECRET_NAME},${SECRET_NAME}\n,Active,Ann,Other\n`)).statusCode).toBe(422);
    const alert = await seen('event_rejected:csv:WorkerID', 1);
    expect(alert).toMatchObject({ count: 1, details: { source: 'csv', field: 'WorkerID', reason: 'is empty' } });
    expect(JSON.stringify(alert)).not.toContain(SECRET_NAME);
    expect(await alertOf('event_rejected:csv:WorkerStatus')).toBeUndefined();
  });

  it('a held batch that an admin discards raises one event_rejected for that batch, saying how many and who', async () => {
    const events = Array.from({ length: 3 }, () => {
      const employeeId = uniqueEmployeeId('T');
      return { id: uniqueName('terminate'), employeeId, type: 'terminate' as const, effectiveAt: new Date(), source: 'api' as const, payload: { type: 'terminate', employeeId, attributes: {} } };
    });
    const config = testConfig(testEnv.ldap);
    const feed = await submitFeed({ db: handle.db, queue, config: { ...config, brake: { ...config.brake, maxTerminations: 2, maxShare: 0 } } }, { source: 'api', actor: 'test', events });
    expect(feed.status).toBe('held');
    await discardBatch(handle.db, feed.batchId, 'api:hr-admin', 'the wrong extract');
    const alert = await alertOf(`event_rejected:batch:${feed.batchId}`);
    expect(alert).toMatchObject({ kind: 'event_rejected', severity: 'warning', status: 'open', count: 1, details: { batchId: feed.batchId, count: 3, discardedBy: 'api:hr-admin', source: 'api' } });
    expect(alert?.subject).toContain('3 held terminations');
    for (const e of events) expect(JSON.stringify(alert)).not.toContain(e.employeeId);
  });

  it('a raising that cannot reach Postgres is logged and never thrown', async () => {
    const closed = createDb(databaseUrl, { max: 1 });
    await closed.close();
    // Test double: a logger that records what it is told.
    const warned: Array<Record<string, unknown>> = [];
    await expect(reportRejectedInput(closed.db, { warn: (obj) => warned.push(obj) }, 'webhook', [{ field: 'type', reason: 'must be one of …' }])).resolves.toBeUndefined();
    expect(warned).toEqual([expect.objectContaining({ source: 'webhook' })]);
    expect(await alertOf('event_rejected:webhook:type')).toBeUndefined();
  });
});
