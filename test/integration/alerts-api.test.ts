// The alerts API through the real app, on a database of its own (other files raise alerts in
// the shared one, and these checks list them all): alerts raised as the engine raises them
// (services/alerts.ts), one alert per problem with its count; the list's filters and cursor;
// acknowledging and resolving with a note, audited, along the status machine (409 naming the
// status of a refused move); delivery shown beside the status; tokens checked before bodies.
import { randomBytes, randomUUID } from 'node:crypto';
import type { Queue } from 'bullmq';
import { and, asc, eq } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../api/app.js';
import { createApiToken } from '../../api/auth.js';
import { createMetricsRegistry } from '../../api/metrics.js';
import { createDb, dropDatabase, type DbHandle } from '../../db/client.js';
import { alerts, auditLog } from '../../db/schema.js';
import { raiseAlert, resolveAlerts, type NewAlert } from '../../services/alerts.js';
import { createHrEventQueue, type HrEventJob } from '../../services/hr-event-queue.js';
import { redisConnection } from '../../services/redis.js';
import { testConfig } from '../support/config.js';
import { freshDatabase } from '../support/engine.js';
import { testEnv, uniqueName } from '../support/env.js';

const BASE = '/api/v1/alerts';

let databaseUrl: string | undefined;
let handle: DbHandle;
let queue: Queue<HrEventJob>;
let app: FastifyInstance;
/** alerts:write; identities:read; events:write (neither). */
let writer: string;
let writerName: string;
let reader: string;
let outsider: string;

interface Alert {
  id: string;
  kind: string;
  severity: string;
  subject: string;
  details: Record<string, unknown>;
  status: string;
  count: number;
  createdAt: string;
  lastSeenAt: string;
  acknowledgedAt: string | null;
  resolvedAt: string | null;
  delivery: { status: string; deliveredAt: string | null; notifications: Array<{ channel: string; at: string; ok: boolean; error?: string }> };
  history?: Array<{ at: string; actor: string; action: string; note: string | null }>;
}
interface Page {
  items: Alert[];
  nextCursor: string | null;
}

beforeAll(async () => {
  databaseUrl = await freshDatabase(testEnv.databaseUrl);
  handle = createDb(databaseUrl, { max: 5 });
  queue = createHrEventQueue(redisConnection(testEnv.redisUrl, 'producer'), `${testEnv.redisPrefix}:${uniqueName('alerts')}`);
  app = await buildApp({
    db: handle.db,
    hrEventQueue: queue,
    webhookSecrets: [],
    config: testConfig(testEnv.ldap),
    publicUrl: 'https://jml.test',
    // Test double: the health probes are not what these tests look at.
    health: { redis: async () => {}, temporal: async () => {} },
    logger: false,
    metrics: createMetricsRegistry({ defaultMetrics: false }),
  });
  writerName = uniqueName('on-call');
  ({ token: writer } = await createApiToken(handle.db, { name: writerName, scopes: ['alerts:write'] }));
  ({ token: reader } = await createApiToken(handle.db, { name: uniqueName('reader'), scopes: ['identities:read'] }));
  ({ token: outsider } = await createApiToken(handle.db, { name: uniqueName('feed'), scopes: ['events:write'] }));
});

afterAll(async () => {
  await app?.close();
  await queue?.close();
  await handle?.close();
  if (databaseUrl) await dropDatabase(databaseUrl);
});

const auth = (token: string | null) => (token ? { authorization: `Bearer ${token}` } : {});
const get = (url: string, token: string | null = reader) => app.inject({ method: 'GET', url, headers: auth(token) });
const post = (url: string, body: unknown, token: string | null = writer) =>
  app.inject({ method: 'POST', url, headers: { ...auth(token), 'content-type': 'application/json' }, payload: typeof body === 'string' ? body : JSON.stringify(body) });

/** Raises an alert as an activity does: in a transaction of its own. */
async function raise(alert: NewAlert): Promise<string> {
  const id = await handle.db.transaction((tx) => raiseAlert(tx, alert));
  if (!id) throw new Error('raiseAlert returned no id');
  return id;
}

