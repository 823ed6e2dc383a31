// An operator's retry of a failed grant (`POST /api/v1/grants/{id}/retry`, `jml retry-grant`):
// the workflow that owns the grant tries again at once, not at the end of its backoff. The
// backoff here is ten minutes, so only the retry can make a grant active within the test.
// A grant fails for good (not retried by the activity) when its group's container does not
// exist in the directory; the "target is back" when the test creates that container. A
// revocation fails while the target is paused (the kill switch), and is retried once resumed.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { and, eq } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { Client as LdapClient } from 'ldapts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiToken } from '../../api/auth.js';
import { alerts, auditLog, grants, identities } from '../../db/schema.js';
import { canonicalEmployeeId } from '../../domain/employee-id.js';
import { setTargetPaused } from '../../services/target-controls.js';
import { jitElevationWorkflowId, withdrawUpdate } from '../../workflows/request-messages.js';
import { buildTestApp } from '../support/api.js';
import { testConfig } from '../support/config.js';
import { eventually, startTestEngine, type TestEngine } from '../support/engine.js';
import { testEnv, uniqueEmployeeId, uniqueName } from '../support/env.js';
import { saveHistory } from '../support/histories.js';
import { hire, startElevation, statuses } from '../support/requests.js';
import { startSmtpCapture, type SmtpCapture } from '../support/smtp.js';

const REPO = new URL('../../', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'jml-grant-retry-'));
// Containers that do not exist yet: a group below one cannot be created until the test makes it.
const vaultOu = `ou=${uniqueName('vault')},${testEnv.ldap.groupsDN}`;
const ledgerOu = `ou=${uniqueName('ledger')},${testEnv.ldap.groupsDN}`;

let engine: TestEngine;
let smtp: SmtpCapture;
let app: FastifyInstance;
let ldap: LdapClient;
let operatorName: string;
let operator: string;
let reader: string;

