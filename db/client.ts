import { fileURLToPath } from 'node:url';
import { drizzle, type PostgresJsDatabase } from 'drizzle-orm/postgres-js';
import { migrate } from 'drizzle-orm/postgres-js/migrator';
import postgres from 'postgres';
import * as schema from './schema.js';

export type Db = PostgresJsDatabase<typeof schema>;
/** A transaction handle; every helper that writes takes one so audit rows share it. */
export type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];
export type DbOrTx = Db | Tx;

export const MIGRATIONS_FOLDER = fileURLToPath(new URL('./migrations', import.meta.url));
export const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/jml';

export interface DbHandle {
  db: Db;
  sql: postgres.Sql;
  close(): Promise<void>;
}

export function createDb(url = process.env.DATABASE_URL ?? DEFAULT_DATABASE_URL, options: { max?: number } = {}): DbHandle {
  const sql = postgres(url, {
    max: options.max ?? 10,
    onnotice: () => {},
    // One connection attempt, handshake included: a host that drops packets costs 2 s, not
    // the OS's minutes; with the capped backoff below, every query finds out about an outage
    // within about that (and the inbox writer's own wait is shorter still).
    connect_timeout: 2,
    idle_timeout: 30,
    backoff: reconnectDelaySeconds,
  });
  return { db: drizzle(sql, { schema }), sql, close: () => sql.end({ timeout: 5 }) };
}

/**
 * How long a connection waits before it tries Postgres again after `failures` failed tries
 * in a row: 50 ms doubling to at most 1 s, with jitter. postgres.js's own backoff grows to
 * 20 s, which kept queries waiting up to 15 s through an outage and the engine down for up
 * to 20 s after Postgres was back; with 1 s a restart costs about as long as it takes.
 */
function reconnectDelaySeconds(failures: number): number {
  return Math.min(0.05 * 2 ** failures, 1) * (0.5 + Math.random() / 2);
}

/**
 * How long a write waits for Postgres (a connection, a transaction begun) before the API
 * answers 503. An outage with refused connections is answered at once anyway; this bounds a
 * hang, and is wide enough that a busy but healthy database (writes queued behind the audit
 * chain's lock) is not refused.
 */
export const DATABASE_WAIT_MS = 5_000;

/** Postgres did not answer within the wait: down, restarting or unreachable. Retry later. */
export class DatabaseUnavailableError extends Error {
  readonly code = 'DATABASE_UNAVAILABLE';
  constructor(waitedMs: number) {
    super(`Postgres did not answer within ${waitedMs} ms`);
    this.name = 'DatabaseUnavailableError';
  }
}

/**
 * Resolves when Postgres answers within `waitMs`, else rejects with DatabaseUnavailableError:
 * the bounded wait a write path takes before work that has no deadline of its own (a
 * webhook termination behind the mass-leaver brake), so that an outage is answered at once
 * instead of holding the caller while the pool reconnects.
 */
export async function awaitDatabase(db: Db, waitMs = DATABASE_WAIT_MS): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  // One real promise: each `then` on a drizzle query runs it again.
  const probe = Promise.resolve(db.execute('select 1'));
  // Settled after the wait, nobody listens any more: keep its rejection from being unhandled.
  probe.catch(() => {});
  try {
    await Promise.race([probe, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new DatabaseUnavailableError(waitMs)), waitMs)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** The SQLSTATE of the error the server answered with (postgres.js PostgresError), also under drizzle's wrapping (`cause`). */
export function sqlStateOf(err: unknown): string | undefined {
  for (let e = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const { name, code } = e as { name?: unknown; code?: unknown };
    if (name === 'PostgresError' && typeof code === 'string') return code;
  }
  return undefined;
}

/** Applies committed migrations on one dedicated connection, so advisory locks hold. */
export async function runMigrations(url = process.env.DATABASE_URL ?? DEFAULT_DATABASE_URL): Promise<void> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    await migrate(drizzle(sql), { migrationsFolder: MIGRATIONS_FOLDER });
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/**
 * Runs `work` on a one-connection admin session (database `postgres`) with the name of the
 * database in `url`, quoted as an identifier.
 */
async function withAdmin(url: string, work: (sql: postgres.Sql, name: string, quoted: string) => Promise<void>): Promise<void> {
  const admin = new URL(url);
  const name = decodeURIComponent(admin.pathname.slice(1));
  admin.pathname = '/postgres';
  const sql = postgres(admin.toString(), { max: 1, onnotice: () => {} });
  try {
    await work(sql, name, `"${name.replace(/"/g, '""')}"`);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/** Creates the database named in the URL when it does not exist (for `npm start` and tests). */
export async function ensureDatabase(url: string): Promise<void> {
  await withAdmin(url, async (sql, name, quoted) => {
    const found = await sql`select 1 from pg_database where datname = ${name}`;
    if (found.length === 0) await sql.unsafe(`create database ${quoted}`);
  });
}

/** Drops the database named in the URL; FORCE ends connections a test or bench forgot to close. */
export async function dropDatabase(url: string): Promise<void> {
  await withAdmin(url, async (sql, _name, quoted) => {
    await sql.unsafe(`drop database if exists ${quoted} with (force)`);
  });
}

export { schema };