function grantFailed(employeeId: string, grantId = randomUUID(), error = 'connection refused'): NewAlert {
  return {
    kind: 'grant_failed',
    severity: 'critical',
    subject: `Granting directory-account to ${employeeId} failed`,
    details: { grantId, entitlementId: 'directory-account', target: 'directory', employeeId, error },
    dedupeKey: `grant_failed:${grantId}`,
  };
}

const emp = () => `AL${randomBytes(3).toString('hex')}`.toUpperCase();

describe('one problem, one alert', () => {
  it('raised twice with one dedupe key is one alert with count 2 and a later last-seen time, and the latest details', async () => {
    const employeeId = emp();
    const grantId = randomUUID();
    const id = await raise(grantFailed(employeeId, grantId, 'first error'));
    const first = (await get(`${BASE}/${id}`)).json<Alert>();
    expect(first).toMatchObject({ id, kind: 'grant_failed', severity: 'critical', status: 'open', count: 1, acknowledgedAt: null, resolvedAt: null });
    expect(first.delivery).toEqual({ status: 'pending', deliveredAt: null, notifications: [] });

    expect(await raise(grantFailed(employeeId, grantId, 'second error'))).toBe(id);
    const response = await get(`${BASE}?grantId=${grantId}`);
    expect(response.statusCode).toBe(200);
    const { items } = response.json<Page>();
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({ id, count: 2, status: 'open', createdAt: first.createdAt, details: expect.objectContaining({ error: 'second error' }) });
    expect(Date.parse(items[0]!.lastSeenAt)).toBeGreaterThan(Date.parse(first.lastSeenAt));
    // Only the first raising is audited: a retry raising it again is not a new event.
    const raised = await handle.db.select().from(auditLog).where(and(eq(auditLog.subjectId, id), eq(auditLog.action, 'alert.raised')));
    expect(raised).toHaveLength(1);
  });

  it('raised again while acknowledged counts and stays acknowledged; once resolved it opens again, counting afresh', async () => {
    const employeeId = emp();
    const grantId = randomUUID();
    const id = await raise(grantFailed(employeeId, grantId));
    expect((await post(`${BASE}/${id}/acknowledge`, {})).statusCode).toBe(200);
    await raise(grantFailed(employeeId, grantId));
    expect((await get(`${BASE}/${id}`)).json<Alert>()).toMatchObject({ status: 'acknowledged', count: 2, acknowledgedAt: expect.any(String) });

    expect((await post(`${BASE}/${id}/resolve`, { note: 'restarted slapd' })).statusCode).toBe(200);
    await raise(grantFailed(employeeId, grantId));
    expect((await get(`${BASE}/${id}`)).json<Alert>()).toMatchObject({ status: 'open', count: 1, acknowledgedAt: null, resolvedAt: null });
  });
});

