// Request limits (config `api.rateLimit`), all checked in one onRequest hook, so a refused
// request is answered before a byte of its body is read:
//   - per client address: `max` requests per `window` (IPv6 counted per /64);
//   - per bearer token, counted apart: `max` per `window`, keyed by the token's SHA-256, so
//     no token is kept in memory (a token spread over many addresses is still bounded);
//   - failed authentications: a client whose requests were answered 401 (an unknown token,
//     a bad webhook signature) `failedAuthMax` times within `failedAuthWindow` is refused
//     every request until that window ends, so guessing tokens or secrets is slow;
//   - /api/health and /metrics count in a bucket of their own per client, so probes by a
//     load balancer or Prometheus and the API traffic of the same address do not starve each
//     other (health answers from a one-second cache, see routes/health.ts).
// Each refusal is a 429 problem with Retry-After. The counters are @fastify/rate-limit's
// in-memory store, per API process: N replicas admit up to N times the limits, and behind
// a reverse proxy every client is the proxy's address.
import fastifyRateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { RateLimitConfig } from '../domain/config.js';
import { hashToken } from './auth.js';
import { problems } from './problem.js';

/** The bearer token of a request, or null; the same reading as requireScope's. */
function bearerToken(request: FastifyRequest): string | null {
  const header = request.headers.authorization;
  if (!header) return null;
  return /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1] ?? null;
}

/**
 * Installs the limits on `app` (the root instance, before any route is registered).
 * `probePaths` are the route URLs that count in the probes' own bucket.
 */
export async function registerRateLimits(app: FastifyInstance, limits: RateLimitConfig, probePaths: readonly string[]): Promise<void> {
  // global: false: no hook of the plugin's own; the limiters below are called from ours,
  // in a fixed order and with one kind of answer.
  await app.register(fastifyRateLimit, { global: false });
  const window = { max: limits.max, timeWindow: limits.window };
  // Each createRateLimit has a store of its own; without a keyGenerator the key is the
  // client address, normalised by the plugin.
  const perClient = app.createRateLimit(window);
  const perProbeClient = app.createRateLimit(window);
  const perToken = app.createRateLimit({ ...window, keyGenerator: (request) => hashToken(bearerToken(request) ?? '') });
  const failedAuth = app.createRateLimit({ max: limits.failedAuthMax, timeWindow: limits.failedAuthWindow });
  const probes = new Set(probePaths);

  app.addHook('onRequest', async (request) => {
    // Read only: what counts here is the 401s counted in onResponse below.
    const failures = await failedAuth(request, { increment: false });
    if (!failures.isAllowed && failures.remaining === 0) {
      throw problems.rateLimited('Too many failed authentications from this client; retry later.', failures.ttlInSeconds);
    }
    const isProbe = probes.has(request.routeOptions.url ?? '');
    const client = await (isProbe ? perProbeClient : perClient)(request);
    if (!client.isAllowed && client.isExceeded) throw problems.rateLimited('Too many requests from this client; retry later.', client.ttlInSeconds);
    if (bearerToken(request) !== null) {
      const token = await perToken(request);
      if (!token.isAllowed && token.isExceeded) throw problems.rateLimited('Too many requests with this token; retry later.', token.ttlInSeconds);
    }
  });

  app.addHook('onResponse', async (request, reply) => {
    if (reply.statusCode === 401) await failedAuth(request);
  });
}
