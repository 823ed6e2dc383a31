// /api/health tells the truth about targets: an engine whose only target is unreachable
// answers `degraded`, names the target, and counts the grants failing or waiting on it; a
// healthy engine's target is reachable with its bind accepted; a refused bind is told apart
// from an unreachable target; Postgres down is `down` (503). The probes are real (the run's
// slapd, or a port nothing listens on); only the Redis and Temporal checks are the test
// doubles buildTestApp passes. /metrics carries the per-target series.
import { eq } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeConnectors, createConnectors } from '../../activities/connectors/index.js';
import type { HealthAnswer } from '../../api/routes/health.js';
import { createMetricsRegistry } from '../../api/metrics.js';
import { PROBLEM_TYPES } from '../../api/problem.js';
import { createDb } from '../../db/client.js';
import { getHrEvent } from '../../db/inbox.js';
import { entitlements, grants } from '../../db/schema.js';
import { testConfig } from '../support/config.js';
import { buildTestApp } from '../support/api.js';
import { eventually, startTestEngine, type TestEngine } from '../support/engine.js';
import { testEnv, uniqueEmployeeId } from '../support/env.js';

const ENGINEER = { givenName: 'Ada', familyName: 'Lovelace', department: 'Engineering', employmentType: 'employee' };
const UNREACHABLE_URL = 'ldap://127.0.0.1:1';

const apps: FastifyInstance[] = [];
const engines: TestEngine[] = [];
afterAll(async () => {
  for (const app of apps) await app.close();
  for (const engine of engines) await engine.stop();
});

async function appOver(engine: TestEngine, overrides: Parameters<typeof buildTestApp>[1] = {}) {
  const app = await buildTestApp(engine, overrides);
  apps.push(app);
  return app;
}

async function health(app: FastifyInstance) {
  const response = await app.inject({ method: 'GET', url: '/api/health' });
  return { statusCode: response.statusCode, body: response.json<HealthAnswer>(), text: response.body };
}

/** The engine's grants on `target`, counted as the health answer counts them, read apart from it. */
async function grantCounts(engine: TestEngine, target: string) {
  const rows = await engine.db.select({ status: grants.status }).from(grants).innerJoin(entitlements, eq(entitlements.id, grants.entitlementId)).where(eq(entitlements.target, target));
  const statuses = rows.map((row) => row.status);
  return {
    failing: statuses.filter((s) => s === 'failed').length,
    waiting: statuses.filter((s) => ['pending', 'provisioning', 'revoking'].includes(s)).length,
  };
}

