// postgres.js 3.4.9 kills the process when Postgres goes away under load (porsager/postgres
// #1154, #1208): patches/postgres+3.4.9.patch, applied by `postinstall`, settles the query
// with CONNECTION_CLOSED instead. The crash comes from a timer, so it can only be seen from
// outside: test/support/postgres-driver-crash.ts runs transactions through a proxy that it
// kills mid-flight, once with the installed driver and once with a copy of it with the
// patch reversed. When a postgres release with the fix replaces the patch, delete the patch
// and the second case.
import { execFile } from 'node:child_process';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { testEnv } from '../support/env.js';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
const script = join(root, 'test/support/postgres-driver-crash.ts');
const PATCH = join(root, 'patches/postgres+3.4.9.patch');
const CONNECTION_ERRORS = ['CONNECTION_CLOSED', 'CONNECTION_ENDED', 'ECONNREFUSED', 'ECONNRESET'];

/** Runs the child to its end (or kills it after 30 s); never throws. */
async function runChild(postgresModule?: string): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', script], {
      cwd: root,
      timeout: 30_000,
      env: { ...process.env, DATABASE_URL: testEnv.databaseUrl, ...(postgresModule ? { POSTGRES_MODULE: postgresModule } : {}) },
    });
    return { code: 0, signal: null, stdout, stderr };
  } catch (err) {
    const failed = err as { code?: number | null; signal?: string | null; stdout?: string; stderr?: string };
    return { code: failed.code ?? null, signal: failed.signal ?? null, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
  }
}

const toRemove: string[] = [];
afterAll(async () => {
  for (const dir of toRemove) await rm(dir, { recursive: true, force: true });
});

describe('postgres.js when Postgres goes away under load', () => {
  it('with the patch: the process lives on and every transaction rejects with a connection error', async () => {
    const child = await runChild();
    expect(child, child.stderr).toMatchObject({ code: 0, signal: null });
    const { codes } = JSON.parse(child.stdout) as { codes: string[] };
    expect(codes).toHaveLength(8);
    for (const code of codes) expect(CONNECTION_ERRORS).toContain(code);
  });

  it('without it (the same driver, patch reversed): the process dies of the TypeError from nextWrite', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'jml-unpatched-'));
    toRemove.push(dir);
    await cp(join(root, 'node_modules/postgres'), join(dir, 'node_modules/postgres'), { recursive: true });
    // The patch's paths are node_modules/postgres/...; outside a repository git apply works like patch(1).
    await run('git', ['apply', '--reverse', PATCH], { cwd: dir });

    const child = await runChild(join(dir, 'node_modules/postgres/src/index.js'));
    expect(child.code).toBe(1);
    expect(child.stderr).toMatch(/TypeError: Cannot read properties of null \(reading 'write'\)\s+at Immediate\.nextWrite/);
  });
});
