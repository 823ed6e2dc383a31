// What the benches share: names of the throwaway resources one run creates, the config they
// run the engine with, waiting for its Temporal worker, and posting signed HR webhooks.
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { Connection } from '@temporalio/client';
import type { Webhook } from 'standardwebhooks';
import YAML from 'yaml';
import type { SlapdServer } from '../scripts/slapd.js';

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
