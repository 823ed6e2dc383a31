// The mass-leaver brake counts ONE rolling window across every feed (services/feeds.ts): CSV
// imports, SCIM and API feeds and webhook terminations together, on a whole engine with its
// own database. A series of feeds that each stays under the threshold trips it; once tripped,
// every later termination is held in the same batch, whatever brings it, with one alert; a
// decision (release or discard) covers the whole batch and starts the count afresh.
import { randomBytes } from 'node:crypto';
import { and, count, eq, inArray } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { importCsv } from '../../services/csv-import.js';
import { brakeOutlook, discardBatch, releaseBatch, submitFeed } from '../../services/feeds.js';
import type { NewHrEvent } from '../../db/inbox.js';
import { alerts, hrBatches, hrEvents, identities } from '../../db/schema.js';
import { eventually, startTestEngine, type TestEngine } from '../support/engine.js';
import { buildTestApp, newWebhookSecret, postHrEvent } from '../support/api.js';
import { testConfig } from '../support/config.js';
import { testEnv, uniqueName } from '../support/env.js';
import { ageOutOfWindow, startWindowAfresh } from '../support/brake-window.js';

const run = randomBytes(3).toString('hex').toUpperCase();
let serial = 0;
/** Upper case: the canonical form (domain/employee-id.ts) the identities table holds. */
const newEmployeeId = (label: string) => `W${run}-${label.toUpperCase()}-${++serial}`;
const secret = newWebhookSecret();
/** More than 10 terminations within 15 minutes trips the brake; the share test is off. */
const MAX_TERMINATIONS = 10;

let engine: TestEngine;
let app: FastifyInstance;

beforeAll(async () => {
  engine = await startTestEngine({ config: testConfig(testEnv.ldap, { brake: { maxTerminations: MAX_TERMINATIONS, maxShare: 0, window: '15m' } }) });
  app = await buildTestApp(engine, { secret, publicUrl: 'https://jml.test' });
});

afterAll(async () => {
  await app?.close();
  await engine?.stop();
});

// Each test starts with an empty window and nothing held.
beforeEach(() => startWindowAfresh(engine));

function terminationsOfStrangers(n: number): NewHrEvent[] {
  return Array.from({ length: n }, () => {
    const employeeId = newEmployeeId('gone');
    return { id: uniqueName('feed-terminate'), employeeId, type: 'terminate', effectiveAt: new Date(), source: 'api', payload: { type: 'terminate', employeeId, attributes: {} } };
  });
}

function csv(rows: Array<[employeeId: string, status: 'Active' | 'Inactive']>): string {
  return `WorkerID,WorkerStatus,FirstName,LastName\n${rows.map(([id, status]) => `${id},${status},Brake,${id}`).join('\n')}\n`;
}

async function postWebhook(body: unknown): Promise<{ id: string; status: string }> {
  const { response } = await postHrEvent(app, secret, body);
  expect(response.statusCode).toBe(202);
  return response.json() as { id: string; status: string };
}

async function statusOf(employeeIds: string[]): Promise<Map<string, string>> {
  const rows = await engine.db.select({ employeeId: identities.employeeId, status: identities.status }).from(identities).where(inArray(identities.employeeId, employeeIds));
  return new Map(rows.map((r) => [r.employeeId, r.status]));
}

async function eventStatuses(ids: string[]): Promise<string[]> {
  const rows = await engine.db.select({ status: hrEvents.status }).from(hrEvents).where(inArray(hrEvents.id, ids));
  return [...new Set(rows.map((r) => r.status))].sort();
}

async function brakeAlerts(): Promise<number> {
  const [row] = await engine.db.select({ n: count() }).from(alerts).where(eq(alerts.kind, 'brake_held'));
  return row!.n;
}