describe('an engine whose target is unreachable', () => {
  let engine: TestEngine;
  let app: FastifyInstance;
  beforeAll(async () => {
    engine = await startTestEngine({ config: testConfig({ ...testEnv.ldap, url: UNREACHABLE_URL }) });
    engines.push(engine);
    app = await appOver(engine);
  });

  it('answers degraded, naming the target, with the hire’s grants counted on it', async () => {
    const eventId = await engine.submit({ type: 'hire', employeeId: uniqueEmployeeId(), attributes: ENGINEER });
    // The hire's step spends its retry budget against the closed port, then waits for the target.
    await eventually(async () => (await getHrEvent(engine.db, eventId))?.status === 'failed', 30_000);
    const counts = await grantCounts(engine, 'directory');
    // directory-account, all-staff, employees, engineering: none of them can be done.
    expect(counts.failing + counts.waiting).toBe(4);

    const answer = await eventually(async () => {
      const current = await health(app);
      return current.body.targets?.directory?.grants?.waiting === counts.waiting && current;
    });
    expect(answer.statusCode).toBe(200);
    expect(answer.body).toMatchObject({
      status: 'degraded',
      checks: { postgres: 'ok', redis: 'ok', temporal: 'ok' },
      targets: { directory: { host: '127.0.0.1:1', reachable: false, bindOk: null, error: 'ECONNREFUSED', lastSuccessAt: null, grants: counts } },
    });
    expect(answer.body.reasons).toContain('target directory unreachable (ECONNREFUSED)');
    // The step failed once its grants had: at least one of them is `failed`, and said so.
    expect(counts.failing).toBeGreaterThan(0);
    expect(answer.body.reasons).toContain(`${counts.failing} grant${counts.failing === 1 ? '' : 's'} failing on directory`);
    // No credentials in the answer, nor the bind DN.
    expect(answer.text).not.toContain(testEnv.ldap.bindPassword);
    expect(answer.text).not.toContain(testEnv.ldap.bindDN);
  });

  it('exposes per-target series on /metrics', async () => {
    await health(app);
    const { body } = await app.inject({ method: 'GET', url: '/metrics' });
    expect(body).toMatch(/^jml_connector_calls_total\{target="directory",operation="ping"\} [1-9]/m);
    expect(body).toMatch(/^jml_connector_errors_total\{target="directory",operation="ping"\} [1-9]/m);
    expect(body).toMatch(/^jml_connector_call_duration_seconds_count\{target="directory",operation="ping"\} [1-9]/m);
    expect(body).toMatch(/^jml_target_up\{target="directory"\} 0$/m);
    // The hire's four grants, by status, and explicit zeros for the others.
    const counted = [...body.matchAll(/^jml_grants\{target="directory",status="(\w+)"\} (\d+)$/gm)].map(([, status, n]) => [status, Number(n)] as const);
    expect(counted.map(([status]) => status).sort()).toEqual(['active', 'failed', 'pending', 'provisioning', 'revoking']);
    expect(counted.reduce((sum, [, n]) => sum + n, 0)).toBe(4);
    // Never reached: no last success.
    expect(body).not.toMatch(/^jml_connector_last_success_timestamp_seconds\{target="directory"\}/m);
  });
});