describe('GET /api/v1/alerts', () => {
  // Seeded once: six alerts for one person, of several kinds, severities and statuses.
  const person = emp();
  const ids: Record<string, string> = {};
  beforeAll(async () => {
    const grantIds = [randomUUID(), randomUUID(), randomUUID()];
    ids.failed = await raise(grantFailed(person, grantIds[0]));
    ids.unverified = await raise({ kind: 'grant_unverified', severity: 'critical', subject: `engineering not found for ${person}`, details: { grantId: grantIds[1], employeeId: person }, dedupeKey: `grant_unverified:${grantIds[1]}` });
    ids.stuck = await raise({ kind: 'grant_stuck', severity: 'warning', subject: `all-staff for ${person} is stuck`, details: { grantId: grantIds[2], employeeId: person }, dedupeKey: `grant_stuck:${grantIds[2]}` });
    ids.event = await raise({ kind: 'event_failed', severity: 'warning', subject: `the hire of ${person} failed`, details: { eventId: `evt-${person}`, employeeId: person }, dedupeKey: `event_failed:evt-${person}` });
    ids.drift = await raise({ kind: 'drift_unexpected', severity: 'critical', subject: `${person} holds admins`, details: { employeeId: person, target: 'directory' }, dedupeKey: `drift_unexpected:${person}` });
    ids.brake = await raise({ kind: 'brake_held', severity: 'info', subject: 'a batch was held', details: { employeeId: person, batchId: 'b1' }, dedupeKey: `brake_held:${person}` });
    await handle.db.transaction((tx) => resolveAlerts(tx, [`grant_stuck:${grantIds[2]}`], 'the grant became active'));
    expect((await post(`${BASE}/${ids.event}/acknowledge`, { note: 'looking' })).statusCode).toBe(200);
  });
  const listed = async (query: string, token = reader) => {
    const response = await get(`${BASE}?employeeId=${person.toLowerCase()}&${query}`, token);
    expect(response.statusCode, response.body).toBe(200);
    return response.json<Page>().items.map((a) => a.id);
  };

  it('lists newest first, filtered by the person (any case) and by status, repeated or comma-separated', async () => {
    expect(await listed('')).toEqual([ids.brake, ids.drift, ids.event, ids.stuck, ids.unverified, ids.failed]);
    expect(await listed('status=open')).toEqual([ids.brake, ids.drift, ids.unverified, ids.failed]);
    expect(await listed('status=open&status=acknowledged')).toEqual([ids.brake, ids.drift, ids.event, ids.unverified, ids.failed]);
    expect(await listed('status=acknowledged,resolved')).toEqual([ids.event, ids.stuck]);
  });

  it('filters by kind, severity and grant, and with alerts:write as well as identities:read', async () => {
    expect(await listed('kind=grant_unverified')).toEqual([ids.unverified]);
    expect(await listed('severity=critical&status=open', writer)).toEqual([ids.drift, ids.unverified, ids.failed]);
    const grantId = (await get(`${BASE}/${ids.failed}`)).json<Alert>().details.grantId as string;
    expect((await get(`${BASE}?grantId=${grantId}`)).json<Page>().items.map((a) => a.id)).toEqual([ids.failed]);
    expect(await listed('kind=break_glass')).toEqual([]);
  });

  it('walks every page with the cursor, without duplicates or gaps', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const response = await get(`${BASE}?employeeId=${person}&limit=4${cursor ? `&cursor=${cursor}` : ''}`);
      expect(response.statusCode).toBe(200);
      const page = response.json<Page>();
      expect(page.items.length).toBeLessThanOrEqual(4);
      seen.push(...page.items.map((a) => a.id));
      cursor = page.nextCursor;
      pages += 1;
    } while (cursor && pages < 10);
    expect(pages).toBe(2);
    expect(seen).toEqual(await listed(''));
  });

  it('answers 400 naming each bad filter, and a cursor it did not hand out', async () => {
    const bad = async (query: string) => {
      const response = await get(`${BASE}?${query}`);
      expect(response.statusCode, query).toBe(400);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      return response.json<{ errors: Array<{ field: string; message: string }> }>().errors.map((e) => e.field);
    };
    expect(await bad('status=closed')).toEqual(['status']);
    expect(await bad('status=open,')).toEqual(['status']);
    expect(await bad('severity=urgent')).toEqual(['severity']);
    expect(await bad('kind=DROP%20TABLE')).toEqual(['kind']);
    expect(await bad('grantId=42')).toEqual(['grantId']);
    expect(await bad('limit=0')).toEqual(['limit']);
    expect(await bad('limit=201')).toEqual(['limit']);
    expect(await bad(`cursor=${Buffer.from('["2026-01-01T00:00:00.000000Z","nope"]').toString('base64url')}`)).toEqual(['cursor']);
  });

  it('shows an alert that could not be delivered, with each channel\'s attempt', async () => {
    const id = await raise(grantFailed(emp()));
    const notifications = [{ channel: 'email', at: new Date().toISOString(), ok: false, error: 'SMTP 550' }];
    await handle.db.update(alerts).set({ deliveryStatus: 'failed', notifications }).where(eq(alerts.id, id));
    const [item] = (await get(`${BASE}?status=open&limit=200`)).json<Page>().items.filter((a) => a.id === id);
    expect(item?.delivery).toEqual({ status: 'failed', deliveredAt: null, notifications });
  });
});

