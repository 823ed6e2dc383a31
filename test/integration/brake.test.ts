// The mass-leaver brake (services/feeds.ts) against a whole engine with its own database: a feed
// that takes the window over the number or share threshold is held, its terminations are
// never dispatched while its other events go on; release dispatches them, discard rejects
// them; a burst of webhook terminations is held from the one that crosses the threshold on,
// with one alert; and the batch API with its scopes. How feeds of every source share one
// window is in brake-window.test.ts.
import { randomBytes } from 'node:crypto';
import { and, count, eq, inArray } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createApiToken } from '../../api/auth.js';
import { BatchStateError, discardBatch, releaseBatch, submitFeed, type FeedDeps } from '../../services/feeds.js';
import type { NewHrEvent } from '../../db/inbox.js';
import { alerts, auditLog, hrBatches, hrEvents, identities } from '../../db/schema.js';
import type { BrakeConfig } from '../../domain/config.js';
import type { HrEventType } from '../../domain/types.js';
import { eventually, startTestEngine, type TestEngine } from '../support/engine.js';
import { buildTestApp, newWebhookSecret, postHrEvent } from '../support/api.js';
import { testConfig } from '../support/config.js';
import { testEnv, uniqueName } from '../support/env.js';
import { startWindowAfresh } from '../support/brake-window.js';

const run = randomBytes(3).toString('hex');
let serial = 0;
const emp = (label: string) => `B${run}-${label}-${++serial}`;
const ACTIVE = 50;
const secret = newWebhookSecret();

let engine: TestEngine;
let app: FastifyInstance;
let adminToken: string;
let writerToken: string;
let readerToken: string;

/** submitFeed with the engine's database and queue and a brake of the test's choosing. */
function deps(brake: Partial<BrakeConfig>): FeedDeps {
  return { db: engine.db, queue: engine.queue, config: { ...engine.config, brake: { ...engine.config.brake, ...brake } } };
}

function event(type: HrEventType, employeeId = emp(type)): NewHrEvent {
  const attributes = type === 'hire' ? { givenName: 'Brake', familyName: employeeId, employmentType: 'employee' } : {};
  return { id: uniqueName(`feed-${type}`), employeeId, type, effectiveAt: new Date(), source: 'api', payload: { type, employeeId, attributes } };
}
const terminations = (n: number) => Array.from({ length: n }, () => event('terminate'));

async function statuses(ids: string[]): Promise<string[]> {
  const rows = await engine.db.select({ status: hrEvents.status }).from(hrEvents).where(inArray(hrEvents.id, ids));
  return [...new Set(rows.map((r) => r.status))].sort();
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  // The webhook window's brake: the share test trips at the 5th termination of 50 active.
  engine = await startTestEngine({ config: testConfig(testEnv.ldap, { brake: { maxTerminations: 25, maxShare: 0.05, minTerminations: 5, window: '10m' } }) });
  // Active identities are the base of the share. The feeds below terminate other, unknown
  // people, so this base stays put whatever the lifecycle does with those terminations.
  await engine.db.insert(identities).values(Array.from({ length: ACTIVE }, (_, i) => ({ employeeId: emp(`active${i}`), status: 'active', attributes: { givenName: 'A', familyName: String(i) } })));
  app = await buildTestApp(engine, { secret, publicUrl: 'https://jml.test' });
  ({ token: adminToken } = await createApiToken(engine.db, { name: 'brake-admin', scopes: ['admin'] }));
  ({ token: writerToken } = await createApiToken(engine.db, { name: 'brake-writer', scopes: ['events:write'] }));
  ({ token: readerToken } = await createApiToken(engine.db, { name: 'brake-reader', scopes: ['identities:read'] }));
});

afterAll(async () => {
  await app?.close();
  await engine?.stop();
});

// Each test starts with an empty window and nothing held.
beforeEach(() => startWindowAfresh(engine));

