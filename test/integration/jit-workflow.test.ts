// Just-in-time elevations against the real things: the jitElevation workflow on Temporal, a
// slapd of this file's own (so it can be stopped to make a revocation fail), Postgres, and
// mail through a real SMTP server. Elevations are recorded as the API records them.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alerts, approvals } from '../../db/schema.js';
import { createApiToken } from '../../api/auth.js';
import { startSlapd, type SlapdServer } from '../../scripts/slapd.js';
import { decideStage } from '../../services/decisions.js';
import { extendUpdate, jitElevationWorkflowId, withdrawUpdate } from '../../workflows/request-messages.js';
import { buildTestApp } from '../support/api.js';
import { testConfig } from '../support/config.js';
import { eventually, startTestEngine, type TestEngine } from '../support/engine.js';
import { saveHistory } from '../support/histories.js';
import { uniqueEmployeeId, uniqueName } from '../support/env.js';
import { emailOf, hire, startElevation, statuses } from '../support/requests.js';
import { startSmtpCapture, type SmtpCapture } from '../support/smtp.js';

let dir: string;
let slapd: SlapdServer;
let port: number;
let engine: TestEngine;
let smtp: SmtpCapture;
const owner = uniqueEmployeeId('O');
const manager = uniqueEmployeeId('M');
const group = (cn: string) => `cn=${cn},${slapd.groupsDN}`;
const member = (employeeId: string, cn: string) => engine.connector.isGroupMember(employeeId, group(cn));

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'jml-slapd-jit-'));
  slapd = await startSlapd({ dir, keep: true });
  port = Number(new URL(slapd.url).port);
  smtp = await startSmtpCapture();
  const base = testConfig(slapd);
  const jit = (extra: Record<string, unknown> = {}) => ({ eligible: true, maxDuration: '1m', approval: 'none', warnBefore: '2s', ...extra });
  const config = testConfig(slapd, {
    entitlements: [
      ...base.entitlements.map((e) => (e.id === 'engineering' ? { ...e, jit: jit() } : e)),
      { id: 'prod-admin', target: 'directory', kind: 'group', ref: group('prod-admin'), risk: 'critical', owner, jit: jit({ maxExtensions: 1 }) },
      { id: 'db-admin', target: 'directory', kind: 'group', ref: group('db-admin'), risk: 'high', owner, jit: jit({ approval: 'manager' }) },
      { id: 'break-glass', target: 'directory', kind: 'group', ref: group('break-glass'), risk: 'critical', owner, jit: jit({ approval: 'manager', breakGlass: true }) },
    ],
    // Fast retries: a revocation the directory refuses fails within a second or two, and is tried again a second later.
    retries: { initialInterval: '100ms', maximumInterval: '200ms', maximumAttempts: 2, afterFailure: { initialInterval: '1s', maximumInterval: '2s' } },
    approval: { timeout: '10m', reminderAfter: '5m', escalateAfter: '8m' },
  });
  engine = await startTestEngine({ config, smtpUrl: smtp.url });
  await hire(engine, owner);
  await hire(engine, manager);
}, 120_000);
afterAll(async () => {
  await engine?.stop();
  await smtp?.stop();
  await slapd?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function engineer(): Promise<string> {
  const employeeId = uniqueEmployeeId('E');
  await hire(engine, employeeId, { managerId: manager });
  return employeeId;
}

/** Ends an elevation early (what POST /jit/elevations/{id}/revoke sends). */
const revokeEarly = (requestId: string, by: string, reason?: string) =>
  engine.client.workflow.getHandle(jitElevationWorkflowId(requestId)).executeUpdate(withdrawUpdate, { args: [{ by, reason: reason ?? null }] });

/** The elevation once its grant is proven and its end fixed. */
async function active(requestId: string) {
  return eventually(async () => {
    const s = await statuses(engine, requestId);
    return s.grantStatus === 'active' && s.request?.expiresAt != null && s;
  }, 30_000);
}

describe('a JIT elevation', () => {
  it('appears in the directory, warns before its end, and is gone after it, proven, with its lag recorded', async () => {
    const employeeId = await engineer();
    const requestId = await startElevation(engine, { employeeId, entitlementId: 'prod-admin', durationMs: 5_000 });
    const granted = await active(requestId);
    expect(granted.requestStatus).toBe('auto_approved');
    expect(await member(employeeId, 'prod-admin')).toBe(true);
    await smtp.waitFor((m) => m.to.includes(emailOf(employeeId)) && /^Access ends soon/.test(m.subject ?? ''), 15_000);

    const ended = await eventually(async () => {
      const s = await statuses(engine, requestId);
      return s.revocationStatus === 'revoked' && s;
    }, 30_000);
    expect(ended).toMatchObject({ requestStatus: 'auto_approved', grantStatus: 'revoked' });
    expect(ended.grant?.revokeReason).toBe('expired');
    expect(await member(employeeId, 'prod-admin')).toBe(false);
    // revokedAt - expiresAt, recorded (how small it is is bench/jit.ts's to measure).
    expect(ended.request?.revokedAt).not.toBeNull();
    expect(ended.request?.revocationLagMs).toBe(ended.request!.revokedAt!.getTime() - ended.request!.expiresAt!.getTime());
    expect(ended.request!.revocationLagMs!).toBeGreaterThanOrEqual(0);
    // ...and as the Prometheus histogram.
    const exposition = await engine.metrics.getSingleMetricAsString('jml_revocation_lag_seconds');
    expect(Number(/^jml_revocation_lag_seconds_count\{kind="jit"\} (\d+)$/m.exec(exposition)?.[1])).toBeGreaterThanOrEqual(1);
    await saveHistory(engine.client, jitElevationWorkflowId(requestId), 'jit-expired');
  });

  it('extend moves its end through policy (once here), and an early revoke removes the access', async () => {
    const employeeId = await engineer();
    const requestId = await startElevation(engine, { employeeId, entitlementId: 'prod-admin', durationMs: 20_000 });
    const before = await active(requestId);
    const handle = engine.client.workflow.getHandle(jitElevationWorkflowId(requestId));
    const extended = await handle.executeUpdate(extendUpdate, { args: [{ by: employeeId, durationMs: 10_000 }] });
    expect(extended).toMatchObject({ status: 'extended', extensions: 1 });
    const after = await statuses(engine, requestId);
    expect(after.request!.expiresAt!.getTime()).toBe(before.request!.expiresAt!.getTime() + 10_000);
    expect(after.grant!.expiresAt!.getTime()).toBe(after.request!.expiresAt!.getTime());
    // maxExtensions is 1: a second extension is refused, naming the rule.
    await expect(handle.executeUpdate(extendUpdate, { args: [{ by: employeeId, durationMs: 1_000 }] })).rejects.toMatchObject({ cause: { type: 'ExtensionRefused', details: ['too_many_extensions', 'duration'] } });

    const removal = await revokeEarly(requestId, employeeId, 'done early');
    expect(removal).toMatchObject({ revocationStatus: 'pending' });
    await eventually(async () => (await statuses(engine, requestId)).revocationStatus === 'revoked', 30_000);
    expect(await member(employeeId, 'prod-admin')).toBe(false);
    const ended = await statuses(engine, requestId);
    expect(ended.grant?.revokeReason).toBe('withdrawn');
    // Revoked before its end: no lag to speak of.
    expect(ended.request?.revocationLagMs).toBeNull();
  });

  it('two overlapping elevations keep the access until the later one ends (AWS TEAM #279)', async () => {
    const employeeId = await engineer();
    const first = await startElevation(engine, { employeeId, entitlementId: 'prod-admin', durationMs: 4_000 });
    await active(first);
    const second = await startElevation(engine, { employeeId, entitlementId: 'prod-admin', durationMs: 12_000 });
    await active(second);

    const firstEnded = await eventually(async () => {
      const s = await statuses(engine, first);
      return s.revocationStatus !== null && s;
    }, 30_000);
    expect(firstEnded.revocationStatus).toBe('retained');
    expect(firstEnded.request?.retainedBy).toEqual([`request ${second}`]);
    expect(await member(employeeId, 'prod-admin')).toBe(true);
    expect((await statuses(engine, second)).revocationStatus).toBeNull();

    await eventually(async () => (await statuses(engine, second)).revocationStatus === 'revoked', 30_000);
    expect(await member(employeeId, 'prod-admin')).toBe(false);
    await saveHistory(engine.client, jitElevationWorkflowId(first), 'jit-overlap-retained');
  });

  it('does not remove an entitlement birthright also grants when an elevation of it ends', async () => {
    const employeeId = await engineer(); // Engineering: the birthright rule `engineering` grants the group
    await eventually(() => member(employeeId, 'engineering'));
    const requestId = await startElevation(engine, { employeeId, entitlementId: 'engineering', durationMs: 3_000 });
    await active(requestId);
    const ended = await eventually(async () => {
      const s = await statuses(engine, requestId);
      return s.revocationStatus !== null && s;
    }, 30_000);
    expect(ended).toMatchObject({ revocationStatus: 'retained' });
    expect(ended.request?.retainedBy).toEqual(['birthright rule engineering']);
    expect(await member(employeeId, 'engineering')).toBe(true);
  });

  it('when the directory refuses the revocation: failed, an alert at once, and revoked once a retry succeeds', async () => {
    const employeeId = await engineer();
    const requestId = await startElevation(engine, { employeeId, entitlementId: 'prod-admin', durationMs: 4_000 });
    const granted = await active(requestId);
    await slapd.stop();
    try {
      const failed = await eventually(async () => {
        const s = await statuses(engine, requestId);
        return s.revocationStatus === 'failed' && s;
      }, 30_000);
      expect(failed.requestStatus).toBe('auto_approved');
      const [alert] = await engine.db.select().from(alerts).where(eq(alerts.dedupeKey, `revoke_failed:${granted.grant!.id}`));
      expect(alert).toMatchObject({ kind: 'revoke_failed', severity: 'critical', status: 'open' });
    } finally {
      slapd = await startSlapd({ dir, keep: true, port });
    }
    await eventually(async () => (await statuses(engine, requestId)).revocationStatus === 'revoked', 30_000);
    expect(await member(employeeId, 'prod-admin')).toBe(false);
    const [alert] = await engine.db.select().from(alerts).where(eq(alerts.dedupeKey, `revoke_failed:${granted.grant!.id}`));
    expect(alert?.status).toBe('resolved');
  });

  it('cancelling its workflow still removes the access, proven, before it ends cancelled', async () => {
    const employeeId = await engineer();
    const requestId = await startElevation(engine, { employeeId, entitlementId: 'prod-admin', durationMs: 60_000 });
    await active(requestId);
    const handle = engine.client.workflow.getHandle(jitElevationWorkflowId(requestId));
    await handle.cancel();
    await eventually(async () => (await statuses(engine, requestId)).revocationStatus === 'revoked', 30_000);
    expect(await member(employeeId, 'prod-admin')).toBe(false);
    expect((await statuses(engine, requestId)).grant?.revokeReason).toBe('manual');
    await eventually(async () => (await handle.describe()).status.name === 'CANCELLED');
  });

  it('a leaver ends every elevation at once', async () => {
    const employeeId = await engineer();
    const one = await startElevation(engine, { employeeId, entitlementId: 'prod-admin', durationMs: 60_000 });
    const two = await startElevation(engine, { employeeId, entitlementId: 'break-glass', durationMs: 60_000, breakGlass: true });
    await active(one);
    await active(two);
    await engine.submit({ type: 'terminate', employeeId });
    for (const id of [one, two]) await eventually(async () => (await statuses(engine, id)).revocationStatus === 'revoked', 30_000);
    expect(await member(employeeId, 'prod-admin')).toBe(false);
    expect(await member(employeeId, 'break-glass')).toBe(false);
  });

  it('break-glass: granted at once without approval, a critical alert, and a review its owner closes', async () => {
    const employeeId = await engineer();
    const requestId = await startElevation(engine, { employeeId, entitlementId: 'break-glass', durationMs: 30_000, breakGlass: true });
    const granted = await active(requestId);
    expect(granted.requestStatus).toBe('auto_approved');
    expect(await member(employeeId, 'break-glass')).toBe(true);
    const [alert] = await engine.db.select().from(alerts).where(eq(alerts.dedupeKey, `break_glass:${requestId}`));
    expect(alert).toMatchObject({ kind: 'break_glass', severity: 'critical', status: 'open' });
    await smtp.waitFor((m) => m.to.includes(emailOf(owner)) && m.raw.includes(employeeId) && /^Review a break-glass elevation/.test(m.subject ?? ''), 15_000);
    const [review] = await engine.db.select().from(approvals).where(and(eq(approvals.requestId, requestId), eq(approvals.role, 'break_glass_review')));
    expect(review).toMatchObject({ approver: owner, decision: null });

    await decideStage(engine.client, requestId, review!.stage, { approverId: owner, decision: 'approved', comment: 'incident 42', via: 'api' });
    await eventually(async () => (await engine.db.select().from(alerts).where(eq(alerts.dedupeKey, `break_glass:${requestId}`)))[0]?.status === 'resolved');
    // Reviewed as justified: the elevation runs on to its end.
    expect((await statuses(engine, requestId)).revocationStatus).toBeNull();
    await revokeEarly(requestId, employeeId);
    await eventually(async () => (await statuses(engine, requestId)).revocationStatus === 'revoked', 30_000);
    await saveHistory(engine.client, jitElevationWorkflowId(requestId), 'jit-break-glass');
  });

  it('through the API: elevate, extend and revoke early, with the statuses the API shows', async () => {
    const app = await buildTestApp(engine);
    try {
      const employeeId = await engineer();
      const { token } = await createApiToken(engine.db, { name: uniqueName('jit'), scopes: ['jit:request'], employeeId });
      const auth = { authorization: `Bearer ${token}` };
      const created = await app.inject({ method: 'POST', url: '/api/v1/jit/elevations', headers: { ...auth, 'idempotency-key': uniqueName('key') }, payload: { entitlementId: 'prod-admin', duration: '20s', justification: 'incident 7', ticket: 'INC-7' } });
      expect(created.statusCode, created.body).toBe(201);
      const id = (created.json() as { id: string }).id;
      const shown = await eventually(async () => {
        const view = (await app.inject({ method: 'GET', url: `/api/v1/jit/elevations/${id}`, headers: auth })).json() as Record<string, unknown>;
        return view.grantStatus === 'active' && view.expiresAt !== null && view;
      }, 30_000);
      expect(shown).toMatchObject({ requestStatus: 'auto_approved', grantStatus: 'active', revocationStatus: null, ticket: 'INC-7', breakGlass: false, extensions: 0, revokedAt: null });
      expect(shown.timeLeftMs).toBeGreaterThan(0);
      expect(await member(employeeId, 'prod-admin')).toBe(true);

      const extended = await app.inject({ method: 'POST', url: `/api/v1/jit/elevations/${id}/extend`, headers: auth, payload: { duration: '10s' } });
      expect(extended.statusCode, extended.body).toBe(200);
      expect(Date.parse((extended.json() as { expiresAt: string }).expiresAt)).toBe(Date.parse(shown.expiresAt as string) + 10_000);
      const again = await app.inject({ method: 'POST', url: `/api/v1/jit/elevations/${id}/extend`, headers: auth, payload: { duration: '10s' } });
      expect(again.statusCode).toBe(422);
      expect(again.json()).toMatchObject({ rule: 'too_many_extensions' });

      const revoked = await app.inject({ method: 'POST', url: `/api/v1/jit/elevations/${id}/revoke`, headers: auth });
      expect(revoked.statusCode, revoked.body).toBe(202);
      const ended = await eventually(async () => {
        const view = (await app.inject({ method: 'GET', url: `/api/v1/jit/elevations/${id}`, headers: auth })).json() as Record<string, unknown>;
        return view.revocationStatus === 'revoked' && view;
      }, 30_000);
      expect(ended).toMatchObject({ grantStatus: 'revoked', timeLeftMs: 0, revocationLagMs: null });
      expect(ended.revokedAt).not.toBeNull();
      expect(await member(employeeId, 'prod-admin')).toBe(false);
    } finally {
      await app.close();
    }
  });

  it('waits for its approver when its policy says so', async () => {
    const employeeId = await engineer();
    const requestId = await startElevation(engine, { employeeId, entitlementId: 'db-admin', durationMs: 30_000 });
    await smtp.waitFor((m) => m.to.includes(emailOf(manager)) && m.raw.includes(employeeId), 15_000);
    expect(await statuses(engine, requestId)).toMatchObject({ requestStatus: 'pending_approval', grantStatus: null });
    await decideStage(engine.client, requestId, 1, { approverId: manager, decision: 'approved', via: 'api' });
    await active(requestId);
    expect((await statuses(engine, requestId)).requestStatus).toBe('approved');
    expect(await member(employeeId, 'db-admin')).toBe(true);
    await revokeEarly(requestId, employeeId);
    await eventually(async () => (await statuses(engine, requestId)).revocationStatus === 'revoked', 30_000);
  });
});
