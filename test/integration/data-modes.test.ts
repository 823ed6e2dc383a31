// ./data after `npm start`: Temporal's SQLite (names, e-mail addresses), slapd's folder
// (config.ldif with the root password hash, the directory database) and secrets.env are
// the owner's only: files 0600 (0700 for an executable), folders 0700. What an earlier run
// left readable is tightened on the next start.
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepareJmlStart, runJmlStart, type JmlStartProcess, type JmlStartSetup } from '../support/jml-start.js';

let setup: JmlStartSetup;
let jml: JmlStartProcess | undefined;

/** Every file and folder under `root` (the root too), with its permission bits; links are skipped. */
function modes(root: string): Map<string, number> {
  const found = new Map<string, number>();
  const pending = [root];
  while (pending.length) {
    const file = pending.pop()!;
    const stat = lstatSync(file);
    if (stat.isSymbolicLink()) continue;
    found.set(file.slice(root.length) || '/', stat.mode & 0o777);
    if (stat.isDirectory()) for (const name of readdirSync(file)) pending.push(join(file, name));
  }
  return found;
}

/** What group or others may read, write or enter, as `path mode` lines (empty when none). */
function exposed(root: string): string[] {
  return [...modes(root)].filter(([, mode]) => (mode & 0o077) !== 0).map(([file, mode]) => `${file} ${mode.toString(8)}`);
}

async function startAndStop(): Promise<void> {
  jml = runJmlStart(setup.env);
  await jml.waitForOutput(/jml-engine is running/, 150_000);
  jml.child.kill('SIGTERM');
  expect(await jml.exited).toEqual({ code: 0, signal: null });
}

beforeAll(async () => {
  setup = await prepareJmlStart();
  // As a clone under umask 022 had it before this rule: an open data folder, with a file.
  mkdirSync(setup.dataDir, { mode: 0o755 });
  chmodSync(setup.dataDir, 0o755);
  writeFileSync(join(setup.dataDir, 'notes.txt'), 'left by hand\n', { mode: 0o644 });
  chmodSync(join(setup.dataDir, 'notes.txt'), 0o644);
});
afterAll(async () => {
  if (jml && jml.child.exitCode === null && jml.child.signalCode === null) {
    jml.child.kill('SIGTERM');
    await jml.exited;
  }
  await setup?.cleanup();
});

describe('./data after jml start', () => {
  it('holds only owner-only files and folders, the SQLite file and the slapd folder among them', async () => {
    expect(exposed(setup.dataDir)).toEqual(['/ 755', '/notes.txt 644']);
    await startAndStop();
    const files = modes(setup.dataDir);
    for (const file of ['/temporal.sqlite', '/secrets.env', '/slapd/config.ldif', '/slapd/data/data.mdb', '/slapd/slapd.d/cn=config.ldif']) expect(files.has(file), file).toBe(true);
    expect(files.get('/')).toBe(0o700);
    expect(files.get('/temporal.sqlite')).toBe(0o600);
    expect(files.get('/slapd/config.ldif')).toBe(0o600);
    expect(exposed(setup.dataDir)).toEqual([]);
  }, 240_000);

  it('tightens on the next start whatever was opened up meanwhile', async () => {
    for (const [file] of modes(setup.dataDir)) {
      const full = join(setup.dataDir, file);
      chmodSync(full, lstatSync(full).isDirectory() ? 0o755 : 0o644);
    }
    expect(exposed(setup.dataDir).length).toBeGreaterThan(10);
    await startAndStop();
    expect(existsSync(join(setup.dataDir, 'temporal.sqlite'))).toBe(true);
    expect(exposed(setup.dataDir)).toEqual([]);
  }, 240_000);
});