describe('one rolling window across every feed', () => {
  it('five CSV imports of 4 terminations: the third trips, it and the later ones wait in one batch with one alert; release lets them go', { timeout: 300_000 }, async () => {
    const people = Array.from({ length: 20 }, () => newEmployeeId('staff'));
    const hired = await importCsv(engine, csv(people.map((id) => [id, 'Active'])), { actor: 'test' });
    expect(hired).toMatchObject({ batchStatus: 'accepted', counts: { hire: 20 } });
    await eventually(async () => [...(await statusOf(people)).values()].filter((s) => s === 'active').length === 20, 180_000);
    const alertsBefore = await brakeAlerts();

    const imports = [];
    for (let i = 0; i < 5; i++) {
      imports.push(await importCsv(engine, csv(people.slice(4 * i, 4 * i + 4).map((id) => [id, 'Inactive'])), { actor: 'test' }));
    }
    expect(imports.map((r) => r.counts.terminate)).toEqual([4, 4, 4, 4, 4]);
    expect(imports.map((r) => r.batchStatus)).toEqual(['accepted', 'accepted', 'held', 'held', 'held']);
    const heldBatchId = imports[2]!.batchId!;
    expect(imports.slice(3).map((r) => r.batchId)).toEqual([heldBatchId, heldBatchId]);
    const [batch] = await engine.db.select().from(hrBatches).where(eq(hrBatches.id, heldBatchId));
    expect(batch).toMatchObject({ source: 'csv', status: 'held', terminations: 12 });
    expect(await brakeAlerts()).toBe(alertsBefore + 1);
    const [alert] = await engine.db.select().from(alerts).where(eq(alerts.dedupeKey, `brake:${heldBatchId}`));
    expect(alert!.details).toMatchObject({ terminations: 4, terminationsInWindow: 12, alreadyGoneOn: 8 });
    expect(alert!.subject).toMatch(/8 .*gone on/);

    // The first 8 leave; the other 12 stay active, their terminations held, never dispatched.
    const [firstEight, rest] = [people.slice(0, 8), people.slice(8)];
    await eventually(async () => [...(await statusOf(firstEight)).values()].every((s) => s === 'terminated'), 120_000);
    expect([...(await statusOf(rest)).values()]).toEqual(Array(12).fill('active'));
    const heldRows = await engine.db.select({ status: hrEvents.status }).from(hrEvents).where(and(eq(hrEvents.batchId, heldBatchId), eq(hrEvents.type, 'terminate')));
    expect(heldRows.map((r) => r.status)).toEqual(Array(12).fill('held'));

    const { released } = await releaseBatch(engine, heldBatchId, 'test-admin');
    expect(released).toBe(12);
    await eventually(async () => [...(await statusOf(rest)).values()].every((s) => s === 'terminated'), 180_000);
  });

  it('counts webhook terminations and a CSV import together; a later webhook termination joins the held batch; discard rejects them all', async () => {
    const alertsBefore = await brakeAlerts();
    const viaWebhook: Array<{ id: string; status: string }> = [];
    for (let i = 0; i < 6; i++) viaWebhook.push(await postWebhook({ type: 'terminate', employeeId: newEmployeeId('wh') }));
    expect(viaWebhook.map((a) => a.status)).toEqual(Array(6).fill('received'));

    const known = Array.from({ length: 5 }, () => newEmployeeId('known'));
    await engine.db.insert(identities).values(known.map((employeeId) => ({ employeeId, status: 'active', attributes: { givenName: 'Brake', familyName: employeeId } })));
    const imported = await importCsv(engine, csv(known.map((id) => [id, 'Inactive'])), { actor: 'test' });
    expect(imported).toMatchObject({ batchStatus: 'held', counts: { terminate: 5 } });
    const [alert] = await engine.db.select().from(alerts).where(eq(alerts.dedupeKey, `brake:${imported.batchId}`));
    expect(alert!.details).toMatchObject({ source: 'csv', terminations: 5, terminationsInWindow: 11, alreadyGoneOn: 6 });

    const late = await postWebhook({ type: 'terminate', employeeId: newEmployeeId('wh') });
    expect(late.status).toBe('held');
    const [lateRow] = await engine.db.select().from(hrEvents).where(eq(hrEvents.id, late.id));
    expect(lateRow!.batchId).toBe(imported.batchId);
    expect(await brakeAlerts()).toBe(alertsBefore + 1);

    const { discarded } = await discardBatch(engine.db, imported.batchId!, 'test-admin', 'bad extract');
    expect(discarded).toBe(6);
    const csvTerminations = await engine.db.select({ id: hrEvents.id }).from(hrEvents).where(and(eq(hrEvents.batchId, imported.batchId!), eq(hrEvents.type, 'terminate')));
    expect(await eventStatuses([...csvTerminations.map((r) => r.id), late.id])).toEqual(['rejected']);
    const [resolved] = await engine.db.select().from(alerts).where(eq(alerts.dedupeKey, `brake:${imported.batchId}`));
    expect(resolved!.status).toBe('resolved');
    expect([...(await statusOf(known)).values()]).toEqual(Array(5).fill('active'));
  });

  it('a webhook termination trips a window a SCIM feed filled; release lets the held ones go and the count starts afresh', async () => {
    const alertsBefore = await brakeAlerts();
    const feed = await submitFeed(engine, { source: 'scim', actor: 'test', events: terminationsOfStrangers(8) });
    expect(feed.status).toBe('accepted');

    const answers: Array<{ id: string; status: string }> = [];
    for (let i = 0; i < 4; i++) answers.push(await postWebhook({ type: 'terminate', employeeId: newEmployeeId('wh') }));
    expect(answers.map((a) => a.status)).toEqual(['received', 'received', 'held', 'held']);
    const held = answers.slice(2).map((a) => a.id);
    const rows = await engine.db.select().from(hrEvents).where(inArray(hrEvents.id, held));
    const batchIds = [...new Set(rows.map((r) => r.batchId))];
    expect(batchIds).toHaveLength(1);
    const [batch] = await engine.db.select().from(hrBatches).where(eq(hrBatches.id, batchIds[0]!));
    expect(batch).toMatchObject({ source: 'webhook', status: 'held', terminations: 2 });
    expect(await brakeAlerts()).toBe(alertsBefore + 1);

    const { released } = await releaseBatch(engine, batch!.id, 'test-admin');
    expect(released).toBe(2);
    await eventually(async () => (await eventStatuses(held)).every((s) => s !== 'held' && s !== 'received'), 60_000);
    // The admin has looked at this window: counting starts again from the decision.
    const next = await postWebhook({ type: 'terminate', employeeId: newEmployeeId('wh') });
    expect(next.status).toBe('received');
  });

  it('does not count terminations older than the window', async () => {
    const old = await submitFeed(engine, { source: 'api', actor: 'test', events: terminationsOfStrangers(8) });
    expect(old.status).toBe('accepted');
    await ageOutOfWindow(engine, old.results.map((r) => r.id));

    expect((await submitFeed(engine, { source: 'csv', actor: 'test', events: terminationsOfStrangers(8) })).status).toBe('accepted');
    // 10 within the window is not above the threshold; the old 8 would have made it 18.
    expect((await submitFeed(engine, { source: 'api', actor: 'test', events: terminationsOfStrangers(2) })).status).toBe('accepted');
    expect((await submitFeed(engine, { source: 'scim', actor: 'test', events: terminationsOfStrangers(1) })).status).toBe('held');
  });

  it('tells a dry run what the window would make of a feed: hold it once the window is full or tripped', async () => {
    const brake = engine.config.brake;
    expect((await submitFeed(engine, { source: 'api', actor: 'test', events: terminationsOfStrangers(8) })).status).toBe('accepted');
    expect(await brakeOutlook(engine.db, brake, 2)).toMatchObject({ terminations: 2, wouldHold: false });
    expect(await brakeOutlook(engine.db, brake, 3)).toMatchObject({ terminations: 3, wouldHold: true });
    expect((await submitFeed(engine, { source: 'csv', actor: 'test', events: terminationsOfStrangers(3) })).status).toBe('held');
    // Tripped: even one more would wait; a file without terminations would not.
    expect(await brakeOutlook(engine.db, brake, 1)).toMatchObject({ wouldHold: true });
    expect(await brakeOutlook(engine.db, brake, 0)).toMatchObject({ wouldHold: false });
  });

  it('lets no more than the threshold through when feeds and webhooks arrive at the same moment', async () => {
    const alertsBefore = await brakeAlerts();
    const sources = ['csv', 'api', 'scim', 'api', 'csv'] as const;
    const [feeds, hooks] = await Promise.all([
      Promise.all(sources.map((source) => submitFeed(engine, { source, actor: 'test', events: terminationsOfStrangers(3) }))),
      Promise.all(Array.from({ length: 3 }, () => postWebhook({ type: 'terminate', employeeId: newEmployeeId('wh') }))),
    ]);
    const statuses = [...feeds.flatMap((f) => f.results.map((r) => r.status)), ...hooks.map((h) => h.status)];
    const through = statuses.filter((s) => s === 'received').length;
    // 18 terminations: whatever the order, those before the one that crosses 10 go on.
    expect(through).toBeGreaterThanOrEqual(8);
    expect(through).toBeLessThanOrEqual(MAX_TERMINATIONS);
    expect(statuses.filter((s) => s === 'held')).toHaveLength(18 - through);

    const heldIds = [...feeds.flatMap((f) => f.results.filter((r) => r.status === 'held').map((r) => r.id)), ...hooks.filter((h) => h.status === 'held').map((h) => h.id)];
    const heldRows = await engine.db.select({ batchId: hrEvents.batchId }).from(hrEvents).where(inArray(hrEvents.id, heldIds));
    expect(new Set(heldRows.map((r) => r.batchId)).size).toBe(1);
    expect(await brakeAlerts()).toBe(alertsBefore + 1);
  });
});
