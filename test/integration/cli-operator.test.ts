// The operator's commands, run as an operator would (the real CLI in a child process):
// `jml grants` lists the grants waiting on a target that cannot be reached, `jml status`
// shows a person's request and grant status side by side, and `jml audit verify` walks the
// hash chain, exits 1 naming the first broken row and 0 on an intact chain.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { and, desc, eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { walkAuditChain, writeAudit } from '../../db/audit.js';
import { createDb, dropDatabase, ensureDatabase, runMigrations, type DbHandle } from '../../db/client.js';
import { auditLog, grants, identities } from '../../db/schema.js';
import { testConfig } from '../support/config.js';
import { eventually, startTestEngine, type TestEngine } from '../support/engine.js';
import { testEnv, uniqueEmployeeId } from '../support/env.js';

const REPO = new URL('../../', import.meta.url).pathname;
const ENGINEER = { givenName: 'Ada', familyName: 'Lovelace', department: 'Engineering', employmentType: 'employee' };
const dir = mkdtempSync(join(tmpdir(), 'jml-cli-operator-'));

function runJml(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  const childEnv = { ...process.env, JML_DATA_DIR: join(dir, 'data'), JML_CONFIG: join(dir, 'jml.config.yaml'), LOG_LEVEL: 'warn', ...env };
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'cli/index.ts', ...args], { cwd: REPO, env: childEnv, encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface GrantsJson {
  status: string;
  total: number;
  more: boolean;
  items: Array<{ employeeId: string; entitlementId: string; target: string; requestStatus: string; grantStatus: string; attempts: number; lastError: string | null }>;
}

describe('with a target that cannot be reached', () => {
  let engine: TestEngine;
  let env: Record<string, string>;
  const employeeId = uniqueEmployeeId('WAIT');

  beforeAll(async () => {
    engine = await startTestEngine({
      config: testConfig(
        { ...testEnv.ldap, url: 'ldap://127.0.0.1:1' },
        // A budget far longer than the test: the account grant stays provisioning, retried,
        // and the groups wait pending behind it.
        { retries: { initialInterval: '1s', maximumInterval: '2s', maximumAttempts: 100 } },
      ),
    });
    env = { DATABASE_URL: engine.databaseUrl, TEMPORAL_ADDRESS: testEnv.temporalAddress };
    await engine.submit({ type: 'hire', employeeId, attributes: ENGINEER });
    // Waiting: the connector has failed at least once and the grant is still provisioning.
    await eventually(async () => {
      const [row] = await engine.db
        .select({ status: grants.status, lastError: grants.lastError })
        .from(grants)
        .innerJoin(identities, eq(identities.id, grants.identityId))
        .where(and(eq(identities.employeeId, employeeId), eq(grants.entitlementId, 'directory-account')));
      return row?.status === 'provisioning' && row.lastError !== null;
    }, 30_000);
  });
  afterAll(async () => {
    await engine?.stop();
  });

  it('jml grants --status provisioning --json lists the account grant waiting on it', async () => {
    const { code, stdout, stderr } = await runJml(['grants', '--status', 'provisioning', '--json'], env);
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    const result = JSON.parse(stdout) as GrantsJson;
    expect(result).toMatchObject({ status: 'provisioning', total: 1, more: false });
    expect(result.items).toEqual([
      expect.objectContaining({ employeeId, entitlementId: 'directory-account', target: 'directory', requestStatus: 'auto_approved', grantStatus: 'provisioning' }),
    ]);
    expect(result.items[0]!.attempts).toBeGreaterThanOrEqual(1);
    expect(result.items[0]!.lastError).toEqual(expect.any(String));
  });

  it('jml grants --status pending lists the groups waiting behind the account, bounded by --limit', async () => {
    const all = await runJml(['grants', '--status', 'pending', '--target', 'directory', '--json'], env);
    expect(all.code).toBe(0);
    const listed = JSON.parse(all.stdout) as GrantsJson;
    expect(listed.items.map((g) => [g.employeeId, g.entitlementId, g.requestStatus, g.grantStatus]).sort()).toEqual([
      [employeeId, 'all-staff', 'auto_approved', 'pending'],
      [employeeId, 'employees', 'auto_approved', 'pending'],
      [employeeId, 'engineering', 'auto_approved', 'pending'],
    ]);

    const first = await runJml(['grants', '--status', 'pending', '--limit', '1', '--json'], env);
    expect(JSON.parse(first.stdout)).toMatchObject({ total: 3, more: true, items: [expect.objectContaining({ employeeId })] });
    const text = await runJml(['grants', '--status', 'pending', '--limit', '1'], env);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('3 pending grants; the first 1 shown');
  });

  it('jml grants names the known targets when asked for one that does not exist, and refuses an unknown status', async () => {
    const target = await runJml(['grants', '--status', 'failed', '--target', 'nowhere'], env);
    expect(target.code).toBe(1);
    expect(target.stderr).toContain('known targets: directory');
    const status = await runJml(['grants', '--status', 'broken'], env);
    expect(status.code).not.toBe(0);
    expect(status.stderr).toMatch(/Allowed choices are pending, provisioning, active, failed, revoking, revoked/);
  });

  it('jml status shows each grant with its request status and grant status side by side, the events and the plan', async () => {
    // Any spelling of the id is the same person.
    const { code, stdout, stderr } = await runJml(['status', employeeId.toLowerCase(), '--json'], env);
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    const view = JSON.parse(stdout) as {
      employeeId: string;
      identity: { status: string; attributes: Record<string, string> };
      grants: Array<{ entitlementId: string; requestStatus: string; grantStatus: string; lastError: string | null }>;
      events: Array<{ type: string; status: string }>;
      plan: { available: boolean; workflow?: boolean };
    };
    expect(view.employeeId).toBe(employeeId);
    expect(view.identity).toMatchObject({ status: 'active', attributes: ENGINEER });
    const byEntitlement = Object.fromEntries(view.grants.map((g) => [g.entitlementId, [g.requestStatus, g.grantStatus]]));
    expect(byEntitlement).toEqual({
      'directory-account': ['auto_approved', 'provisioning'],
      'all-staff': ['auto_approved', 'pending'],
      employees: ['auto_approved', 'pending'],
      engineering: ['auto_approved', 'pending'],
    });
    expect(view.grants.find((g) => g.entitlementId === 'directory-account')?.lastError).toEqual(expect.any(String));
    expect(view.events).toEqual([expect.objectContaining({ type: 'hire' })]);
    // The engine's worker answers the lifecycle workflow's query.
    expect(view.plan).toMatchObject({ available: true, workflow: true });

    const text = await runJml(['status', employeeId], env);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(`${employeeId}: active  Ada Lovelace`);
    expect(text.stdout).toMatch(/REQUEST +GRANT/);
    expect(text.stdout).toMatch(/directory-account +directory +account +birthright +auto_approved +provisioning/);
  });

  it('jml status still shows the person when Temporal cannot be reached, saying the plan is unavailable', async () => {
    const { code, stdout } = await runJml(['status', employeeId, '--json'], { ...env, TEMPORAL_ADDRESS: '127.0.0.1:1' });
    expect(code).toBe(0);
    const view = JSON.parse(stdout) as { grants: unknown[]; plan: { available: boolean; reason?: string } };
    expect(view.grants).toHaveLength(4);
    expect(view.plan).toEqual({ available: false, reason: expect.any(String) });
  });

  it('jml status refuses an invalid employee id with exit code 2, and says so for an unknown person', async () => {
    const invalid = await runJml(['status', 'not an id'], env);
    expect(invalid.code).toBe(2);
    expect(invalid.stderr).toContain('must be 1..64 characters');
    const unknown = await runJml(['status', uniqueEmployeeId('NOBODY')], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^jml: no identity and no HR event for NOBODY-/);
  });
});

describe('jml audit verify', () => {
  let databaseUrl: string;
  let database: DbHandle;

  beforeAll(async () => {
    // Its own database: tampering with a shared chain would break every other file's check.
    const url = new URL(testEnv.databaseUrl);
    url.pathname = `${url.pathname}_auditcli_${Math.random().toString(36).slice(2, 10)}`;
    databaseUrl = url.toString();
    await ensureDatabase(databaseUrl);
    await runMigrations(databaseUrl);
    database = createDb(databaseUrl, { max: 2 });
    for (let i = 0; i < 7; i += 1) {
      await database.db.transaction((tx) => writeAudit(tx, { actor: 'test', action: 'thing.changed', subjectType: 'thing', subjectId: String(i), after: { n: i } }));
    }
  });
  afterAll(async () => {
    await database?.close();
    if (databaseUrl) await dropDatabase(databaseUrl);
  });

  /** What only a superuser can do: a statement with the append-only trigger switched off. */
  async function withoutTriggers(statement: ReturnType<typeof sql>): Promise<void> {
    await database.db.transaction(async (tx) => {
      await tx.execute(sql`set local session_replication_role = replica`);
      await tx.execute(statement);
    });
  }

  const seqs = async () => (await database.db.select({ seq: auditLog.seq }).from(auditLog).orderBy(auditLog.seq)).map((r) => r.seq);

  it('exits 0 on an intact chain, printing the rows checked and the head hash', async () => {
    const [head] = await database.db.select().from(auditLog).orderBy(desc(auditLog.seq)).limit(1);
    const text = await runJml(['audit', 'verify'], { DATABASE_URL: databaseUrl });
    expect({ code: text.code, stderr: text.stderr }).toEqual({ code: 0, stderr: '' });
    expect(text.stdout).toBe(`audit chain intact: 7 rows checked; head seq ${head!.seq}, hash ${head!.hash}\n`);

    const json = await runJml(['audit', 'verify', '--json'], { DATABASE_URL: databaseUrl });
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({ ok: true, rows: 7, head: { seq: head!.seq, hash: head!.hash }, broken: null });
    // Walked in batches smaller than the chain (and than a batch boundary), the answer is the same.
    expect(await walkAuditChain(database.db, { batchSize: 2 })).toEqual(await walkAuditChain(database.db));
  });

  it('exits 1 naming the row edited behind the append-only trigger', async () => {
    const edited = (await seqs())[3]!;
    await withoutTriggers(sql`update audit_log set actor = 'mallory' where seq = ${edited}`);

    const text = await runJml(['audit', 'verify'], { DATABASE_URL: databaseUrl });
    expect(text.code).toBe(1);
    expect(text.stdout).toContain(`audit chain BROKEN at seq ${edited}: its content does not match its hash`);
    expect(text.stdout).toContain('rows checked: 4');

    const json = await runJml(['audit', 'verify', '--json'], { DATABASE_URL: databaseUrl });
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, rows: 4, broken: { seq: edited } });
    expect(await walkAuditChain(database.db, { batchSize: 3 })).toMatchObject({ ok: false, rows: 4, broken: { seq: edited } });

    // Put back, the chain is intact again: the hash covers exactly what was changed.
    await withoutTriggers(sql`update audit_log set actor = 'test' where seq = ${edited}`);
    expect((await runJml(['audit', 'verify'], { DATABASE_URL: databaseUrl })).code).toBe(0);
  });

  it('exits 1 naming the row after a removed one', async () => {
    const [, before, removed, next] = await seqs();
    await withoutTriggers(sql`delete from audit_log where seq = ${removed!}`);
    const { code, stdout } = await runJml(['audit', 'verify'], { DATABASE_URL: databaseUrl });
    expect(code).toBe(1);
    expect(stdout).toContain(`audit chain BROKEN at seq ${next}: its prev_hash is not the hash of the row before it, seq ${before}: a row between them was removed (seq ${removed} absent)`);
  });
});