describe('acknowledging and resolving', () => {
  it('moves open -> acknowledged -> resolved, each move audited with the actor and the note, and shown in the history', async () => {
    const id = await raise(grantFailed(emp()));
    const acked = await post(`${BASE}/${id}/acknowledge`, { note: 'Looking into the directory outage' });
    expect(acked.statusCode, acked.body).toBe(200);
    expect(acked.json<Alert>()).toMatchObject({ id, status: 'acknowledged', acknowledgedAt: expect.any(String), resolvedAt: null });

    const resolved = await post(`${BASE}/${id}/resolve`, { note: 'slapd restarted; the grant was retried and is active' });
    expect(resolved.statusCode, resolved.body).toBe(200);
    const alert = resolved.json<Alert>();
    expect(alert).toMatchObject({ id, status: 'resolved', acknowledgedAt: acked.json<Alert>().acknowledgedAt, resolvedAt: expect.any(String) });

    const audit = await handle.db
      .select({ actor: auditLog.actor, action: auditLog.action, before: auditLog.before, after: auditLog.after })
      .from(auditLog)
      .where(and(eq(auditLog.subjectType, 'alert'), eq(auditLog.subjectId, id)))
      .orderBy(asc(auditLog.seq));
    expect(audit.slice(1)).toEqual([
      { actor: `api:${writerName}`, action: 'alert.acknowledged', before: { status: 'open' }, after: { status: 'acknowledged', note: 'Looking into the directory outage' } },
      { actor: `api:${writerName}`, action: 'alert.resolved', before: { status: 'acknowledged' }, after: { status: 'resolved', note: 'slapd restarted; the grant was retried and is active' } },
    ]);
    expect(alert.history?.map((h) => [h.action, h.actor, h.note])).toEqual([
      ['alert.raised', 'engine', null],
      ['alert.acknowledged', `api:${writerName}`, 'Looking into the directory outage'],
      ['alert.resolved', `api:${writerName}`, 'slapd restarted; the grant was retried and is active'],
    ]);
  });

  it('acknowledges with no body or no note, and resolves an open alert directly', async () => {
    const quiet = await raise(grantFailed(emp()));
    const noBody = await app.inject({ method: 'POST', url: `${BASE}/${quiet}/acknowledge`, headers: auth(writer) });
    expect(noBody.statusCode, noBody.body).toBe(200);
    const open = await raise(grantFailed(emp()));
    expect((await post(`${BASE}/${open}/acknowledge`, {})).json<Alert>().status).toBe('acknowledged');
    const direct = await raise(grantFailed(emp()));
    expect((await post(`${BASE}/${direct}/resolve`, { note: 'false alarm' })).json<Alert>()).toMatchObject({ status: 'resolved', acknowledgedAt: null });
  });

  it('refuses a move the status does not allow with a 409 naming that status, and changes nothing', async () => {
    const id = await raise(grantFailed(emp()));
    expect((await post(`${BASE}/${id}/acknowledge`, {})).statusCode).toBe(200);
    const again = await post(`${BASE}/${id}/acknowledge`, {});
    expect(again.statusCode).toBe(409);
    expect(again.json()).toMatchObject({ status: 409, type: 'urn:jml:problem:alert-status-conflict', alertStatus: 'acknowledged', detail: expect.stringContaining('acknowledged') });

    expect((await post(`${BASE}/${id}/resolve`, { note: 'done' })).statusCode).toBe(200);
    const twice = await post(`${BASE}/${id}/resolve`, { note: 'done again' });
    expect(twice.statusCode).toBe(409);
    expect(twice.json()).toMatchObject({ alertStatus: 'resolved', detail: 'The alert is resolved; only an open or acknowledged alert can be resolved.' });
    const late = await post(`${BASE}/${id}/acknowledge`, { note: 'late' });
    expect(late.statusCode).toBe(409);
    expect(late.json()).toMatchObject({ alertStatus: 'resolved' });

    const moves = await handle.db.select().from(auditLog).where(and(eq(auditLog.subjectType, 'alert'), eq(auditLog.subjectId, id)));
    expect(moves.map((m) => m.action).sort()).toEqual(['alert.acknowledged', 'alert.raised', 'alert.resolved']);
  });

  it('answers 404 for an alert that does not exist, and 400 for an id that is not a UUID', async () => {
    const unknown = randomUUID();
    for (const response of [await get(`${BASE}/${unknown}`), await post(`${BASE}/${unknown}/acknowledge`, {}), await post(`${BASE}/${unknown}/resolve`, { note: 'x' })]) {
      expect(response.statusCode).toBe(404);
      expect(response.json()).toMatchObject({ status: 404, type: 'urn:jml:problem:not-found' });
    }
    const notUuid = await post(`${BASE}/42/acknowledge`, {});
    expect(notUuid.statusCode).toBe(400);
    expect(notUuid.json<{ errors: Array<{ field: string }> }>().errors.map((e) => e.field)).toEqual(['id']);
  });

  it('requires a note to resolve, at most 1000 characters of plain text, and no other field', async () => {
    const id = await raise(grantFailed(emp()));
    const fields = async (url: string, body: unknown) => {
      const response = await post(url, body);
      expect(response.statusCode, JSON.stringify(body)).toBe(400);
      return response.json<{ errors: Array<{ field: string }> }>().errors.map((e) => e.field);
    };
    expect(await fields(`${BASE}/${id}/resolve`, {})).toEqual(['note']);
    expect(await fields(`${BASE}/${id}/resolve`, { note: '' })).toEqual(['note']);
    expect(await fields(`${BASE}/${id}/resolve`, { note: 'x'.repeat(1_001) })).toEqual(['note']);
    expect(await fields(`${BASE}/${id}/resolve`, { note: 'fixed\u001b[2J' })).toEqual(['note']);
    expect(await fields(`${BASE}/${id}/acknowledge`, { note: 'x'.repeat(1_001) })).toEqual(['note']);
    expect(await fields(`${BASE}/${id}/acknowledge`, { note: 42 })).toEqual(['note']);
    expect(await fields(`${BASE}/${id}/acknowledge`, { status: 'resolved' })).toEqual(['(body)']);
    expect((await post(`${BASE}/${id}/resolve`, { note: 'x'.repeat(1_000) })).statusCode).toBe(200);
  });
});

