// What the feed commands (import, batches, release, discard) share: the environment, the
// config, a database handle and the BullMQ queue to nudge. They talk to Postgres and Redis
// directly, like `jml token`; a running engine picks the events up from the inbox.
import { userInfo } from 'node:os';
import { Client, Connection } from '@temporalio/client';
import type { Queue } from 'bullmq';
import { createDb, type Db } from '../../db/client.js';
import type { JmlConfig } from '../../domain/config.js';
import { loadConfig } from '../../services/config.js';
import { readEnv, temporalAddressOf, type Env } from '../../services/env.js';
import { createHrEventQueue, type HrEventJob } from '../../services/hr-event-queue.js';
import { createLogger } from '../../services/logger.js';
import { redisConnection } from '../../services/redis.js';
import { prepareLocalSetup } from '../../services/setup.js';

export interface CliContext {
  db: Db;
  queue: Queue<HrEventJob>;
  config: JmlConfig;
  /** Who is at the keyboard, for the audit log. */
  actor: string;
}

/** Runs `fn` with a context and closes what it opened, whatever happens. */
export async function withContext<T>(fn: (context: CliContext) => Promise<T>): Promise<T> {
  const env = readEnv();
  // The config refers to generated secrets (./data/secrets.env) on a local setup.
  prepareLocalSetup(env, createLogger('warn'));
  const config = loadConfig(env.configPath);
  const database = createDb(env.databaseUrl, { max: 2 });
  const queue = createHrEventQueue(redisConnection(env.redisUrl, 'producer'), env.redisPrefix);
  // Redis being down is fine (the dispatcher enqueues later); do not print every retry.
  queue.on('error', () => undefined);
  let actor = 'cli';
  try {
    actor = `cli:${userInfo().username}`;
  } catch {
    // no user name on this system: plain `cli`
  }
  try {
    return await fn({ db: database.db, queue, config, actor });
  } finally {
    await queue.close().catch(() => undefined);
    await database.close();
  }
}

/**
 * Runs `fn` with a client of the configured Temporal (address, namespace) and closes the
 * connection whatever happens: for the commands that signal or start workflows.
 */
export async function withTemporal<T>(fn: (temporal: Client, env: Env) => Promise<T>): Promise<T> {
  const env = readEnv();
  const connection = await Connection.connect({ address: temporalAddressOf(env) });
  try {
    return await fn(new Client({ connection, namespace: env.temporalNamespace }), env);
  } finally {
    await connection.close();
  }
}
