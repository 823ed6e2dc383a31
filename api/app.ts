// The Fastify app. Small plugins, zod at each route, RFC 9457 problem details for every
// error, 1 MiB body limit, and logs that never carry bodies, tokens, signatures or
// personal data (the request serializer logs method and path only; sensitive headers are
// redacted should anything log them).
import type { Client } from '@temporalio/client';
import type { Queue } from 'bullmq';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { pino } from 'pino';
import type { Registry } from 'prom-client';
import type { JmlConfig } from '../domain/config.js';
import type { Db } from '../db/client.js';
import type { HrEventJob } from '../services/hr-event-queue.js';
import { TokenAuthenticator } from './auth.js';
import { apiMetrics, createMetricsRegistry, type ApiMetrics } from './metrics.js';
import { errorHandler, notFoundHandler, safeErrorInfo } from './problem.js';
import { healthRoutes, type HealthChecks } from './routes/health.js';
import { hrEventRoutes, type StoreHrEvent } from './routes/hr-events.js';
import { identityRoutes } from './routes/identities.js';
import { planRoutes } from './routes/plan.js';
import { retryRoutes } from './routes/retry.js';
import { batchRoutes } from './routes/batches.js';
import { importRoutes } from './routes/imports.js';
import { scimRoutes } from './routes/scim.js';
import { WebhookVerifier } from './webhook-verify.js';

export const BODY_LIMIT = 1024 * 1024;

export interface ApiDeps {
  db: Db;
  /** The BullMQ queue the webhook nudges; owned (and closed) by the caller. */
  hrEventQueue: Queue<HrEventJob>;
  /** `whsec_…` secrets accepted on the webhook, newest first (rotation). Empty: every webhook is refused (401). */
  webhookSecrets: string[];
  config: JmlConfig;
  /** Temporal client, for views that read workflow state (the plan) and retries; optional. */
  temporal?: Client;
  /** The Temporal task queue lifecycle workflows run on (default `jml`). */
  taskQueue?: string;
  /** Base of the links the API hands out (statusUrl, Location), e.g. https://jml.example.com. */
  publicUrl: string;
  /** Liveness of the dependencies the DB check cannot see; each should reject when down. */
  health: HealthChecks;
  /**
   * false: no logs. true / undefined: pino at LOG_LEVEL (default info). An object: either a
   * pino logger instance (used as is) or pino options merged over the safe defaults.
   */
  logger?: boolean | object;
  /** Shared Prometheus registry (see api/metrics.ts); a fresh one with default metrics if absent. */
  metrics?: Registry;
  /** How long the webhook waits for Redis before answering 202 anyway (default 1000 ms). */
  enqueueTimeoutMs?: number;
  /** Timeout of each health check (default 2000 ms). */
  healthTimeoutMs?: number;
  /**
   * The inbox write, default the batched `createInboxWriter` from db/inbox.ts. Only bench/ingest.ts swaps it,
   * to measure what the audit hash chain costs; production code leaves it alone.
   */
  storeHrEvent?: StoreHrEvent;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** What buildApp was given, for route plugins registered on this app. */
    deps: ApiDeps;
    apiMetrics: ApiMetrics;
  }
}

const REDACTED_HEADERS = ['authorization', 'cookie', 'webhook-signature', 'x-api-key'];

const SAFE_LOG_OPTIONS = {
  redact: {
    paths: REDACTED_HEADERS.flatMap((h) => [`req.headers["${h}"]`, `headers["${h}"]`, `request.headers["${h}"]`]),
    censor: '[redacted]',
  },
  serializers: {
    // Method, path and id only: no headers, no query string (it can carry employee ids).
    req: (req: { method?: string; url?: string; id?: string }) => ({ method: req.method, url: req.url?.split('?')[0], id: req.id }),
  },
};

function loggerOptions(logger: ApiDeps['logger']): Pick<FastifyServerOptions, 'logger' | 'loggerInstance'> {
  if (logger === false) return { logger: false };
  if (typeof logger === 'object' && logger !== null && typeof (logger as { child?: unknown }).child === 'function') {
    // A pino instance: a child carries the same redaction and serializers.
    return { loggerInstance: (logger as pino.Logger).child({}, SAFE_LOG_OPTIONS) as FastifyBaseLogger };
  }
  return { logger: { level: process.env.LOG_LEVEL ?? 'info', ...SAFE_LOG_OPTIONS, ...(typeof logger === 'object' && logger !== null ? logger : {}) } };
}

export async function buildApp(deps: ApiDeps): Promise<FastifyInstance> {
  const verifier = new WebhookVerifier(deps.webhookSecrets);
  const registry = deps.metrics ?? createMetricsRegistry();
  const metrics = apiMetrics(registry);

  const app = Fastify({
    ...loggerOptions(deps.logger),
    bodyLimit: BODY_LIMIT,
    return503OnClosing: true,
  }) as unknown as FastifyInstance;

  app.decorate('deps', deps);
  app.decorate('apiMetrics', metrics);
  app.decorate('tokenAuth', new TokenAuthenticator(deps.db, app.log));
  app.decorateRequest('principal', null);

  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler(notFoundHandler);

  app.addHook('onResponse', async (request, reply) => {
    metrics.httpRequests.inc({ route: request.routeOptions.url ?? 'unmatched', method: request.method, status: String(reply.statusCode) });
  });

  if (verifier.secretCount === 0) app.log.warn('no webhook secret configured (JML_WEBHOOK_SECRET): every HR webhook will be refused');

  // The queue is the caller's, but its connection errors would otherwise go to console.error
  // (or, once nothing listens, crash the process). The listener stays after close on purpose.
  let lastQueueWarning = 0;
  deps.hrEventQueue.on('error', (err: Error) => {
    if (Date.now() - lastQueueWarning < 30_000) return;
    lastQueueWarning = Date.now();
    app.log.warn({ err: safeErrorInfo(err) }, 'hr event queue: redis connection error');
  });

  await app.register(healthRoutes, { db: deps.db, health: deps.health, registry, timeoutMs: deps.healthTimeoutMs });
  await app.register(hrEventRoutes, {
    db: deps.db,
    queue: deps.hrEventQueue,
    config: deps.config,
    verifier,
    publicUrl: deps.publicUrl,
    metrics,
    enqueueTimeoutMs: deps.enqueueTimeoutMs,
    storeHrEvent: deps.storeHrEvent,
  });
  await app.register(identityRoutes, { db: deps.db });
  await app.register(planRoutes, { db: deps.db, config: deps.config, ...(deps.temporal ? { temporal: deps.temporal } : {}) });
  await app.register(retryRoutes, { db: deps.db, publicUrl: deps.publicUrl, taskQueue: deps.taskQueue ?? 'jml', ...(deps.temporal ? { temporal: deps.temporal } : {}) });
  await app.register(batchRoutes, { db: deps.db, queue: deps.hrEventQueue });
  await app.register(importRoutes, { db: deps.db, queue: deps.hrEventQueue, config: deps.config, publicUrl: deps.publicUrl });
  await app.register(scimRoutes, { db: deps.db, queue: deps.hrEventQueue, config: deps.config, publicUrl: deps.publicUrl, metrics });

  return app;
}