describe('a healthy engine', () => {
  let engine: TestEngine;
  beforeAll(async () => {
    engine = await startTestEngine();
    engines.push(engine);
  });

  it('answers ok, with the target reachable, its bind accepted and nothing waiting', async () => {
    const app = await appOver(engine);
    const eventId = await engine.submit({ type: 'hire', employeeId: uniqueEmployeeId(), attributes: ENGINEER });
    await eventually(async () => (await getHrEvent(engine.db, eventId))?.status === 'applied', 30_000);
    const before = Date.now();
    const answer = await health(app);
    expect(answer.statusCode).toBe(200);
    expect(answer.body).toMatchObject({
      status: 'ok',
      reasons: [],
      checks: { postgres: 'ok', redis: 'ok', temporal: 'ok' },
      targets: { directory: { host: new URL(testEnv.ldap.url).host, reachable: true, bindOk: true, grants: { failing: 0, waiting: 0 } } },
    });
    expect(answer.body.targets.directory).not.toHaveProperty('error');
    // This app's own probe is its last successful call.
    expect(Date.parse(answer.body.targets.directory!.lastSuccessAt ?? '')).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);

    const { body } = await app.inject({ method: 'GET', url: '/metrics' });
    expect(body).toMatch(/^jml_target_up\{target="directory"\} 1$/m);
    expect(body).toMatch(/^jml_grants\{target="directory",status="active"\} 4$/m);
  });

  it('tells a refused bind apart from an unreachable target', async () => {
    const app = await appOver(engine, { config: testConfig({ ...testEnv.ldap, bindPassword: 'not-the-password' }) });
    const answer = await health(app);
    expect(answer.statusCode).toBe(200);
    expect(answer.body.status).toBe('degraded');
    expect(answer.body.targets.directory).toMatchObject({ reachable: true, bindOk: false, error: 'LDAP_49', lastSuccessAt: null });
    expect(answer.body.reasons).toEqual(['target directory refuses the bind (LDAP_49)']);
    expect(answer.text).not.toContain('not-the-password');
  });

  it('probes a target at its URL override, as the workers reach it', async () => {
    const config = testConfig({ ...testEnv.ldap, url: UNREACHABLE_URL });
    const app = await appOver(engine, { config, targetUrls: { directory: testEnv.ldap.url } });
    const answer = await health(app);
    expect(answer.body.status).toBe('ok');
    expect(answer.body.targets.directory).toMatchObject({ host: new URL(testEnv.ldap.url).host, reachable: true, bindOk: true });
  });

  it('reports a target with no URL to reach it at as unreachable', async () => {
    const app = await appOver(engine, { config: testConfig({ ...testEnv.ldap, url: undefined as unknown as string }) });
    const answer = await health(app);
    expect(answer.statusCode).toBe(200);
    expect(answer.body.targets.directory).toMatchObject({ host: null, reachable: false, bindOk: null, error: 'NO_URL' });
    expect(answer.body.reasons).toEqual(['target directory unreachable (NO_URL)']);
  });

  it('is degraded, not down, while Redis or Temporal is unreachable: events are still accepted', async () => {
    const app = await appOver(engine, {
      health: {
        redis: async () => {
          throw new Error('down');
        },
        temporal: async () => {},
      },
    });
    const answer = await health(app);
    expect(answer.statusCode).toBe(200);
    expect(answer.body).toMatchObject({ status: 'degraded', reasons: ['redis unreachable'], checks: { postgres: 'ok', redis: 'failing', temporal: 'ok' } });
  });

  it('is down (503) while Postgres is unreachable, still reporting the targets', async () => {
    const deadDb = createDb('postgres://postgres@127.0.0.1:1/jml', { max: 1 });
    try {
      const app = await appOver(engine, { db: deadDb.db });
      const response = await app.inject({ method: 'GET', url: '/api/health' });
      expect(response.statusCode).toBe(503);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.json()).toMatchObject({
        type: PROBLEM_TYPES.unavailable,
        status: 503,
        reasons: ['postgres unreachable'],
        checks: { postgres: 'failing', redis: 'ok', temporal: 'ok' },
        targets: { directory: { reachable: true, bindOk: true, grants: null } },
      });
    } finally {
      await deadDb.close();
    }
  });
});

describe('instrumented connectors', () => {
  it('count calls, errors and latency per target and operation, and remember the last success', async () => {
    const registry = createMetricsRegistry({ defaultMetrics: false });
    const config = testConfig(testEnv.ldap);
    const connectors = createConnectors(config.targets, {}, { metrics: registry });
    try {
      const directory = connectors.get('directory')!;
      expect(await directory.readAccount(uniqueEmployeeId())).toBeNull();
      expect(await directory.readAccount(uniqueEmployeeId())).toBeNull();
      // Not one of the target's group references: a permanent error, passed through as it is.
      await expect(directory.isGroupMember(uniqueEmployeeId(), 'cn=elsewhere,dc=example,dc=org')).rejects.toMatchObject({ name: 'ConnectorError', retryable: false });
      const body = await registry.metrics();
      expect(body).toMatch(/^jml_connector_calls_total\{target="directory",operation="readAccount"\} 2$/m);
      expect(body).not.toMatch(/^jml_connector_errors_total\{target="directory",operation="readAccount"\}/m);
      expect(body).toMatch(/^jml_connector_calls_total\{target="directory",operation="isGroupMember"\} 1$/m);
      expect(body).toMatch(/^jml_connector_errors_total\{target="directory",operation="isGroupMember"\} 1$/m);
      expect(body).toMatch(/^jml_connector_call_duration_seconds_count\{target="directory",operation="readAccount"\} 2$/m);
      expect(body).toMatch(/^jml_connector_last_success_timestamp_seconds\{target="directory"\} \d/m);
    } finally {
      await closeConnectors(connectors);
    }
  });
});
