// Composes the processes of DESIGN.md: `jml start` (everything in one process), `jml api`
// and `jml worker` (apart, for scale). Whatever can run, runs: without Temporal, events are
// still accepted and kept, and dispatch retries until Temporal is there.
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, type Worker } from '@temporalio/worker';
import type { Worker as BullWorker } from 'bullmq';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { createConnectors, closeConnectors } from '../activities/connectors/index.js';
import { buildApp } from '../api/app.js';
import { createMetricsRegistry } from '../api/metrics.js';
import { createDb, ensureDatabase, runMigrations } from '../db/client.js';
import { syncEntitlements } from '../db/entitlements.js';
import { startSlapd, slapdAvailable } from '../scripts/slapd.js';
import { startTemporalDevServer } from '../scripts/temporal-server.js';
import { loadConfig } from '../services/config.js';
import { webhookSecrets } from '../services/setup.js';
import type { Env } from '../services/env.js';
import { createHrEventQueue } from '../services/hr-event-queue.js';
import { createIngestWorker, startDispatcher } from './ingest-worker.js';
import { redisConnection } from '../services/redis.js';
import { createTemporalWorker } from './temporal-worker.js';

export interface RuntimeRoles {
  api: boolean;
  worker: boolean;
  /** `jml start` only: run a dev Temporal server and a local slapd when none is configured. */
  embedded: boolean;
}

export interface Runtime {
  /** What runs where, for the start-up banner. */
  endpoints: Record<string, string>;
  warnings: string[];
  stop(): Promise<void>;
}

export async function startRuntime(env: Env, roles: RuntimeRoles, logger: Logger): Promise<Runtime> {
  const stops: Array<() => Promise<unknown>> = [];
  const endpoints: Record<string, string> = {};
  const warnings: string[] = [];
  const stop = async () => {
    for (const fn of stops.reverse()) await fn().catch((err: Error) => logger.warn({ err: err.message }, 'error during shutdown'));
  };

  try {
    const config = loadConfig(env.configPath);

    await ensureDatabase(env.databaseUrl);
    await runMigrations(env.databaseUrl);
    const database = createDb(env.databaseUrl);
    stops.push(() => database.close());
    await syncEntitlements(database.db, config);
    endpoints.postgres = new URL(env.databaseUrl).host;

    // Embedded servers for the one-process start.
    let temporalAddress = env.temporalAddress;
    if (!temporalAddress && roles.embedded) {
      try {
        const server = await startTemporalDevServer({
          dbFilename: path.join(env.dataDir, 'temporal.sqlite'),
          port: 7233,
          uiPort: 8233,
          namespace: env.temporalNamespace,
          log: (line) => logger.info(line),
        });
        stops.push(() => server.stop());
        temporalAddress = server.address;
        if (server.uiUrl) endpoints['temporal ui'] = server.uiUrl;
      } catch (err) {
        warnings.push(`Temporal is not running (${(err as Error).message.split('\n')[0]}): install Go (to build the Temporal CLI) or set TEMPORAL_ADDRESS; events are accepted and kept until it is there`);
      }
    }
    temporalAddress ??= '127.0.0.1:7233';
    endpoints.temporal = temporalAddress;

    const ldapUrls: Record<string, string> = {};
    for (const target of config.targets) {
      if (target.url) continue;
      if (roles.embedded && slapdAvailable()) {
        const slapd = await startSlapd({ dir: path.join(env.dataDir, 'slapd'), port: 3389, suffix: target.baseDN, adminPassword: target.bindPassword, keep: true });
        stops.push(() => slapd.stop());
        ldapUrls[target.id] = slapd.url;
        endpoints[`ldap (${target.id})`] = slapd.url;
      } else {
        warnings.push(`target "${target.id}" has no url${roles.embedded ? ' and slapd is not installed (apt-get install slapd ldap-utils)' : ''}: its grants will wait and retry`);
        ldapUrls[target.id] = 'ldap://127.0.0.1:1';
      }
    }

    const queue = createHrEventQueue(redisConnection(env.redisUrl, 'producer'), env.redisPrefix);
    stops.push(() => queue.close());
    const redis = new Redis(env.redisUrl, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1 });
    redis.on('error', () => {}); // health reports it; ioredis would otherwise log every retry
    stops.push(async () => redis.disconnect());
    // A lazy connection: the API starts and answers even while Temporal is unreachable.
    const clientConnection = Connection.lazy({ address: temporalAddress });
    stops.push(() => clientConnection.close());
    const temporal = new Client({ connection: clientConnection, namespace: env.temporalNamespace });
    const metrics = createMetricsRegistry();

    if (roles.api) {
      const app = await buildApp({
        db: database.db,
        hrEventQueue: queue,
        webhookSecrets: webhookSecrets(env, config),
        config,
        temporal,
        taskQueue: env.taskQueue,
        publicUrl: env.publicUrl,
        metrics,
        logger,
        health: {
          redis: async () => {
            if (redis.status !== 'ready') await redis.connect().catch(() => undefined);
            await redis.ping();
          },
          temporal: async () => {
            await clientConnection.workflowService.getSystemInfo({});
          },
        },
      });
      await app.listen({ port: env.port, host: env.host });
      stops.push(() => app.close());
      endpoints.api = `${env.publicUrl}/api/v1`;
      endpoints.health = `${env.publicUrl}/api/health`;
      endpoints.metrics = `${env.publicUrl}/metrics`;
      const dispatcher = startDispatcher(database.db, queue, logger);
      stops.push(() => dispatcher.stop());
    }

    if (roles.worker) {
      const connectors = createConnectors(config.targets, ldapUrls);
      stops.push(() => closeConnectors(connectors));
      const ingest: BullWorker = createIngestWorker({ db: database.db, temporal, taskQueue: env.taskQueue, logger, connection: redisConnection(env.redisUrl, 'worker'), prefix: env.redisPrefix });
      stops.push(() => ingest.close());
      const worker = await startTemporalWorkerWhenReachable({ address: temporalAddress, namespace: env.temporalNamespace, taskQueue: env.taskQueue, deps: { db: database.db, config, connectors, logger }, logger });
      stops.push(() => worker.stop());
    }
    return { endpoints, warnings, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Connects and runs the Temporal worker, retrying in the background while Temporal is down. */
function startTemporalWorkerWhenReachable(options: {
  address: string;
  namespace: string;
  taskQueue: string;
  deps: Parameters<typeof createTemporalWorker>[0]['deps'];
  logger: Logger;
}): { stop(): Promise<void> } {
  let stopped = false;
  let worker: Worker | undefined;
  let connection: NativeConnection | undefined;
  let running: Promise<void> = Promise.resolve();
  const loop = async () => {
    for (let attempt = 0; !stopped; attempt += 1) {
      try {
        connection = await NativeConnection.connect({ address: options.address });
        worker = await createTemporalWorker({ connection, namespace: options.namespace, taskQueue: options.taskQueue, deps: options.deps });
        if (stopped) return;
        options.logger.info({ taskQueue: options.taskQueue }, 'temporal worker running');
        await worker.run();
        return;
      } catch (err) {
        if (attempt === 0 || attempt % 30 === 0) options.logger.warn({ err: (err as Error).message }, 'temporal worker cannot start yet; retrying every 10s');
        await connection?.close().catch(() => undefined);
        connection = undefined;
        await new Promise((resolve) => setTimeout(resolve, 10_000));
      }
    }
  };
  running = loop();
  return {
    async stop() {
      stopped = true;
      if (worker && worker.getState() === 'RUNNING') worker.shutdown();
      await running;
      await connection?.close().catch(() => undefined);
    },
  };
}