describe('tokens', () => {
  it('answers 401 with a Bearer challenge without a token, on every route', async () => {
    const id = randomUUID();
    for (const response of [await get(BASE, null), await get(`${BASE}/${id}`, null), await post(`${BASE}/${id}/acknowledge`, {}, null), await post(`${BASE}/${id}/resolve`, { note: 'x' }, null)]) {
      expect(response.statusCode).toBe(401);
      expect(response.headers['www-authenticate']).toMatch(/^Bearer /);
    }
  });

  it('answers 403 for a token without the scope: reading needs alerts:write or identities:read, moving needs alerts:write', async () => {
    const id = await raise(grantFailed(emp()));
    const read = await get(BASE, outsider);
    expect(read.statusCode).toBe(403);
    expect(read.json()).toMatchObject({ detail: expect.stringContaining('alerts:write') });
    expect((await get(`${BASE}/${id}`, outsider)).statusCode).toBe(403);
    const ack = await post(`${BASE}/${id}/acknowledge`, {}, reader);
    expect(ack.statusCode).toBe(403);
    expect((await post(`${BASE}/${id}/resolve`, { note: 'x' }, reader)).statusCode).toBe(403);
    expect((await get(`${BASE}/${id}`)).json<Alert>().status).toBe('open');
  });

  it('checks the token before it reads the body: a malformed body without a token is a 401, with the wrong scope a 403', async () => {
    const id = randomUUID();
    expect((await post(`${BASE}/${id}/resolve`, '{"note": ', null)).statusCode).toBe(401);
    expect((await post(`${BASE}/${id}/resolve`, '{"note": ', reader)).statusCode).toBe(403);
    const withScope = await post(`${BASE}/${id}/resolve`, '{"note": ', writer);
    expect(withScope.statusCode).toBe(400);
    expect(withScope.json()).toMatchObject({ type: 'urn:jml:problem:malformed-json' });
  });
});