function runJml(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = {
    ...process.env,
    JML_DATA_DIR: join(dir, 'data'),
    JML_CONFIG: join(dir, 'jml.config.yaml'),
    LOG_LEVEL: 'warn',
    DATABASE_URL: engine.databaseUrl,
    REDIS_URL: testEnv.redisUrl,
    TEMPORAL_ADDRESS: testEnv.temporalAddress,
    JML_TASK_QUEUE: engine.taskQueue,
  };
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'cli/index.ts', ...args], { cwd: REPO, env, encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

async function createOu(dn: string): Promise<void> {
  const ou = dn.slice('ou='.length, dn.indexOf(','));
  await ldap.add(dn, { objectClass: ['top', 'organizationalUnit'], ou });
}

async function grantOf(employeeId: string, entitlementId: string) {
  const [row] = await engine.db
    .select({ grant: grants })
    .from(grants)
    .innerJoin(identities, eq(identities.id, grants.identityId))
    .where(and(eq(identities.employeeId, canonicalEmployeeId(employeeId)), eq(grants.entitlementId, entitlementId)));
  return row?.grant;
}

/**
 * The worker reads a target's kill switch at most once a second (services/target-controls.ts
 * pausedCheck): a switch flipped now holds for every call that starts after this.
 */
const switchSeen = () => new Promise((resolve) => setTimeout(resolve, 1_200));
const alertOf = async (dedupeKey: string) => (await engine.db.select().from(alerts).where(eq(alerts.dedupeKey, dedupeKey)))[0];
const retry = (id: string, token = operator) => app.inject({ method: 'POST', url: `/api/v1/grants/${id}/retry`, headers: { authorization: `Bearer ${token}` } });

beforeAll(async () => {
  const base = testConfig(testEnv.ldap);
  const config = testConfig(testEnv.ldap, {
    entitlements: [
      ...base.entitlements,
      { id: 'vault', target: 'directory', kind: 'group', ref: `cn=vault,${vaultOu}` },
      { id: 'ledger', target: 'directory', kind: 'group', ref: `cn=ledger,${ledgerOu}`, jit: { eligible: true, maxDuration: '1h', approval: 'none' } },
    ],
    birthright: [{ name: 'everyone', grant: ['directory-account'] }, { name: 'vault', when: { department: 'Vault' }, grant: ['vault'] }],
    // Ten minutes before any workflow tries a failed grant again by itself.
    retries: { initialInterval: '100ms', maximumInterval: '300ms', maximumAttempts: 3, afterFailure: { initialInterval: '10m', maximumInterval: '30m' } },
  });
  // Mail goes somewhere real: the request workflows' notices are sent, not failed and retried.
  smtp = await startSmtpCapture();
  engine = await startTestEngine({ config, smtpUrl: smtp.url });
  app = await buildTestApp(engine);
  operatorName = uniqueName('operator');
  operator = (await createApiToken(engine.db, { name: operatorName, scopes: ['alerts:write'] })).token;
  reader = (await createApiToken(engine.db, { name: uniqueName('reader'), scopes: ['identities:read'] })).token;
  ldap = new LdapClient({ url: testEnv.ldap.url });
  await ldap.bind(testEnv.ldap.bindDN, testEnv.ldap.bindPassword);
}, 120_000);

afterAll(async () => {
  for (const dn of [`cn=vault,${vaultOu}`, vaultOu, `cn=ledger,${ledgerOu}`, ledgerOu]) await ldap?.del(dn).catch(() => undefined);
  await ldap?.unbind().catch(() => undefined);
  await app?.close();
  await engine?.stop();
  await smtp?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('retrying a failed grant', () => {
  it('a failed birthright grant becomes active right after the retry, its alert resolves itself, and the retry is audited', async () => {
    const employeeId = uniqueEmployeeId('RV');
    await hire(engine, employeeId, { department: 'Vault' });
    const failed = await eventually(async () => {
      const grant = await grantOf(employeeId, 'vault');
      return grant?.status === 'failed' && grant;
    }, 30_000);
    expect((await alertOf(`grant_failed:${failed.id}`))?.status).toBe('open');

    // Refusals first: who may ask, and what the route says of a grant it cannot retry.
    expect((await retry(failed.id, reader)).statusCode).toBe(403);
    expect((await app.inject({ method: 'POST', url: `/api/v1/grants/${failed.id}/retry` })).statusCode).toBe(401);
    const noTemporal = await buildTestApp(engine, { temporal: undefined });
    try {
      const unavailable = await noTemporal.inject({ method: 'POST', url: `/api/v1/grants/${failed.id}/retry`, headers: { authorization: `Bearer ${operator}` } });
      expect(unavailable.statusCode).toBe(503);
    } finally {
      await noTemporal.close();
    }

    // The target is back; without the retry nothing would try for ten minutes.
    await createOu(vaultOu);
    const response = await retry(failed.id.toUpperCase());
    expect(response.statusCode).toBe(202);
    const statusUrl = `http://jml.test/api/v1/identities/${failed.identityId}/grants`;
    expect(response.json()).toEqual({ id: failed.id, grantStatus: 'failed', statusUrl });
    expect(response.headers.location).toBe(statusUrl);

    await eventually(async () => (await grantOf(employeeId, 'vault'))?.status === 'active', 30_000);
    await eventually(async () => (await alertOf(`grant_failed:${failed.id}`))?.status === 'resolved', 10_000);
    const [audit] = await engine.db
      .select()
      .from(auditLog)
      .where(and(eq(auditLog.subjectId, failed.id), eq(auditLog.action, 'grant.retry_requested')));
    expect(audit).toMatchObject({ actor: `api:${operatorName}`, subjectType: 'grant', before: { status: 'failed' } });
    // The location it names shows the grant, now active.
    const listed = await app.inject({ method: 'GET', url: `/api/v1/identities/${failed.identityId}/grants`, headers: { authorization: `Bearer ${reader}` } });
    expect(listed.json<{ items: Array<{ grantId?: string; id?: string; entitlementId: string; grantStatus: string }> }>().items.find((g) => g.entitlementId === 'vault')?.grantStatus).toBe('active');

    // Active now: a retry is a 409 naming its status.
    const again = await retry(failed.id);
    expect(again.statusCode).toBe(409);
    expect(again.json()).toMatchObject({ type: 'urn:jml:problem:grant-not-failed', status: 409, grantStatus: 'active' });
  }, 90_000);

  it('answers 404 for an unknown grant and for an id that is not a UUID, naming neither', async () => {
    for (const id of [crypto.randomUUID(), 'not-a-uuid', "1' or '1'='1"]) {
      const response = await retry(encodeURIComponent(id));
      expect(response.statusCode).toBe(404);
      expect(response.json()).toMatchObject({ type: 'urn:jml:problem:not-found', detail: 'No such grant.' });
    }
  });

  it("an elevation's failed grant and then its failed revocation are retried through its own workflow, the revocation from the CLI", async () => {
    const employeeId = uniqueEmployeeId('RL');
    await hire(engine, employeeId);
    const requestId = await startElevation(engine, { employeeId, entitlementId: 'ledger', durationMs: 3_600_000 });
    const grantId = await eventually(async () => {
      const { grant, grantStatus } = await statuses(engine, requestId);
      return grantStatus === 'failed' && grant?.id;
    }, 30_000);

    await createOu(ledgerOu);
    expect((await retry(grantId)).statusCode).toBe(202);
    await eventually(async () => (await statuses(engine, requestId)).grantStatus === 'active', 30_000);
    await eventually(async () => (await alertOf(`grant_failed:${grantId}`))?.status === 'resolved', 10_000);

    // The target is paused while the elevation is revoked: the revocation fails, with its alert.
    await setTargetPaused(engine.db, 'directory', true, { actor: 'test' });
    await switchSeen();
    let resumed = false;
    try {
      const outcome = await engine.client.workflow.getHandle(jitElevationWorkflowId(requestId)).executeUpdate(withdrawUpdate, { args: [{ by: 'test', reason: 'done early' }] });
      expect(outcome.revocationStatus).toBe('pending');
      await eventually(async () => (await alertOf(`revoke_failed:${grantId}`))?.status === 'open', 30_000);
      expect((await statuses(engine, requestId)).grantStatus).toBe('failed');
      await setTargetPaused(engine.db, 'directory', false, { actor: 'test' });
      resumed = true;
      await switchSeen();

      // The CLI, as an operator runs it: refusals exit 1 naming why.
      const unknown = crypto.randomUUID();
      const [missing, cli] = await Promise.all([runJml(['retry-grant', unknown]), runJml(['retry-grant', grantId, '--json'])]);
      expect(missing.code).toBe(1);
      expect(missing.stderr).toContain(`no grant ${unknown}`);
      expect({ code: cli.code, stderr: cli.stderr }).toEqual({ code: 0, stderr: '' });
      expect(JSON.parse(cli.stdout)).toMatchObject({ id: grantId, grantStatus: 'failed', entitlementId: 'ledger', woke: [jitElevationWorkflowId(requestId)] });
      await eventually(async () => (await statuses(engine, requestId)).grantStatus === 'revoked', 30_000);
      await eventually(async () => (await alertOf(`revoke_failed:${grantId}`))?.status === 'resolved', 10_000);
      const retries = await engine.db
        .select({ actor: auditLog.actor, after: auditLog.after })
        .from(auditLog)
        .where(and(eq(auditLog.subjectId, grantId), eq(auditLog.action, 'grant.retry_requested')));
      const audit = retries.find((r) => r.actor.startsWith('cli'));
      expect(audit?.after).toMatchObject({ status: 'failed', revokeReason: 'withdrawn' });
      expect(audit?.actor).toMatch(/^cli(:|$)/);

      // The elevation's history so far (the retried grant, the patched revocation wait), kept for replay.
      await saveHistory(engine.client, jitElevationWorkflowId(requestId), 'jit-grant-retried');

      const revoked = await runJml(['retry-grant', grantId]);
      expect(revoked.code).toBe(1);
      expect(revoked.stderr).toContain(`grant ${grantId} is revoked; only a failed grant can be retried`);
    } finally {
      if (!resumed) await setTargetPaused(engine.db, 'directory', false, { actor: 'test' });
    }
  }, 120_000);

  it('the other commands that reach Temporal the same way: jml retry refuses an unknown event, jml explain shows a person, jml reconcile runs now', async () => {
    const employeeId = uniqueEmployeeId('GX');
    await hire(engine, employeeId);
    const unknown = uniqueName('evt');
    const [retry, explain, reconcile] = await Promise.all([runJml(['retry', unknown]), runJml(['explain', employeeId, '--json']), runJml(['reconcile', '--target', 'directory', '--json'])]);
    expect(retry.code).toBe(1);
    expect(retry.stderr).toContain(`no HR event ${unknown}`);
    expect({ code: explain.code, stderr: explain.stderr }).toEqual({ code: 0, stderr: '' });
    expect(JSON.parse(explain.stdout)).toMatchObject({ employeeId, status: 'active' });
    expect({ code: reconcile.code, stderr: reconcile.stderr }).toEqual({ code: 0, stderr: '' });
    expect(JSON.parse(reconcile.stdout)).toEqual([expect.objectContaining({ target: 'directory', repair: false })]);
  }, 120_000);
});
