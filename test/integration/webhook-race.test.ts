// One new webhook-id sent at the same moment as a hire and as a terminate: the hire goes
// through the batched inbox writer (db/inbox.ts), the terminate past the mass-leaver brake
// (services/feeds.ts), and both race to insert the same id. Exactly one is stored; the
// other body is a different event under the same key, so it is answered 409, never 503.
import { randomBytes } from 'node:crypto';
import type { Queue } from 'bullmq';
import { eq } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../api/app.js';
import { createMetricsRegistry } from '../../api/metrics.js';
import { verifyAuditChain } from '../../db/audit.js';
import { createDb, dropDatabase, ensureDatabase, runMigrations, type DbHandle } from '../../db/client.js';
import { hrEvents } from '../../db/schema.js';
import { createHrEventQueue, type HrEventJob } from '../../services/hr-event-queue.js';
import { redisConnection } from '../../services/redis.js';
import { newWebhookSecret, signedWebhook } from '../support/api.js';
import { testConfig } from '../support/config.js';
import { testEnv, uniqueEmployeeId, uniqueName } from '../support/env.js';

const ROUNDS = 20;
const secret = newWebhookSecret();

let databaseUrl: string;
let handle: DbHandle;
let queue: Queue<HrEventJob>;
let app: FastifyInstance;

beforeAll(async () => {
  // Its own database: the terminations below count in the brake's window, which is database-wide.
  const url = new URL(testEnv.databaseUrl);
  url.pathname = `${url.pathname}_race_${randomBytes(4).toString('hex')}`;
  databaseUrl = url.toString();
  await ensureDatabase(databaseUrl);
  await runMigrations(databaseUrl);
  handle = createDb(databaseUrl, { max: 5 });
  queue = createHrEventQueue(redisConnection(testEnv.redisUrl, 'producer'), `${testEnv.redisPrefix}:${uniqueName('race')}`);
  app = await buildApp({
    db: handle.db,
    hrEventQueue: queue,
    webhookSecrets: [secret],
    // The brake off: this test is about the race on the key, not about holding leavers.
    config: testConfig(testEnv.ldap, { brake: { maxTerminations: 0, maxShare: 0 } }),
    publicUrl: 'http://jml.test',
    logger: false,
    metrics: createMetricsRegistry({ defaultMetrics: false }),
    // Test double: the health probes are not what this test looks at.
    health: { redis: async () => {}, temporal: async () => {} },
  });
});

afterAll(async () => {
  await app?.close();
  await queue?.obliterate({ force: true }).catch(() => undefined);
  await queue?.close();
  await handle?.close();
  if (databaseUrl) await dropDatabase(databaseUrl);
});

function post(id: string, body: unknown) {
  const request = signedWebhook(secret, body, { id });
  return app.inject({ method: 'POST', url: '/api/v1/hr/events', payload: request.payload, headers: request.headers });
}

describe('one new webhook-id as a hire and as a terminate at the same moment', () => {
  it(`answers one 202 and one 409, and stores the 202's event, ${ROUNDS} times over`, async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const id = uniqueName('race');
      const employeeId = uniqueEmployeeId('R');
      const hire = { type: 'hire', employeeId, attributes: { givenName: 'Grace', familyName: 'Hopper' } };
      const terminate = { type: 'terminate', employeeId };
      const [hired, terminated] = await Promise.all([post(id, hire), post(id, terminate)]);

      const codes = [hired.statusCode, terminated.statusCode].sort();
      expect(codes, `round ${round}: ${hired.body} / ${terminated.body}`).toEqual([202, 409]);
      const accepted = hired.statusCode === 202 ? 'hire' : 'terminate';
      const conflict = hired.statusCode === 409 ? hired : terminated;
      expect(conflict.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(conflict.json()).toMatchObject({ status: 409, type: 'urn:jml:problem:idempotency-key-reuse' });
      const rows = await handle.db.select({ type: hrEvents.type }).from(hrEvents).where(eq(hrEvents.id, id));
      expect(rows).toEqual([{ type: accepted }]);
    }
    expect((await verifyAuditChain(handle.db)).ok).toBe(true);
  });
});
