// GET /api/health: Postgres, Redis and Temporal, checked in parallel, each with a timeout.
// 200 `{ status: 'ok', checks }`, or a 503 problem whose `checks` names the failing ones.
// The route needs no token, so its checks are cached for a second (concurrent calls share
// the one in flight): however often it is called, the dependencies see about one check a
// second from each API process.
// GET /metrics: Prometheus text from the shared registry.
import { sql } from 'drizzle-orm';
import type { FastifyPluginAsync } from 'fastify';
import type { Registry } from 'prom-client';
import type { Db } from '../../db/client.js';
import { PROBLEM_TYPES, safeErrorInfo, sendProblem } from '../problem.js';

export interface HealthChecks {
  redis: () => Promise<void>;
  temporal: () => Promise<void>;
}

export const HEALTH_PATH = '/api/health';
export const METRICS_PATH = '/metrics';

export interface HealthRoutesOptions {
  db: Db;
  health: HealthChecks;
  registry: Registry;
  /** Per check (default 2000 ms). */
  timeoutMs?: number;
  /** How long a finished round of checks answers later calls (default 1000 ms). */
  cacheMs?: number | undefined;
}

type CheckResult = 'ok' | 'failing' | 'timeout';

class CheckTimeout extends Error {}

async function runCheck(check: () => Promise<unknown>, timeoutMs: number): Promise<{ result: CheckResult; error?: unknown }> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      Promise.resolve().then(check),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new CheckTimeout()), timeoutMs);
      }),
    ]);
    return { result: 'ok' };
  } catch (error) {
    return { result: error instanceof CheckTimeout ? 'timeout' : 'failing', error };
  } finally {
    clearTimeout(timer);
  }
}

export const healthRoutes: FastifyPluginAsync<HealthRoutesOptions> = async (app, opts) => {
  const timeoutMs = opts.timeoutMs ?? 2_000;
  const cacheMs = opts.cacheMs ?? 1_000;
  const checks: Record<string, () => Promise<unknown>> = {
    postgres: () => opts.db.execute(sql`select 1`),
    redis: opts.health.redis,
    temporal: opts.health.temporal,
  };
  const names = Object.keys(checks);

  /** One round of every check; a failure is logged once per round, not once per caller. */
  async function checkAll(): Promise<Record<string, CheckResult>> {
    const outcomes = await Promise.all(names.map((name) => runCheck(checks[name]!, timeoutMs)));
    names.forEach((name, i) => {
      const outcome = outcomes[i]!;
      if (outcome.result !== 'ok') app.log.warn({ check: name, result: outcome.result, err: safeErrorInfo(outcome.error) }, 'health check failed');
    });
    return Object.fromEntries(names.map((name, i) => [name, outcomes[i]!.result]));
  }

  // The round in flight, or the last one until `expiresAt` (set when it finishes).
  let cached: { results: Promise<Record<string, CheckResult>>; expiresAt: number } | null = null;
  function currentResults(): Promise<Record<string, CheckResult>> {
    if (cached && Date.now() < cached.expiresAt) return cached.results;
    const entry = { results: checkAll(), expiresAt: Number.POSITIVE_INFINITY };
    const expire = () => {
      entry.expiresAt = Date.now() + cacheMs;
    };
    void entry.results.then(expire, expire);
    cached = entry;
    return entry.results;
  }

  app.get(HEALTH_PATH, async (_request, reply) => {
    const results = await currentResults();
    const failing = names.filter((name) => results[name] !== 'ok');
    if (failing.length === 0) return { status: 'ok', checks: results };
    return sendProblem(reply, {
      status: 503,
      title: 'Service unavailable',
      type: PROBLEM_TYPES.unavailable,
      detail: `Failing: ${failing.join(', ')}.`,
      extensions: { checks: results },
    });
  });

  app.get(METRICS_PATH, async (_request, reply) => {
    const body = await opts.registry.metrics();
    return reply.type(opts.registry.contentType).send(body);
  });
};
