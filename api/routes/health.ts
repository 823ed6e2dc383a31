// GET /api/health: Postgres, Redis, Temporal and every target, checked in parallel, each
// with a timeout, and the grants failing or waiting on each target (one grouped query).
//   200 `{ status: 'ok', reasons: [], checks, targets }` when all is well;
//   200 `{ status: 'degraded', reasons, checks, targets }` when Redis or Temporal is down
//       (events are still accepted and kept: dispatch catches up once they are back), a
//       target does not answer its probe, or grants are failing on a target;
//   503, a problem document with the same `reasons`, `checks` and `targets`, when Postgres
//       is down: nothing can be accepted then.
// Each target is probed with its connector's ping() (connect, bind, read the base) through
// the API's own connectors, so `lastSuccessAt` is this process's last successful call to
// the target: its probes, and under `jml start` (API and workers in one process, one
// registry) the workers' calls too. The answer names targets by id and host only.
// The route needs no token, so its checks are cached for a second (concurrent calls share
// the one in flight, and a target never has more than one probe outstanding): however
// often it is called, the dependencies and targets see about one check a second from each
// API process.
// GET /metrics: Prometheus text from the shared registry, after a (cached) round of checks
// so that the per-target gauges it sets (jml_target_up, jml_grants) are current.
import { eq, ne, sql } from 'drizzle-orm';
import type { FastifyPluginAsync } from 'fastify';
import type { Registry } from 'prom-client';
import { z } from 'zod';
import { ConnectorError, TargetUnavailableError } from '../../activities/connectors/types.js';
import type { Db } from '../../db/client.js';
import { entitlements, grants } from '../../db/schema.js';
import { GRANT_STATUSES } from '../../domain/types.js';
import { connectorMetrics, lastSuccessfulCall, targetHealthMetrics } from '../metrics.js';
import { PROBLEM_TYPES, safeErrorInfo, sendProblem } from '../problem.js';

export interface HealthChecks {
  redis: () => Promise<void>;
  temporal: () => Promise<void>;
}

export const HEALTH_PATH = '/api/health';
export const METRICS_PATH = '/metrics';

/** A configured target, probed every round. */
export interface HealthTarget {
  id: string;
  /** host[:port] of the URL it is reached at (what the answer shows of it); null when it has none. */
  host: string | null;
  /** Its connector's ping(): resolves when the target answers, throws a ConnectorError when not. */
  probe: () => Promise<void>;
}

export interface HealthRoutesOptions {
  db: Db;
  health: HealthChecks;
  registry: Registry;
  targets: HealthTarget[];
  /** Per check (default 2000 ms). */
  timeoutMs?: number;
  /** How long a finished round of checks answers later calls (default 1000 ms). */
  cacheMs?: number | undefined;
}

type CheckResult = 'ok' | 'failing' | 'timeout';

const checkResult = z.enum(['ok', 'failing', 'timeout']);
const targetReport = z.object({
  host: z.string().nullable(),
  /** The target answered (it may still have refused the bind). */
  reachable: z.boolean(),
  /** The bind succeeded; false when it was refused; null when unknown (not reached, or another error). */
  bindOk: z.boolean().nullable(),
  /** What failed: a connection error code (ECONNREFUSED), an LDAP result (LDAP_49), or `timeout`. */
  error: z.string().optional(),
  /** The last successful call to the target from this process (ISO 8601), if any. */
  lastSuccessAt: z.string().nullable(),
  /** Grants `failed`, and grants `pending`, `provisioning` or `revoking`; null when Postgres did not answer. */
  grants: z.object({ failing: z.number().int(), waiting: z.number().int() }).nullable(),
});
/** The 200 answer of GET /api/health (the 503 is a problem document with the same `reasons`, `checks` and `targets`). */
export const healthAnswerSchema = z.object({
  status: z.enum(['ok', 'degraded']),
  /** Why the status is not `ok`, one line each (e.g. "target directory unreachable", "3 grants failing on directory"). */
  reasons: z.array(z.string()),
  checks: z.object({ postgres: checkResult, redis: checkResult, temporal: checkResult }),
  targets: z.record(z.string(), targetReport),
});
export type HealthAnswer = z.infer<typeof healthAnswerSchema>;
type TargetReport = z.infer<typeof targetReport>;

