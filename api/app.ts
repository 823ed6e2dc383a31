// The Fastify app. Small plugins, zod schemas declared on each route (validation and the
// OpenAPI document at /api/openapi.json from one source, api/openapi.ts), RFC 9457 problem details for every
// error (those Node's HTTP parser and Fastify's router raise included), 1 MiB body limit,
// every JSON body parsed strictly (api/json-body.ts), rate limits before any body is read
// (api/rate-limit.ts), `Cache-Control: no-store` and `nosniff` on every response, and logs
// that never carry bodies, tokens, signatures or personal data (the request serializer logs
// method and path only; sensitive headers are redacted should anything log them).
import type { Client } from '@temporalio/client';
import type { Queue } from 'bullmq';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { serializerCompiler } from 'fastify-type-provider-zod';
import type { pino } from 'pino';
import type { Registry } from 'prom-client';
import { closeConnectors, createConnectors, targetUrl } from '../activities/connectors/index.js';
import { TargetUnavailableError } from '../activities/connectors/types.js';
import type { JmlConfig } from '../domain/config.js';
import type { Db } from '../db/client.js';
import type { HrEventJob } from '../services/hr-event-queue.js';
import { LOG_REDACT_PATHS } from '../services/logger.js';
import { TokenAuthenticator } from './auth.js';
import { jsonBodyParser } from './json-body.js';
import { apiMetrics, createMetricsRegistry, type ApiMetrics } from './metrics.js';
import { registerDocs, registerOpenApi } from './openapi.js';
import { clientErrorHandler, errorHandler, frameworkErrorHandler, notFoundHandler, problems, safeErrorInfo, SECURITY_HEADERS, zodValidatorCompiler } from './problem.js';
import { registerRateLimits } from './rate-limit.js';
import { HEALTH_PATH, healthRoutes, METRICS_PATH, type HealthChecks } from './routes/health.js';
import { hrEventRoutes, type StoreHrEvent } from './routes/hr-events.js';
import { identityRoutes } from './routes/identities.js';
import { planRoutes } from './routes/plan.js';
import { entitlementRoutes } from './routes/entitlements.js';
import { targetRoutes } from './routes/targets.js';
import { accessRequestRoutes } from './routes/access-requests.js';
import { jitRoutes } from './routes/jit.js';
import { retryRoutes } from './routes/retry.js';
import { alertRoutes } from './routes/alerts.js';
import { reconcileRoutes } from './routes/reconcile.js';
import { batchRoutes } from './routes/batches.js';
import { importRoutes } from './routes/imports.js';
import { scimRoutes } from './routes/scim.js';
import { approvalPageRoutes } from './routes/approval-page.js';
import { mailboxRoutes } from './routes/mailbox.js';
import { WebhookVerifier } from './webhook-verify.js';

export const BODY_LIMIT = 1024 * 1024;
/** Longer request URIs are a 414: no route needs more (a cursor is at most 512 characters). */
export const MAX_URL_LENGTH = 4_096;
/**
 * The longest path parameter the router takes (Fastify's default is 100): an HR event id
 * may be 256 characters, which percent-encoding can triple. Longer is a 414.
 */
