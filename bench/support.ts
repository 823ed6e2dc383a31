// What the benches share: names of the throwaway resources one run creates, the config they
// run the engine with and the engine itself, waiting for its Temporal worker, posting signed
// HR webhooks, and running a bench to its exit code.
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Connection } from '@temporalio/client';
import type { Webhook } from 'standardwebhooks';
import YAML from 'yaml';
import type { SlapdServer } from '../scripts/slapd.js';
import { readEnv } from '../services/env.js';
import { createLogger } from '../services/logger.js';
import { startRuntime, type Runtime } from '../worker/runtime.js';

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Names of the throwaway resources one bench run creates, unique per run, so runs never
 * collide and cleanup knows exactly what to drop. `servers` points them at servers the bench
 * runs itself rather than DATABASE_URL and REDIS_URL.
 */
export function benchResources(kind: string, servers: { postgresUrl?: string; redisUrl?: string } = {}) {
  const runId = randomBytes(4).toString('hex');
  const databaseName = `jml_bench_${kind}_${runId}`;
  const databaseUrl = new URL(servers.postgresUrl ?? process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres');
  databaseUrl.pathname = `/${databaseName}`;
  return {
    runId,
    databaseName,
    databaseUrl: databaseUrl.toString(),
    redisUrl: servers.redisUrl ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    redisPrefix: `jmlbench-${kind}-${runId}`,
    taskQueue: `jml-bench-${kind}-${runId}`,
  };
}

/**
 * A config like jml.config.example.yaml, aimed at `server`, with bench timings: no
 * pre-provisioning lead or mover grace, fast first retries, and the mass-leaver brake off.
 * `overrides` replace whole top-level sections last (a bench's own needs).
 */
export function writeBenchConfig(file: string, server: SlapdServer, overrides: Record<string, unknown> = {}): void {
  const config = YAML.parse(readFileSync(new URL('../jml.config.example.yaml', import.meta.url), 'utf8')) as Record<string, unknown> & {
    targets: Array<Record<string, unknown>>;
  };
  const target = config.targets[0];
  if (!target) throw new Error('jml.config.example.yaml has no target');
  Object.assign(target, {
    url: server.url,
    bindDN: server.bindDN,
    bindPassword: server.bindPassword,
    baseDN: server.baseDN,
    usersDN: server.usersDN,
    groupsDN: server.groupsDN,
  });
  config.lifecycle = { ...(config.lifecycle as object), moverGracePeriod: '0s', preProvisionLead: '0s', deleteAfter: '30d' };
  config.retries = { ...(config.retries as object), initialInterval: '200ms' };
  // The brake would (rightly) hold a burst of webhook terminations; the benches measure the
  // revocation path, so both of its tests are off (0 disables each).
  config.brake = { ...((config.brake as object | undefined) ?? {}), maxTerminations: 0, maxShare: 0 };
  writeFileSync(file, YAML.stringify({ ...config, ...overrides }), { mode: 0o600 });
}

/** Polls Temporal until a worker polls `taskQueue` for workflows and activities; returns the ms it took. */
export async function waitForWorker(address: string, taskQueue: string, timeoutMs: number): Promise<number> {
  const started = Date.now();
  const connection = await Connection.connect({ address });
  try {
    for (;;) {
      const pollers = await Promise.all(
        [1, 2].map(async (taskQueueType) => {
          const res = await connection.workflowService.describeTaskQueue({ namespace: 'default', taskQueue: { name: taskQueue, kind: 1 }, taskQueueType });
          return res.pollers?.length ?? 0;
        }),
      );
      if (pollers.every((n) => n > 0)) return Date.now() - started;
      if (Date.now() - started > timeoutMs) throw new Error(`the Temporal worker did not poll ${taskQueue} within ${timeoutMs / 1000} s`);
      await sleep(250);
    }
  } finally {
    await connection.close();
  }
}

/** How the engine answered one webhook. */
export interface WebhookAnswer {
  /** HTTP status; 0 when no answer came (refused, reset, timed out). */
  status: number;
  sentAt: number;
  ackAt: number;
  /** The inbox status the 202 reports (e.g. `held` by the brake). */
  eventStatus?: string;
  /** Seconds, from a 503's Retry-After. */
  retryAfter?: number;
  error?: string;
}

/** POSTs one HR event as a signed Standard Webhook, as an HR system sends it. */
export async function postHrEvent(api: string, webhook: Webhook, eventId: string, body: object, timeoutMs = 30_000): Promise<WebhookAnswer> {
  const text = JSON.stringify(body);
  const at = new Date();
  const sentAt = Date.now();
  try {
    const response = await fetch(`${api}/api/v1/hr/events`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'webhook-id': eventId,
        'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
        'webhook-signature': webhook.sign(eventId, at, text),
      },
      body: text,
      signal: AbortSignal.timeout(timeoutMs),
    });
    const ackAt = Date.now();
    const json = (await response.json().catch(() => ({}))) as { status?: string; title?: string };
    const retryAfter = Number(response.headers.get('retry-after') ?? Number.NaN);
    return {
      status: response.status,
      sentAt,
      ackAt,
      ...(json.status ? { eventStatus: json.status } : {}),
      ...(Number.isFinite(retryAfter) ? { retryAfter } : {}),
      ...(response.status !== 202 ? { error: json.title ?? response.statusText } : {}),
    };
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code;
    return { status: 0, sentAt, ackAt: Date.now(), error: cause ?? (err as Error).message };
  }
}