/** Result codes of a refused bind: the target answered, but not to these credentials. */
const BIND_REFUSED_CODES = new Set(['LDAP_48', 'LDAP_49']); // inappropriateAuthentication, invalidCredentials
const FAILING_STATUSES = new Set(['failed']);
const WAITING_STATUSES = new Set(['pending', 'provisioning', 'revoking']);
/** Revoked grants only grow, and say nothing about the present: they are not counted. */
const COUNTED_STATUSES = GRANT_STATUSES.filter((status) => status !== 'revoked');

class CheckTimeout extends Error {}

async function runCheck<T>(check: () => Promise<T>, timeoutMs: number): Promise<{ result: CheckResult; value?: T; error?: unknown }> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const value = await Promise.race([
      Promise.resolve().then(check),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new CheckTimeout()), timeoutMs);
      }),
    ]);
    return { result: 'ok', value };
  } catch (error) {
    return { result: error instanceof CheckTimeout ? 'timeout' : 'failing', error };
  } finally {
    clearTimeout(timer);
  }
}

/** One round of checks, as every caller until the next round sees it. */
interface Round {
  status: 'ok' | 'degraded' | 'down';
  reasons: string[];
  checks: HealthAnswer['checks'];
  targets: Record<string, TargetReport>;
}

/** The grants that are not revoked, counted by target and status: one grouped query. */
function countGrants(db: Db) {
  return db
    .select({ target: entitlements.target, status: grants.status, count: sql<number>`count(*)::int` })
    .from(grants)
    .innerJoin(entitlements, eq(entitlements.id, grants.entitlementId))
    .where(ne(grants.status, 'revoked'))
    .groupBy(entitlements.target, grants.status);
}

/** What a probe's outcome says of its target; only error codes, never messages (they name the bind DN). */
function probeReport(outcome: { result: CheckResult; error?: unknown }): Pick<TargetReport, 'reachable' | 'bindOk' | 'error'> {
  if (outcome.result === 'ok') return { reachable: true, bindOk: true };
  if (outcome.result === 'timeout') return { reachable: false, bindOk: null, error: 'timeout' };
  const err = outcome.error;
  // Connection refused, dropped or timed out, or a busy server: not reached.
  if (!(err instanceof ConnectorError) || err instanceof TargetUnavailableError) return { reachable: false, bindOk: null, error: (err instanceof ConnectorError && err.code) || 'unknown' };
  const code = err.code ?? 'unknown';
  if (BIND_REFUSED_CODES.has(code)) return { reachable: true, bindOk: false, error: code };
  // The target answered with another error (its base is missing, say): the bind may or may not have succeeded.
  return { reachable: true, bindOk: null, error: code };
}

function reasonsOf(checks: Round['checks'], targets: Round['targets']): string[] {
  const reasons: string[] = [];
  for (const [name, result] of Object.entries(checks)) {
    if (result !== 'ok') reasons.push(`${name} ${result === 'timeout' ? 'not answering (timeout)' : 'unreachable'}`);
  }
  for (const [id, target] of Object.entries(targets)) {
    if (!target.reachable) reasons.push(`target ${id} unreachable (${target.error})`);
    else if (target.bindOk === false) reasons.push(`target ${id} refuses the bind (${target.error})`);
    else if (target.error) reasons.push(`target ${id} fails its probe (${target.error})`);
    const failing = target.grants?.failing ?? 0;
    if (failing > 0) reasons.push(`${failing} grant${failing === 1 ? '' : 's'} failing on ${id}`);
  }
  return reasons;
}