describe('submitFeed and the brake', () => {
  it('holds the feed that takes the window above the number threshold, and not one that reaches it', async () => {
    const brake = { maxTerminations: 10, maxShare: 0 };
    const at = await submitFeed(deps(brake), { source: 'api', actor: 'test', events: terminations(10) });
    expect(at).toMatchObject({ status: 'accepted', counts: { terminate: 10 } });
    expect(new Set(at.results.map((r) => r.status))).toEqual(new Set(['received']));

    const above = await submitFeed(deps(brake), { source: 'api', actor: 'test', events: terminations(1) });
    expect(above.status).toBe('held');
    expect(above.results.every((r) => r.created && r.status === 'held')).toBe(true);
    const [batch] = await engine.db.select().from(hrBatches).where(eq(hrBatches.id, above.batchId));
    expect(batch).toMatchObject({ source: 'api', status: 'held', events: 1, terminations: 1, activeIdentities: ACTIVE });
    expect(batch!.reason).toMatch(/^11 terminations within 10m/);
  });

  it('holds the feed that takes the window above the share of active identities, once at minTerminations', async () => {
    const brake = { maxTerminations: 0, maxShare: 0.2, minTerminations: 3 };
    // 20% of 50 is 10: ten is not above it, eleven is.
    expect((await submitFeed(deps(brake), { source: 'api', actor: 'test', events: terminations(10) })).status).toBe('accepted');
    expect((await submitFeed(deps(brake), { source: 'api', actor: 'test', events: terminations(1) })).status).toBe('held');
    // Under minTerminations the share does not apply: 2 of 50 is 4%, above a 1% share.
    await startWindowAfresh(engine);
    const tiny = { maxTerminations: 0, maxShare: 0.01, minTerminations: 3 };
    expect((await submitFeed(deps(tiny), { source: 'api', actor: 'test', events: terminations(2) })).status).toBe('accepted');
    expect((await submitFeed(deps(tiny), { source: 'api', actor: 'test', events: terminations(1) })).status).toBe('held');
  });

  it('never dispatches held terminations, lets the rest of the feed through, and raises one alert without personal data', async () => {
    const hire = event('hire');
    const leavers = terminations(4);
    const feed = await submitFeed(deps({ maxTerminations: 3, maxShare: 0 }), { source: 'csv', actor: 'test', events: [hire, ...leavers] });
    expect(feed.status).toBe('held');
    expect(feed.counts).toMatchObject({ hire: 1, terminate: 4 });

    // The joiner goes all the way; the leavers wait, past several dispatcher passes.
    await eventually(async () => (await statuses([hire.id]))[0] === 'applied', 60_000);
    await sleep(2_000);
    expect(await statuses(leavers.map((e) => e.id))).toEqual(['held']);

    const raised = await engine.db.select().from(alerts).where(eq(alerts.dedupeKey, `brake:${feed.batchId}`));
    expect(raised).toHaveLength(1);
    expect(raised[0]).toMatchObject({ kind: 'brake_held', severity: 'critical', status: 'open' });
    expect(raised[0]!.details).toMatchObject({ batchId: feed.batchId, terminations: 4, source: 'csv' });
    const text = JSON.stringify(raised[0]);
    for (const e of [hire, ...leavers]) expect(text).not.toContain(e.employeeId);
  });

  it('answers a repeated event id with its stored row and changes nothing', async () => {
    const events = terminations(12);
    const first = await submitFeed(deps({ maxTerminations: 10 }), { source: 'api', actor: 'test', events });
    expect(first.status).toBe('held');
    // Sent again: nothing new, so nothing to brake, and the first batch keeps its events.
    const again = await submitFeed(deps({ maxTerminations: 10 }), { source: 'api', actor: 'test', events });
    expect(again).toMatchObject({ status: 'accepted', counts: { terminate: 0 } });
    expect(again.results.every((r) => !r.created && r.status === 'held')).toBe(true);
    const [moved] = await engine.db.select({ n: count() }).from(hrEvents).where(eq(hrEvents.batchId, again.batchId));
    expect(moved!.n).toBe(0);
  });

  it('release lets the held terminations be dispatched, resolves the alert, and cannot be repeated', async () => {
    const leavers = terminations(11);
    const feed = await submitFeed(deps({ maxTerminations: 10 }), { source: 'api', actor: 'test', events: leavers });
    expect(feed.status).toBe('held');

    const { released, batch } = await releaseBatch(engine, feed.batchId, 'test-admin');
    expect(released).toBe(11);
    expect(batch).toMatchObject({ status: 'released', decidedBy: 'test-admin' });
    // Handed to their workflows (where terminations of unknown people wait for a hire).
    await eventually(async () => (await statuses(leavers.map((e) => e.id))).every((s) => s !== 'held' && s !== 'received'), 60_000);
    const [alert] = await engine.db.select().from(alerts).where(eq(alerts.dedupeKey, `brake:${feed.batchId}`));
    expect(alert!.status).toBe('resolved');
    const audited = await engine.db.select().from(auditLog).where(and(eq(auditLog.subjectId, feed.batchId), eq(auditLog.action, 'hr_batch.released')));
    expect(audited).toHaveLength(1);

    await expect(releaseBatch(engine, feed.batchId, 'test-admin')).rejects.toBeInstanceOf(BatchStateError);
    await expect(discardBatch(engine.db, feed.batchId, 'test-admin', 'too late')).rejects.toMatchObject({ code: 'not_held', status: 'released' });
  });

  it('discard rejects the held terminations with the reason, for good', async () => {
    const leavers = terminations(11);
    const feed = await submitFeed(deps({ maxTerminations: 10 }), { source: 'api', actor: 'test', events: leavers });
    const { discarded } = await discardBatch(engine.db, feed.batchId, 'test-admin', 'HR exported the wrong file');
    expect(discarded).toBe(11);
    await sleep(1_500);
    const rows = await engine.db.select().from(hrEvents).where(inArray(hrEvents.id, leavers.map((e) => e.id)));
    expect(rows.every((r) => r.status === 'rejected' && r.reason === 'batch discarded by test-admin: HR exported the wrong file')).toBe(true);
    await expect(releaseBatch(engine, feed.batchId, 'test-admin')).rejects.toMatchObject({ code: 'not_held' });
  });
});