/** One cleanup step: a failure is reported and the next step still runs. */
export async function cleanupStep(what: string, fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    console.error(`cleanup: ${what} failed: ${(err as Error).message}`);
  }
}

/**
 * A bench that runs over `budgetMs`, or gets SIGINT/SIGTERM, cleans up what it started and
 * exits (2 over budget, 130 on a signal; 3 if the clean-up itself hangs for 45 s).
 */
export function guardBench(budgetMs: number, cleanup: () => Promise<unknown>): void {
  const watchdog = setTimeout(() => {
    console.error(`bench: over its time budget of ${budgetMs / 1000} s; cleaning up and exiting`);
    setTimeout(() => process.exit(3), 45_000).unref();
    void cleanup().finally(() => process.exit(2));
  }, budgetMs);
  watchdog.unref();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      console.error(`bench: ${signal}; cleaning up`);
      void cleanup().finally(() => process.exit(130));
    });
  }
}

/**
 * Runs a bench's `main` (true: its checks held), then its clean-up whatever happened, and
 * ends the process: 0 when the checks held, 1 when they did not, 2 when the bench itself
 * failed. Native Temporal handles and pools may linger, so the process is ended explicitly.
 */
export async function runBench(main: () => Promise<boolean>, cleanup: () => Promise<void>): Promise<never> {
  let exitCode = 2;
  try {
    exitCode = (await main()) ? 0 : 1;
  } catch (err) {
    console.error(`bench failed: ${(err as Error).stack ?? String(err)}`);
  } finally {
    const started = Date.now();
    await cleanup();
    console.log(`cleaned up in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
  process.exit(exitCode);
}

/**
 * The engine (API, Temporal worker, ingestion worker) in this process, as `jml start`'s child
 * runs it, against the bench's own servers: the environment is set as a deployment would set
 * it, on loopback only, its data under `tmp`. Returns the runtime and the API's base URL.
 */
export async function startBenchRuntime(options: {
  databaseUrl: string;
  configFile: string;
  webhookSecret: string;
  temporalAddress: string;
  taskQueue: string;
  redisPrefix: string;
  port: number;
  tmp: string;
  smtpUrl?: string;
}): Promise<{ runtime: Runtime; api: string }> {
  const api = `http://127.0.0.1:${options.port}`;
  Object.assign(process.env, {
    DATABASE_URL: options.databaseUrl,
    JML_CONFIG: options.configFile,
    JML_WEBHOOK_SECRET: options.webhookSecret,
    TEMPORAL_ADDRESS: options.temporalAddress,
    JML_TASK_QUEUE: options.taskQueue,
    JML_REDIS_PREFIX: options.redisPrefix,
    ...(options.smtpUrl ? { SMTP_URL: options.smtpUrl } : {}),
    PORT: String(options.port),
    HOST: '127.0.0.1',
    PUBLIC_URL: api,
    // Not used without `embedded`, but never let a bench touch ./data.
    JML_DATA_DIR: join(options.tmp, 'data'),
    LOG_LEVEL: 'warn',
  });
  const env = readEnv();
  const runtime = await startRuntime(env, { api: true, worker: true, embedded: false }, createLogger(env.logLevel));
  for (const warning of runtime.warnings) console.log(`runtime warning: ${warning}`);
  return { runtime, api };
}