const MAX_PARAM_LENGTH = 3 * 256;

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
  /**
   * The URL to probe a target at instead of its configured `url`, by target id: the same
   * overrides the workers' connectors get (worker/runtime.ts), e.g. the embedded slapd.
   */
  targetUrls?: Record<string, string>;
  /** Timeout of each health check (default 2000 ms). */
  healthTimeoutMs?: number;
  /** How long /api/health answers from its last round of checks (default 1000 ms). */
  healthCacheMs?: number;
  /**
   * The inbox write, default the batched `createInboxWriter` from db/inbox.ts. Only bench/ingest.ts swaps it,
   * to measure what the audit hash chain costs; production code leaves it alone.
   */
  storeHrEvent?: StoreHrEvent;
  /**
   * The embedded mail catcher's directory (JML_MAIL_CATCHER_DIR, set by `jml start` when
   * SMTP_URL is not): the caught mail is then shown at /dev/mail, to loopback only
   * (api/routes/mailbox.ts). Absent: no such route exists.
   */
  mailCatcherDir?: string;
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
    // The process logger's own paths too: this child's redact replaces its parent's.
    paths: [...LOG_REDACT_PATHS, ...REDACTED_HEADERS.flatMap((h) => [`req.headers["${h}"]`, `headers["${h}"]`, `request.headers["${h}"]`])],
    censor: '[redacted]',
  },
  serializers: {
    // Method, path and id only: no headers, no query string (it can carry employee ids), and
    // no approval link's token (whoever holds it can decide).
    req: (req: { method?: string; url?: string; id?: string }) => ({ method: req.method, url: req.url?.split('?')[0]?.replace(/^\/approvals\/[^/]*/, '/approvals/[token]'), id: req.id }),
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
    // The client address rate limits count by (config `api.trustProxy`).
    trustProxy: deps.config.api.trustProxy,
    // The 503 while closing is answered by the onRequest hook below, as a problem document.
    return503OnClosing: false,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    // Fastify's own answers to these echo the path, or are not problem documents.
    frameworkErrors: frameworkErrorHandler,
    clientErrorHandler,
  }) as unknown as FastifyInstance;

  app.decorate('deps', deps);
  app.decorate('apiMetrics', metrics);
  app.decorate('tokenAuth', new TokenAuthenticator(deps.db, app.log));
  app.decorateRequest('principal', null);

  app.setErrorHandler(errorHandler);
  // Route schemas are zod: a bad request is the problem parseOrThrow throws, and answers are
  // checked against their declared schema on the way out.
  app.setValidatorCompiler(zodValidatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  // Root hooks, added before any route: they run for every route and for the 404 handler.
  app.addHook('onSend', async (_request, reply, payload) => {
    reply.headers(SECURITY_HEADERS);
    return payload;
  });
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onRequest', async (_request, reply) => {
    if (!closing) return;
    reply.header('connection', 'close');
    throw problems.unavailable('The server is shutting down; retry on another instance or shortly.');
  });
  await registerRateLimits(app, deps.config.api.rateLimit, [HEALTH_PATH, METRICS_PATH]);
  app.addHook('onRequest', async (request) => {
    if (request.url.length > MAX_URL_LENGTH) throw problems.uriTooLong();
  });
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

  // Before any route: it collects them as they are registered.
  await registerOpenApi(app);
  // The health probes' own connectors, counted on the shared registry: the API may run
  // without the workers (`jml api`), so it cannot rely on theirs. A target with no URL to
  // reach it at is reported unreachable rather than refused here (startRuntime always
  // gives one; a bench or test config may not).
  const withUrl = deps.config.targets.filter((target) => targetUrl(target, deps.targetUrls));
  const probes = createConnectors(withUrl, deps.targetUrls, { metrics: registry });
  app.addHook('onClose', () => closeConnectors(probes));
  const targets = deps.config.targets.map((target) => {
    const url = targetUrl(target, deps.targetUrls);
    const connector = probes.get(target.id);
    if (!url || !connector) return { id: target.id, host: null, probe: () => Promise.reject(new TargetUnavailableError(`target ${target.id} has no url`, 'NO_URL')) };
    return { id: target.id, host: new URL(url).host, probe: () => connector.ping() };
  });
  await app.register(healthRoutes, { db: deps.db, health: deps.health, registry, targets, timeoutMs: deps.healthTimeoutMs, cacheMs: deps.healthCacheMs });
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
  // Every JSON body from here on: strict UTF-8 and a bounded nesting depth. Replaced only
  // after the HR webhook's plugin has been loaded, because that plugin reads its JSON as raw
  // bytes (for the signature) and Fastify refuses a second non-default JSON parser in a
  // child scope; the plugins registered below inherit this one.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, jsonBodyParser);
  await app.register(identityRoutes, { db: deps.db });
  await app.register(planRoutes, { db: deps.db, config: deps.config, ...(deps.temporal ? { temporal: deps.temporal } : {}) });
  await app.register(entitlementRoutes, { config: deps.config });
  await app.register(targetRoutes, { db: deps.db, config: deps.config });
  await app.register(accessRequestRoutes, { db: deps.db, config: deps.config, publicUrl: deps.publicUrl, taskQueue: deps.taskQueue ?? 'jml', ...(deps.temporal ? { temporal: deps.temporal } : {}) });
  await app.register(jitRoutes, { db: deps.db, config: deps.config, publicUrl: deps.publicUrl, taskQueue: deps.taskQueue ?? 'jml', ...(deps.temporal ? { temporal: deps.temporal } : {}) });
  await app.register(retryRoutes, { db: deps.db, publicUrl: deps.publicUrl, taskQueue: deps.taskQueue ?? 'jml', ...(deps.temporal ? { temporal: deps.temporal } : {}) });
  await app.register(alertRoutes, { db: deps.db });
  await app.register(reconcileRoutes, { db: deps.db });
  await app.register(batchRoutes, { db: deps.db, queue: deps.hrEventQueue });
  await app.register(importRoutes, { db: deps.db, queue: deps.hrEventQueue, config: deps.config, publicUrl: deps.publicUrl });
  await app.register(scimRoutes, { db: deps.db, queue: deps.hrEventQueue, config: deps.config, publicUrl: deps.publicUrl, metrics });
  // The HTML page the approval email links to (its cookie, form and CSRF plugins stay in its own scope).
  await app.register(approvalPageRoutes, { db: deps.db, ...(deps.temporal ? { temporal: deps.temporal } : {}) });
  // Only while `jml start` catches mail: these pages show approval links, and answer loopback only.
  if (deps.mailCatcherDir) await app.register(mailboxRoutes, { dir: deps.mailCatcherDir, publicUrl: deps.publicUrl });
  await registerDocs(app);

  return app;
}