describe('webhook bursts', () => {
  const post = async (body: unknown) => (await postHrEvent(app, secret, body)).response;

  it('holds the termination that crosses the threshold within the window and every later one, with one alert', async () => {
    // 5% of 50 active is 2.5, and the share applies from the 5th termination: 4 go through.
    const responses = await Promise.all(Array.from({ length: 8 }, () => post({ type: 'terminate', employeeId: emp('wh') })));
    expect(responses.map((r) => r.statusCode)).toEqual(Array(8).fill(202));
    const answered = responses.map((r) => r.json() as { id: string; status: string });
    expect(answered.filter((a) => a.status === 'held')).toHaveLength(4);

    // Those that went through are in no batch; the held ones are in one, with one alert.
    const rows = await engine.db.select().from(hrEvents).where(inArray(hrEvents.id, answered.map((a) => a.id)));
    expect(rows.filter((r) => r.status !== 'held').map((r) => r.batchId)).toEqual([null, null, null, null]);
    const batchIds = [...new Set(rows.filter((r) => r.status === 'held').map((r) => r.batchId))];
    expect(batchIds).toHaveLength(1);
    const [batch] = await engine.db.select().from(hrBatches).where(eq(hrBatches.id, batchIds[0]!));
    expect(batch).toMatchObject({ source: 'webhook', status: 'held', terminations: 4 });
    expect(await engine.db.select().from(alerts).where(eq(alerts.dedupeKey, `brake:${batch!.id}`))).toHaveLength(1);

    // A later termination joins the held batch; other types go on as ever.
    const later = (await post({ type: 'terminate', employeeId: emp('wh') })).json() as { id: string; status: string };
    expect(later.status).toBe('held');
    const [laterRow] = await engine.db.select().from(hrEvents).where(eq(hrEvents.id, later.id));
    expect(laterRow!.batchId).toBe(batch!.id);
    const hire = (await post({ type: 'hire', employeeId: emp('wh'), attributes: { givenName: 'Web', familyName: 'Hook' } })).json() as { status: string };
    expect(hire.status).toBe('received');
    await sleep(1_500);
    const held = answered.filter((a) => a.status === 'held').map((a) => a.id);
    expect(await statuses([...held, later.id])).toEqual(['held']);

    // Once released, the count starts afresh: the next termination goes through, in no batch.
    await releaseBatch(engine, batch!.id, 'test-admin');
    const next = (await post({ type: 'terminate', employeeId: emp('wh') })).json() as { id: string; status: string };
    expect(next.status).toBe('received');
    const [nextRow] = await engine.db.select().from(hrEvents).where(eq(hrEvents.id, next.id));
    expect(nextRow!.batchId).toBeNull();
  });
});

