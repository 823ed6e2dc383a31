// The operator's alert commands, run as an operator would (the real CLI in a child process),
// on a database of their own (other files raise alerts in the shared one): `jml alerts
// --open` lists what is not yet resolved, `jml ack` and `jml resolve` move an alert along its
// status machine, audited with the operating system user and the note, and a refused move
// exits 1 naming the alert's status.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { and, asc, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, dropDatabase, type DbHandle } from '../../db/client.js';
import { alerts, auditLog } from '../../db/schema.js';
import { raiseAlert, resolveAlerts, type NewAlert } from '../../services/alerts.js';
import { freshDatabase } from '../support/engine.js';
import { testEnv } from '../support/env.js';

const REPO = new URL('../../', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'jml-cli-alerts-'));

let databaseUrl: string | undefined;
let handle: DbHandle;

function runJml(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { ...process.env, JML_DATA_DIR: join(dir, 'data'), JML_CONFIG: join(dir, 'jml.config.yaml'), LOG_LEVEL: 'warn', DATABASE_URL: databaseUrl! };
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'cli/index.ts', ...args], { cwd: REPO, env, encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

async function raise(alert: NewAlert): Promise<string> {
  const id = await handle.db.transaction((tx) => raiseAlert(tx, alert));
  if (!id) throw new Error('raiseAlert returned no id');
  return id;
}

function alert(kind: string, employeeId: string, subject: string): NewAlert {
  const grantId = randomUUID();
  return { kind, severity: 'critical', subject, details: { grantId, employeeId }, dedupeKey: `${kind}:${grantId}` };
}

interface AlertsJson {
  open: boolean;
  kind: string | null;
  more: boolean;
  items: Array<{ id: string; kind: string; status: string; count: number; subject: string; delivery: { status: string } }>;
}

const ids: Record<'failed' | 'stuck' | 'resolved', string> = { failed: '', stuck: '', resolved: '' };
const actor = `cli:${userInfo().username}`;

beforeAll(async () => {
  databaseUrl = await freshDatabase(testEnv.databaseUrl);
  handle = createDb(databaseUrl, { max: 2 });
  ids.resolved = await raise(alert('grant_failed', 'E100', 'Granting engineering to E100 failed'));
  await handle.db.transaction(async (tx) => {
    const [row] = await tx.select({ dedupeKey: alerts.dedupeKey }).from(alerts).where(eq(alerts.id, ids.resolved));
    await resolveAlerts(tx, [row!.dedupeKey], 'the retry made it active');
  });
  ids.stuck = await raise(alert('grant_stuck', 'E200', 'all-staff for E200 is stuck in provisioning'));
  const failed = alert('grant_failed', 'E300', 'Granting directory-account to E300 failed\u001b[2J');
  ids.failed = await raise(failed);
  // Raised again: one alert, counted.
  await raise(failed);
});

afterAll(async () => {
  await handle?.close();
  if (databaseUrl) await dropDatabase(databaseUrl);
  rmSync(dir, { recursive: true, force: true });
});

describe('jml alerts, ack and resolve', () => {
  it('jml alerts --open lists the unresolved alerts newest first, counted, and --kind narrows them', async () => {
    // Three processes at once: each spends a few seconds starting up.
    const [openRun, allRun, stuckRun] = await Promise.all([runJml(['alerts', '--open', '--json']), runJml(['alerts', '--json']), runJml(['alerts', '--open', '--kind', 'grant_stuck', '--json'])]);
    const { code, stdout, stderr } = openRun;
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    const listed = JSON.parse(stdout) as AlertsJson;
    expect(listed).toMatchObject({ open: true, more: false });
    expect(listed.items.map((a) => [a.id, a.kind, a.status, a.count, a.delivery.status])).toEqual([
      [ids.failed, 'grant_failed', 'open', 2, 'pending'],
      [ids.stuck, 'grant_stuck', 'open', 1, 'pending'],
    ]);
    const all = JSON.parse(allRun.stdout) as AlertsJson;
    expect(all.items.map((a) => a.id)).toEqual([ids.failed, ids.stuck, ids.resolved]);
    const stuck = JSON.parse(stuckRun.stdout) as AlertsJson;
    expect(stuck.items.map((a) => a.id)).toEqual([ids.stuck]);
  });

  it('prints a table with id, severity, kind, status, count, last seen, delivery and the subject, escaped', async () => {
    const { code, stdout } = await runJml(['alerts', '--open', '--limit', '1']);
    expect(code).toBe(0);
    const lines = stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('1 unresolved alert, newest first (more: --limit to see them)');
    expect(lines[1]).toMatch(/^ {2}ID\s+SEVERITY\s+KIND\s+STATUS\s+COUNT\s+LAST SEEN\s+DELIVERY\s+SUBJECT$/);
    expect(lines[2]).toMatch(new RegExp(`^  ${ids.failed}\\s+critical\\s+grant_failed\\s+open\\s+2\\s+\\d{4}-\\d\\d-\\d\\dT\\S+Z\\s+pending\\s+Granting directory-account to E300 failed\\\\x1b\\[2J$`));
    expect(stdout).not.toContain('\u001b');
  });

  it('jml ack acknowledges with the note, audited as the operating system user; a second ack exits 1 naming the status', async () => {
    const acked = await runJml(['ack', ids.failed, '--note', 'looking at the directory']);
    expect({ code: acked.code, stderr: acked.stderr }).toEqual({ code: 0, stderr: '' });
    expect(acked.stdout).toContain(`${ids.failed}: acknowledged at `);
    const open = JSON.parse((await runJml(['alerts', '--open', '--json'])).stdout) as AlertsJson;
    expect(open.items.map((a) => [a.id, a.status])).toEqual([
      [ids.failed, 'acknowledged'],
      [ids.stuck, 'open'],
    ]);

    const again = await runJml(['ack', ids.failed]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`alert ${ids.failed} is acknowledged; it cannot be acknowledged`);

    const audit = await handle.db
      .select({ actor: auditLog.actor, action: auditLog.action, after: auditLog.after })
      .from(auditLog)
      .where(and(eq(auditLog.subjectType, 'alert'), eq(auditLog.subjectId, ids.failed)))
      .orderBy(asc(auditLog.seq));
    expect(audit.map((a) => a.action)).toEqual(['alert.raised', 'alert.acknowledged']);
    expect(audit[1]).toEqual({ actor, action: 'alert.acknowledged', after: { status: 'acknowledged', note: 'looking at the directory' } });
  });

  it('jml resolve needs a note, resolves with it, and refuses a resolved alert', async () => {
    const noNote = await runJml(['resolve', ids.stuck]);
    expect(noNote.code).not.toBe(0);
    expect(noNote.stderr).toContain("required option '--note <text>' not specified");

    const resolved = await runJml(['resolve', ids.stuck, '--note', 'the target is back; retried', '--json']);
    expect({ code: resolved.code, stderr: resolved.stderr }).toEqual({ code: 0, stderr: '' });
    const view = JSON.parse(resolved.stdout) as { status: string; history: Array<{ actor: string; action: string; note: string | null }> };
    expect(view.status).toBe('resolved');
    expect(view.history.at(-1)).toEqual(expect.objectContaining({ actor, action: 'alert.resolved', note: 'the target is back; retried' }));

    const twice = await runJml(['resolve', ids.resolved, '--note', 'again']);
    expect(twice.code).toBe(1);
    expect(twice.stderr).toContain(`alert ${ids.resolved} is resolved; it cannot be resolved`);
  });

  it('refuses an id that is not a UUID (usage, exit 2) and names an unknown alert (exit 1)', async () => {
    const bad = await runJml(['ack', 'not-an-id']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('expected an alert id');
    const unknown = randomUUID();
    const missing = await runJml(['ack', unknown]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`no alert ${unknown}`);
  });
});
