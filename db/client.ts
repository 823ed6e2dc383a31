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
    // Fail fast when Postgres is down so the API can answer 503 instead of hanging.
    connect_timeout: 5,
    idle_timeout: 30,
  });
  return { db: drizzle(sql, { schema }), sql, close: () => sql.end({ timeout: 5 }) };
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