describe('the batch API', () => {
  const BASE = '/api/v1/hr/batches';
  const call = (method: 'GET' | 'POST', url: string, token: string | null, payload?: unknown) =>
    app.inject({ method, url, ...(token ? { headers: { authorization: `Bearer ${token}` } } : {}), ...(payload !== undefined ? { payload: payload as object } : {}) });

  it('lists batches newest first with a cursor, and shows one with its events counted', async () => {
    await submitFeed(deps({ maxTerminations: 1 }), { source: 'api', actor: 'test', events: terminations(2) });
    expect((await call('GET', BASE, null)).statusCode).toBe(401);
    expect((await call('GET', BASE, readerToken)).statusCode).toBe(403);
    const first = await call('GET', `${BASE}?limit=2`, writerToken);
    expect(first.statusCode).toBe(200);
    const page1 = first.json() as { items: Array<{ id: string; createdAt: string }>; nextCursor: string };
    expect(page1.items).toHaveLength(2);
    const page2 = (await call('GET', `${BASE}?limit=2&cursor=${page1.nextCursor}`, writerToken)).json() as { items: Array<{ id: string; createdAt: string }> };
    expect(page2.items).toHaveLength(2);
    expect(page2.items.map((b) => b.id)).not.toContain(page1.items[0]!.id);
    expect(Date.parse(page2.items[0]!.createdAt)).toBeLessThanOrEqual(Date.parse(page1.items[1]!.createdAt));
    expect((await call('GET', `${BASE}?cursor=nonsense`, writerToken)).statusCode).toBe(400);

    const held = (await call('GET', `${BASE}?status=held&limit=200`, adminToken)).json() as { items: Array<{ id: string; status: string }> };
    expect(held.items.length).toBeGreaterThan(0);
    expect(held.items.every((b) => b.status === 'held')).toBe(true);

    const one = await call('GET', `${BASE}/${held.items[0]!.id}`, writerToken);
    expect(one.json()).toMatchObject({ id: held.items[0]!.id, status: 'held', eventsByType: { terminate: { held: expect.any(Number) } } });
    expect((await call('GET', `${BASE}/not-a-uuid`, writerToken)).statusCode).toBe(400);
    expect((await call('GET', `${BASE}/00000000-0000-4000-8000-000000000000`, writerToken)).statusCode).toBe(404);
  });

  it('releases and discards with the admin scope only, 409 when the batch is not held', async () => {
    const a = await submitFeed(deps({ maxTerminations: 1 }), { source: 'api', actor: 'test', events: terminations(2) });
    expect((await call('POST', `${BASE}/${a.batchId}/release`, writerToken)).statusCode).toBe(403);
    const released = await call('POST', `${BASE}/${a.batchId}/release`, adminToken);
    expect(released.statusCode).toBe(200);
    expect(released.json()).toMatchObject({ id: a.batchId, status: 'released', released: 2, decidedBy: 'api:brake-admin' });
    const again = await call('POST', `${BASE}/${a.batchId}/release`, adminToken);
    expect(again.statusCode).toBe(409);
    expect(again.json()).toMatchObject({ status: 409, batchStatus: 'released' });

    // The release started the count afresh: the next feed over the threshold is a new batch.
    const b = await submitFeed(deps({ maxTerminations: 1 }), { source: 'api', actor: 'test', events: terminations(2) });
    expect(b).toMatchObject({ status: 'held' });
    expect(b.batchId).not.toBe(a.batchId);
    expect((await call('POST', `${BASE}/${b.batchId}/discard`, writerToken, { reason: 'x' })).statusCode).toBe(403);
    const noReason = await call('POST', `${BASE}/${b.batchId}/discard`, adminToken, {});
    expect(noReason.statusCode).toBe(400);
    expect(noReason.json()).toMatchObject({ errors: [{ field: 'reason' }] });
    const discarded = await call('POST', `${BASE}/${b.batchId}/discard`, adminToken, { reason: 'wrong file' });
    expect(discarded.json()).toMatchObject({ status: 'discarded', discarded: 2 });
    expect((await call('POST', `${BASE}/${b.batchId}/discard`, adminToken, { reason: 'again' })).statusCode).toBe(409);
    expect((await call('POST', `${BASE}/00000000-0000-4000-8000-000000000000/release`, adminToken)).statusCode).toBe(404);
  });
});