export const healthRoutes: FastifyPluginAsync<HealthRoutesOptions> = async (app, opts) => {
  const timeoutMs = opts.timeoutMs ?? 2_000;
  const cacheMs = opts.cacheMs ?? 1_000;
  const checks: Record<keyof Round['checks'], () => Promise<unknown>> = {
    postgres: () => opts.db.execute(sql`select 1`),
    redis: opts.health.redis,
    temporal: opts.health.temporal,
  };
  const names = Object.keys(checks) as Array<keyof Round['checks']>;
  const connectors = connectorMetrics(opts.registry);
  const gauges = targetHealthMetrics(opts.registry);

  // A probe that outlives its round's timeout is shared by the next rounds until it ends, so
  // a target that hangs never has more than one probe from this process outstanding.
  const probing = new Map<string, Promise<void>>();
  function probe(target: HealthTarget): Promise<void> {
    let ping = probing.get(target.id);
    if (!ping) {
      ping = target.probe().finally(() => probing.delete(target.id));
      probing.set(target.id, ping);
    }
    return ping;
  }

  /** One round of every check; a failure is logged once per round, not once per caller. */
  async function checkAll(): Promise<Round> {
    const [outcomes, probes, counted] = await Promise.all([
      Promise.all(names.map((name) => runCheck(checks[name], timeoutMs))),
      Promise.all(opts.targets.map((target) => runCheck(() => probe(target), timeoutMs))),
      runCheck(() => countGrants(opts.db), timeoutMs),
    ]);
    names.forEach((name, i) => {
      const outcome = outcomes[i]!;
      if (outcome.result !== 'ok') app.log.warn({ check: name, result: outcome.result, err: safeErrorInfo(outcome.error) }, 'health check failed');
    });
    if (counted.result !== 'ok') app.log.warn({ check: 'grants', result: counted.result, err: safeErrorInfo(counted.error) }, 'health check failed');

    const rows = counted.value;
    const count = (target: string, statuses: Set<string>) =>
      rows!.filter((row) => row.target === target && statuses.has(row.status)).reduce((sum, row) => sum + row.count, 0);
    const targets: Record<string, TargetReport> = {};
    for (const [i, target] of opts.targets.entries()) {
      const report = probeReport(probes[i]!);
      if (report.error) app.log.warn({ target: target.id, error: report.error }, 'health probe of a target failed');
      const lastSuccess = await lastSuccessfulCall(connectors, target.id);
      targets[target.id] = {
        host: target.host,
        ...report,
        lastSuccessAt: lastSuccess?.toISOString() ?? null,
        grants: rows ? { failing: count(target.id, FAILING_STATUSES), waiting: count(target.id, WAITING_STATUSES) } : null,
      };
      gauges.up.set({ target: target.id }, report.error ? 0 : 1);
    }
    // Unknown counts (Postgres did not answer) leave no series rather than stale ones.
    gauges.grants.reset();
    if (rows) {
      for (const target of opts.targets) for (const status of COUNTED_STATUSES) gauges.grants.set({ target: target.id, status }, 0);
      for (const row of rows) gauges.grants.set({ target: row.target, status: row.status }, row.count);
    }

    const results = Object.fromEntries(names.map((name, i) => [name, outcomes[i]!.result])) as Round['checks'];
    const reasons = reasonsOf(results, targets);
    // Without Postgres nothing can be accepted; without Redis or Temporal events are still
    // accepted and kept, and a target that is down only holds up its own grants.
    const status = results.postgres !== 'ok' ? 'down' : reasons.length > 0 ? 'degraded' : 'ok';
    return { status, reasons, checks: results, targets };
  }

  // The round in flight, or the last one until `expiresAt` (set when it finishes).
  let cached: { round: Promise<Round>; expiresAt: number } | null = null;
  function currentRound(): Promise<Round> {
    if (cached && Date.now() < cached.expiresAt) return cached.round;
    const entry = { round: checkAll(), expiresAt: Number.POSITIVE_INFINITY };
    const expire = () => {
      entry.expiresAt = Date.now() + cacheMs;
    };
    void entry.round.then(expire, expire);
    cached = entry;
    return entry.round;
  }

  const healthSchema = { tags: ['Operations'], summary: 'Health of the dependencies and targets (no token)', response: { 200: healthAnswerSchema } };
  app.get(HEALTH_PATH, { schema: healthSchema }, async (_request, reply) => {
    const { status, ...round } = await currentRound();
    if (status !== 'down') return { status, ...round } satisfies HealthAnswer;
    return sendProblem(reply, {
      status: 503,
      title: 'Service unavailable',
      type: PROBLEM_TYPES.unavailable,
      detail: `Down: ${round.reasons.join('; ')}.`,
      extensions: round,
    });
  });

  const metricsSchema = { tags: ['Operations'], summary: 'Prometheus metrics (no token)', produces: ['text/plain'], response: { 200: z.string() } };
  app.get(METRICS_PATH, { schema: metricsSchema }, async (_request, reply) => {
    await currentRound();
    const body = await opts.registry.metrics();
    return reply.type(opts.registry.contentType).send(body);
  });
};
