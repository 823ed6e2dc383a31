// What `jml import` prints about HR data reaches the operator's terminal: escape sequences
// and bidi overrides in a cell or in stored data are shown as visible escapes, never sent
// raw; and a database error is a summary (class, SQLSTATE), never the failed query with
// its values (names). Runs the real CLI against its own database, as an operator would.
import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, dropDatabase, ensureDatabase, runMigrations, type DbHandle } from '../../db/client.js';
import { identities } from '../../db/schema.js';
import { createLogger } from '../../services/logger.js';
import { deleteKeysWithPrefix } from '../../services/redis.js';
import { newWebhookSecret } from '../support/api.js';
import { testEnv, uniqueEmployeeId, uniqueName } from '../support/env.js';

const REPO = new URL('../../', import.meta.url).pathname;
// Raw characters a terminal would act on (the program's own newlines aside).
// eslint-disable-next-line no-control-regex -- the characters under test
const RAW = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

const dir = mkdtempSync(join(tmpdir(), 'jml-cli-'));
let databaseUrl: string;
let redisPrefix: string;
let database: DbHandle;
let env: NodeJS.ProcessEnv;

// A known person whose title the file changes, and one whose stored id carries an escape
// sequence, a right-to-left override and a C1 CSI (data stored before today's input rules).
const known = uniqueEmployeeId('ESC');
const legacy = `${uniqueEmployeeId('OLD')}\x1b[2J\u202eKCAH\u009b1m`;
const title = 'Boss\x1b[31m\u202elive';

function runJml(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'cli/index.ts', ...args], { cwd: REPO, env, encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

function csvFile(name: string, lines: string[]): string {
  const file = join(dir, name);
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

beforeAll(async () => {
  const url = new URL(testEnv.databaseUrl);
  url.pathname = `${url.pathname}_cli_${Math.random().toString(36).slice(2, 10)}`;
  databaseUrl = url.toString();
  await ensureDatabase(databaseUrl);
  await runMigrations(databaseUrl);
  database = createDb(databaseUrl, { max: 2 });
  redisPrefix = `${testEnv.redisPrefix}:${uniqueName('cli')}`;
  copyFileSync(join(REPO, 'jml.config.example.yaml'), join(dir, 'jml.config.yaml'));
  env = {
    ...process.env,
    JML_DATA_DIR: join(dir, 'data'),
    JML_CONFIG: join(dir, 'jml.config.yaml'),
    DATABASE_URL: databaseUrl,
    REDIS_URL: testEnv.redisUrl,
    JML_REDIS_PREFIX: redisPrefix,
    JML_WEBHOOK_SECRET: newWebhookSecret(),
  };
  const attributes = { givenName: 'Ada', familyName: 'Lovelace', title: 'Engineer', employmentType: 'employee' };
  await database.db.insert(identities).values([
    { employeeId: known, status: 'active', attributes },
    { employeeId: legacy, status: 'active', attributes },
  ]);
});
afterAll(async () => {
  await database?.close();
  if (databaseUrl) await dropDatabase(databaseUrl);
  if (redisPrefix) await deleteKeysWithPrefix(testEnv.redisUrl, redisPrefix);
  rmSync(dir, { recursive: true, force: true });
});

const HEADER = 'WorkerID,WorkerStatus,WorkerType,FirstName,LastName,JobTitle';

describe('jml import --dry-run', () => {
  it('shows an escape sequence and a bidi override of a cell as visible escapes, never raw', async () => {
    const file = csvFile('title.csv', [HEADER, `${known},Active,Employee,Ada,Lovelace,"${title}"`]);
    const { code, stdout, stderr } = await runJml(['import', file, '--dry-run']);
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    expect(stdout).not.toMatch(RAW);
    // The file door may take the title (an update, shown escaped) or, under the one
    // attribute schema, refuse the row naming the column; either way nothing raw is shown.
    if (stdout.includes(`${known}  (line 2`)) expect(stdout).toContain(String.raw`title=Boss\x1b[31m\u202elive`);
    else expect(stdout).toMatch(/line 2: .*(JobTitle|title)/);
  });

  it('shows stored HR data (an id with an escape sequence, an override and a C1 CSI) escaped, in text and in JSON', async () => {
    // A full snapshot without the legacy person plans their termination, naming them.
    const file = csvFile('snapshot.csv', [HEADER, `${known},Active,Employee,Ada,Lovelace,Engineer`]);
    const text = await runJml(['import', file, '--dry-run', '--full-snapshot']);
    expect(text.code).toBe(0);
    expect(text.stdout).not.toMatch(RAW);
    expect(text.stdout).toContain(`${String.raw`\x1b[2J\u202eKCAH\x9b1m`}  (absent from the file, active): terminate`);

    const json = await runJml(['import', file, '--dry-run', '--full-snapshot', '--json']);
    expect(json.code).toBe(0);
    expect(json.stdout.replaceAll('\n', '')).not.toMatch(RAW);
    // Escaped as JSON allows, so a program reading the output gets the stored id exactly.
    const result = JSON.parse(json.stdout) as { plan: Array<{ employeeId: string; events: Array<{ type: string }> }> };
    expect(result.plan.find((p) => p.employeeId === legacy)?.events.map((e) => e.type)).toEqual(['terminate']);
  });
});

describe('a database error', () => {
  it('reaches the terminal as class and SQLSTATE only, without the query or its values', async () => {
    // Postgres refuses every new inbox row: the import fails inside its insert, whose
    // parameters are the hire's payload (the new person's names).
    await database.db.execute(
      sql.raw(`create function refuse_inbox() returns trigger language plpgsql as $$ begin raise exception 'inbox closed for the test'; end $$;
               create trigger refuse_inbox before insert on hr_events for each row execute function refuse_inbox();`),
    );
    try {
      const file = csvFile('hire.csv', [HEADER, `${uniqueEmployeeId('NEW')},Active,Employee,Grace,Hopperfield,Admiral`]);
      const { code, stdout, stderr } = await runJml(['import', file]);
      expect(code).toBe(1);
      expect(stderr).toMatch(/^jml: database error: a database function raised an error \(.*SQLSTATE P0001.*\); the query and its values are not shown\n$/);
      for (const output of [stdout, stderr]) expect(output).not.toMatch(/Grace|Hopperfield|Admiral|Failed query|insert into|params|inbox closed/);
    } finally {
      await database.db.execute(sql.raw('drop trigger refuse_inbox on hr_events; drop function refuse_inbox();'));
    }
  });

  it('reaches the log as class and codes only, even with the failing row in the driver error', async () => {
    const lines: string[] = [];
    const logger = createLogger('info', { write: (line: string) => void lines.push(line) });
    // A real failed query: the status check refuses the row, and Postgres puts the whole
    // row (names, e-mail) in the error's detail, drizzle the values in its message.
    const err = await database.db
      .insert(identities)
      .values({ employeeId: uniqueEmployeeId('BAD'), status: 'bogus', attributes: { givenName: 'Grace', email: 'grace.hopperfield@example.com' } })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(Error);
    expect(JSON.stringify(Object.getOwnPropertyDescriptors((err as Error).cause))).toContain('grace.hopperfield@example.com'); // what must not leak
    logger.error({ err }, 'insert failed');
    logger.warn({ err: (err as Error).message }, 'insert failed');
    expect(lines).toHaveLength(2);
    for (const line of lines) expect(line).not.toMatch(/Grace|grace\.hopperfield|insert into|Failing row/);
    expect(JSON.parse(lines[0]!)).toMatchObject({ err: { type: 'DrizzleQueryError', errors: [{}, { name: 'PostgresError', code: '23514' }] } });
  });
});
