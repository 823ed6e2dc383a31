// The SLA watchdog on its Temporal Schedule: a grant still not final after `grantSla` raises
// `grant_stuck` saying where (status, step, attempt, last error), one alert counted on every
// look; the target then stays down past the retry budget and the grant fails (`grant_failed`,
// the stuck alert resolved); once the target is back a retry makes it active and its alert
// resolves itself. The directory is a slapd of this file's own, stopped and started again.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alerts } from '../../db/schema.js';
import { startSlapd, type SlapdServer } from '../../scripts/slapd.js';
import { testConfig } from '../support/config.js';
import { eventually, startTestEngine, type TestEngine } from '../support/engine.js';
import { uniqueEmployeeId, uniqueName } from '../support/env.js';
import { saveHistory } from '../support/histories.js';
import { hire, startElevation, statuses } from '../support/requests.js';

let dir: string;
let slapd: SlapdServer;
let port: number;
let engine: TestEngine;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'jml-slapd-sla-'));
  slapd = await startSlapd({ dir, keep: true });
  port = Number(new URL(slapd.url).port);
  const base = testConfig(slapd);
  const config = testConfig(slapd, {
    entitlements: base.entitlements.map((e) => (e.id === 'sales' ? { ...e, jit: { eligible: true, maxDuration: '1h', approval: 'none' } } : e)),
    lifecycle: { grantSla: '3s' },
    // About ten seconds of retries per attempt at the grant: past the SLA, short of a long test.
    retries: { initialInterval: '500ms', maximumInterval: '1s', maximumAttempts: 10, afterFailure: { initialInterval: '1s', maximumInterval: '2s' } },
  });
  engine = await startTestEngine({ config, watchdog: true });
}, 120_000);
afterAll(async () => {
  await engine?.stop();
  await slapd?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const alertOf = async (dedupeKey: string) => (await engine.db.select().from(alerts).where(eq(alerts.dedupeKey, dedupeKey)))[0];

describe('the SLA watchdog', () => {
  it('raises grant_stuck past grantSla, then grant_failed; back up, the grant ends active and both alerts resolve', async () => {
    const employeeId = uniqueEmployeeId('S');
    await hire(engine, employeeId);
    await slapd.stop();
    let restarted = false;
    try {
      const requestId = await startElevation(engine, { employeeId, entitlementId: 'sales', durationMs: 3_600_000 });
      const grantId = await eventually(async () => (await statuses(engine, requestId)).grant?.id, 20_000);

      const stuck = await eventually(async () => {
        const alert = await alertOf(`grant_stuck:${grantId}`);
        return alert?.status === 'open' && alert;
      }, 30_000);
      expect(stuck).toMatchObject({ kind: 'grant_stuck', severity: 'warning' });
      expect(stuck.details).toMatchObject({ grantId, employeeId, entitlementId: 'sales', grantStatus: 'provisioning', target: 'directory' });
      expect((stuck.details as { attempts: number }).attempts).toBeGreaterThanOrEqual(1);
      expect((stuck.details as { lastError: string | null }).lastError).toBeTruthy();
      // Seen again on the next looks: still one alert, counted.
      await eventually(async () => ((await alertOf(`grant_stuck:${grantId}`))?.count ?? 0) >= 2, 20_000);
      expect((await engine.db.select().from(alerts).where(eq(alerts.kind, 'grant_stuck'))).filter((a) => (a.details as { grantId?: string }).grantId === grantId)).toHaveLength(1);

      // The retry budget runs out: the grant fails, with its own alert; it is no longer "stuck".
      await eventually(async () => (await alertOf(`grant_failed:${grantId}`))?.status === 'open', 60_000);
      await eventually(async () => (await alertOf(`grant_stuck:${grantId}`))?.status === 'resolved', 20_000);
      expect((await statuses(engine, requestId)).grantStatus).toBe('failed');

      slapd = await startSlapd({ dir, keep: true, port });
      restarted = true;
      await eventually(async () => (await statuses(engine, requestId)).grantStatus === 'active', 60_000);
      await eventually(async () => (await alertOf(`grant_failed:${grantId}`))?.status === 'resolved', 20_000);
      expect((await alertOf(`grant_stuck:${grantId}`))?.status).toBe('resolved');
      // One run of the workflow the schedule starts, kept for replay.
      const run = await engine.client.workflow.start('slaWatchdog', { workflowId: uniqueName('sla-watchdog-run'), taskQueue: engine.taskQueue });
      expect(await run.result()).toMatchObject({ stuck: 0 });
      await saveHistory(engine.client, run.workflowId, 'sla-watchdog');
    } finally {
      if (!restarted) slapd = await startSlapd({ dir, keep: true, port });
    }
  });
});
