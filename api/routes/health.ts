// GET /api/health: Postgres, Redis and Temporal, checked in parallel, each with a timeout.
// 200 `{ status: 'ok', checks }`, or a 503 problem whose `checks` names the failing ones.
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

export interface HealthRoutesOptions {
  db: Db;
  health: HealthChecks;
  registry: Registry;
  /** Per check (default 2000 ms). */
  timeoutMs?: number;
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
  const checks: Record<string, () => Promise<unknown>> = {
    postgres: () => opts.db.execute(sql`select 1`),
    redis: opts.health.redis,
    temporal: opts.health.temporal,
  };

  app.get('/api/health', async (request, reply) => {
    const names = Object.keys(checks);
    const outcomes = await Promise.all(names.map((name) => runCheck(checks[name]!, timeoutMs)));
    const results = Object.fromEntries(names.map((name, i) => [name, outcomes[i]!.result])) as Record<string, CheckResult>;
    const failing = names.filter((name) => results[name] !== 'ok');
    if (failing.length === 0) return { status: 'ok', checks: results };
    names.forEach((name, i) => {
      if (results[name] !== 'ok') request.log.warn({ check: name, result: results[name], err: safeErrorInfo(outcomes[i]!.error) }, 'health check failed');
    });
    return sendProblem(reply, {
      status: 503,
      title: 'Service unavailable',
      type: PROBLEM_TYPES.unavailable,
      detail: `Failing: ${failing.join(', ')}.`,
      extensions: { checks: results },
    });
  });

  app.get('/metrics', async (_request, reply) => {
    const body = await opts.registry.metrics();
    return reply.type(opts.registry.contentType).send(body);
  });
};
