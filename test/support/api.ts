// The real Fastify app over a test engine, and HR webhooks signed as Standard Webhooks
// specifies: what every test that goes through the HTTP API shares.
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { Webhook } from 'standardwebhooks';
import { buildApp, type ApiDeps } from '../../api/app.js';
import { createMetricsRegistry } from '../../api/metrics.js';
import { createDb, type DbHandle } from '../../db/client.js';
import { createHrEventQueue } from '../../services/hr-event-queue.js';
import { redisConnection } from '../../services/redis.js';
import { testConfig } from './config.js';
import type { TestEngine } from './engine.js';
import { testEnv, uniqueName } from './env.js';

export function newWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

/** The app over `engine`, with its Temporal client and task queue, quiet logs and its own metrics. */
export function buildTestApp(engine: TestEngine, options: { secret?: string } & Partial<ApiDeps> = {}): Promise<FastifyInstance> {
  const { secret, ...overrides } = options;
  return buildApp({
    db: engine.db,
    hrEventQueue: engine.queue,
    webhookSecrets: secret ? [secret] : [],
    config: engine.config,
    temporal: engine.client,
    taskQueue: engine.taskQueue,
    publicUrl: 'http://jml.test',
    logger: false,
    metrics: createMetricsRegistry({ defaultMetrics: false }),
    // Test double: the health probes are not what these tests look at.
    health: { redis: async () => {}, temporal: async () => {} },
    ...overrides,
  });
}

/** A webhook request body and headers, signed over the exact bytes sent. */
export function signedWebhook(secret: string, body: unknown, options: { id?: string; at?: Date } = {}) {
  const payload = typeof body === 'string' ? body : JSON.stringify(body);
  const id = options.id ?? `msg_${randomBytes(12).toString('hex')}`;
  const at = options.at ?? new Date();
  return {
    id,
    payload,
    headers: {
      'content-type': 'application/json',
      'webhook-id': id,
      'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
      'webhook-signature': new Webhook(secret).sign(id, at, payload),
    },
  };
}

/** Posts a signed HR event to the webhook; returns the webhook id and the response. */
export async function postHrEvent(app: FastifyInstance, secret: string, body: unknown, options: { id?: string; at?: Date } = {}) {
  const request = signedWebhook(secret, body, options);
  const response = await app.inject({ method: 'POST', url: '/api/v1/hr/events', payload: request.payload, headers: request.headers });
  return { id: request.id, response };
}

/**
 * The app over the run's database and Redis (a key prefix of its own), with no engine and no
 * webhook secret: for tests of the HTTP surface alone. `stop` closes the app, queue and pool.
 */
export async function buildAppWithoutEngine(name: string, config = testConfig(testEnv.ldap)): Promise<{ app: FastifyInstance; db: DbHandle['db']; stop(): Promise<void> }> {
  const handle = createDb(testEnv.databaseUrl, { max: 3 });
  const queue = createHrEventQueue(redisConnection(testEnv.redisUrl, 'producer'), `${testEnv.redisPrefix}:${uniqueName(name)}`);
  const app = await buildApp({
    db: handle.db,
    hrEventQueue: queue,
    webhookSecrets: [],
    config,
    publicUrl: 'https://jml.test',
    // Test double: the health probes are not what these tests look at.
    health: { redis: async () => {}, temporal: async () => {} },
    logger: false,
    metrics: createMetricsRegistry({ defaultMetrics: false }),
  });
  return {
    app,
    db: handle.db,
    async stop() {
      await app.close();
      await queue.close();
      await handle.close();
    },
  };
}
