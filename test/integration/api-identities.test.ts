// The identity read API through the real app against the run's Postgres: bearer tokens
// and scopes, cursor pagination, grants with request and grant status side by side, and
// the merged timeline. Rows are seeded directly with drizzle.
import { randomBytes } from 'node:crypto';
import type { Queue } from 'bullmq';
import { eq } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../api/app.js';
import { createApiToken, hashToken, revokeApiToken } from '../../api/auth.js';
import { createMetricsRegistry } from '../../api/metrics.js';
import { writeAudit } from '../../db/audit.js';
import { createDb, type DbHandle } from '../../db/client.js';
import { accessRequests, apiTokens, auditLog, entitlements, grants, hrEvents, identities } from '../../db/schema.js';
import { createHrEventQueue, type HrEventJob } from '../../services/hr-event-queue.js';
import { redisConnection } from '../../services/redis.js';
import { eventually } from '../support/engine.js';
import { testConfig } from '../support/config.js';
import { testEnv, uniqueName } from '../support/env.js';

const BASE = '/api/v1/identities';

let handle: DbHandle;
let queue: Queue<HrEventJob>;
let app: FastifyInstance;
let readToken: string;
let readTokenId: string;
/** Employee ids are unique per run of this file (other files share the database), and canonical. */
const run = randomBytes(3).toString('hex');
const emp = (n: string) => `T${run}-${n}`.toUpperCase();

interface Identity {
  id: string;
  employeeId: string;
  status: string;
}

beforeAll(async () => {
  handle = createDb(testEnv.databaseUrl, { max: 5 });
  queue = createHrEventQueue(redisConnection(testEnv.redisUrl, 'producer'), `${testEnv.redisPrefix}:${uniqueName('ids')}`);
  app = await buildApp({
    db: handle.db,
    hrEventQueue: queue,
    webhookSecrets: [`whsec_${randomBytes(32).toString('base64')}`],
    config: testConfig(testEnv.ldap),
    publicUrl: 'https://jml.test',
    // Test double for Temporal: the read API never calls it; only /api/health would.
    health: { redis: async () => void (await queue.getWaitingCount()), temporal: async () => {} },
    logger: false,
    metrics: createMetricsRegistry({ defaultMetrics: false }),
  });
  ({ token: readToken, id: readTokenId } = await createApiToken(handle.db, { name: uniqueName('reader'), scopes: ['identities:read'] }));
});

afterAll(async () => {
  await app?.close();
  await queue?.close();
  await handle?.close();
});

async function get(url: string, token: string | null = readToken) {
  return app.inject({ method: 'GET', url, headers: token ? { authorization: `Bearer ${token}` } : {} });
}

async function seedIdentity(employeeId: string, status = 'active', createdAt?: Date): Promise<Identity> {
  const [row] = await handle.db
    .insert(identities)
    .values({ employeeId, status, attributes: { givenName: 'Test', familyName: employeeId }, ...(createdAt ? { createdAt } : {}) })
    .returning();
  return row!;
}

describe('bearer tokens', () => {
  it('answers 401 with a Bearer challenge when no token is sent', async () => {
    const response = await get(BASE, null);
    expect(response.statusCode).toBe(401);
    expect(response.headers['www-authenticate']).toMatch(/^Bearer /);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(response.json()).toMatchObject({ status: 401, title: 'Unauthorized', instance: BASE });
  });

  it('answers 401 for an unknown token and for a malformed header', async () => {
    const unknown = await get(BASE, `jml_${randomBytes(32).toString('base64url')}`);
    expect(unknown.statusCode).toBe(401);
    expect(unknown.headers['www-authenticate']).toMatch(/error="invalid_token"/);
    const basic = await app.inject({ method: 'GET', url: BASE, headers: { authorization: `Basic ${readToken}` } });
    expect(basic.statusCode).toBe(401);
  });

  it('answers 403 for a valid token without the scope', async () => {
    const { token } = await createApiToken(handle.db, { name: uniqueName('writer'), scopes: ['events:write', 'requests:write'] });
    const response = await get(BASE, token);
    expect(response.statusCode).toBe(403);
    expect(response.json()).toMatchObject({ status: 403, title: 'Forbidden', detail: expect.stringContaining('identities:read') });
  });

  it('answers 200 for the right scope and for admin', async () => {
    expect((await get(BASE)).statusCode).toBe(200);
    const { token } = await createApiToken(handle.db, { name: uniqueName('admin'), scopes: ['admin'] });
    expect((await get(BASE, token)).statusCode).toBe(200);
  });

  it('answers 401 once the token is revoked', async () => {
    const { token, id } = await createApiToken(handle.db, { name: uniqueName('revoked'), scopes: ['identities:read'] });
    expect((await get(BASE, token)).statusCode).toBe(200);
    expect(await revokeApiToken(handle.db, id, 'test')).toBe(true);
    expect(await revokeApiToken(handle.db, id, 'test')).toBe(false);
    expect((await get(BASE, token)).statusCode).toBe(401);
  });

  it('stores only the hash, audits creation, and records last use', async () => {
    const [row] = await handle.db.select().from(apiTokens).where(eq(apiTokens.id, readTokenId));
    expect(row!.tokenHash).toBe(hashToken(readToken));
    expect(row!.tokenHash).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(row)).not.toContain(readToken);
    const audit = await handle.db.select().from(auditLog).where(eq(auditLog.subjectId, readTokenId));
    expect(audit.map((a) => a.action)).toContain('api_token.created');
    expect(JSON.stringify(audit)).not.toContain(readToken);
    await get(BASE);
    const used = await eventually(async () => (await handle.db.select().from(apiTokens).where(eq(apiTokens.id, readTokenId)))[0]?.lastUsedAt ?? undefined);
    expect(used).toBeInstanceOf(Date);
  });
});

describe('GET /api/v1/identities', () => {
  it('walks every page without duplicates or gaps', async () => {
    const seeded = await Promise.all(Array.from({ length: 7 }, (_, i) => seedIdentity(emp(`page-${i}`))));
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const response = await get(`${BASE}?limit=3${cursor ? `&cursor=${cursor}` : ''}`);
      expect(response.statusCode).toBe(200);
      const body = response.json() as { items: Identity[]; nextCursor: string | null };
      expect(body.items.length).toBeLessThanOrEqual(3);
      seen.push(...body.items.map((i) => i.employeeId));
      cursor = body.nextCursor;
      pages += 1;
    } while (cursor && pages < 1_000);
    expect(new Set(seen).size).toBe(seen.length);
    expect([...seen].sort()).toEqual(seen); // ordered by employee id
    for (const identity of seeded) expect(seen).toContain(identity.employeeId);
    expect(pages).toBeGreaterThanOrEqual(3);
  });

  it('filters by employeeId and by status', async () => {
    const target = await seedIdentity(emp('filter-a'), 'on_leave');
    await seedIdentity(emp('filter-b'), 'terminated');
    const byEmployee = (await get(`${BASE}?employeeId=${target.employeeId}`)).json() as { items: Identity[]; nextCursor: string | null };
    expect(byEmployee.items).toEqual([expect.objectContaining({ id: target.id, employeeId: target.employeeId, status: 'on_leave' })]);
    expect(byEmployee.nextCursor).toBeNull();

    const byStatus = (await get(`${BASE}?status=terminated&limit=200`)).json() as { items: Identity[] };
    expect(byStatus.items.length).toBeGreaterThan(0);
    expect(byStatus.items.every((i) => i.status === 'terminated')).toBe(true);
    expect(byStatus.items.map((i) => i.employeeId)).toContain(emp('filter-b'));
  });

  it('finds an identity by employeeId in any spelling', async () => {
    const target = await seedIdentity(emp('case-a'));
    for (const spelling of [target.employeeId.toLowerCase(), target.employeeId]) {
      const found = (await get(`${BASE}?employeeId=${spelling}`)).json() as { items: Identity[] };
      expect(found.items).toEqual([expect.objectContaining({ id: target.id, employeeId: target.employeeId })]);
    }
    const bad = await get(`${BASE}?employeeId=${encodeURIComponent(' padded ')}`);
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ errors: [{ field: 'employeeId', message: 'must be 1..64 characters of letters, digits, . _ -' }] });
  });

  it('names each bad query parameter', async () => {
    const response = await get(`${BASE}?limit=500&status=retired`);
    expect(response.statusCode).toBe(400);
    const fields = (response.json() as { errors: Array<{ field: string }> }).errors.map((e) => e.field).sort();
    expect(fields).toEqual(['limit', 'status']);
  });

  it('refuses a cursor it did not hand out', async () => {
    const response = await get(`${BASE}?cursor=not-a-cursor`);
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ errors: [{ field: 'cursor' }] });
  });
});

describe('GET /api/v1/identities/:id', () => {
  it('returns the identity by uuid', async () => {
    const identity = await seedIdentity(emp('one'));
    const response = await get(`${BASE}/${identity.id}`);
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({ id: identity.id, employeeId: identity.employeeId, status: 'active', attributes: { givenName: 'Test' } });
  });

  it('answers 400 naming `id` for a malformed uuid, 404 for an unknown one', async () => {
    const bad = await get(`${BASE}/not-a-uuid`);
    expect(bad.statusCode).toBe(400);
    expect(bad.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(bad.json()).toMatchObject({ status: 400, instance: `${BASE}/not-a-uuid`, errors: [{ field: 'id', message: expect.any(String) }] });

    const missing = await get(`${BASE}/00000000-0000-4000-8000-000000000000`);
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toMatchObject({ status: 404, title: 'Not found' });

    expect((await get(`${BASE}/not-a-uuid/grants`)).statusCode).toBe(400);
    expect((await get(`${BASE}/00000000-0000-4000-8000-000000000000/timeline`)).statusCode).toBe(404);
  });
});

async function seedEntitlement(kind: 'account' | 'group', name: string) {
  const id = `${name}-${run}`;
  await handle.db.insert(entitlements).values({ id, name: `Test ${name}`, target: 'directory', kind, targetRef: kind === 'group' ? `cn=${id}` : null });
  return id;
}

async function seedGrant(identityId: string, entitlementId: string, request: { kind: string; status: string }, grant: { status: string; attempts?: number; lastError?: string }) {
  const [req] = await handle.db
    .insert(accessRequests)
    .values({ idempotencyKey: uniqueName('req'), identityId, entitlementId, kind: request.kind, status: request.status, requestedBy: 'test' })
    .returning();
  const [row] = await handle.db
    .insert(grants)
    .values({ identityId, entitlementId, requestId: req!.id, status: grant.status, attempts: grant.attempts ?? 0, lastError: grant.lastError ?? null })
    .returning();
  return { request: req!, grant: row! };
}

describe('GET /api/v1/identities/:id/grants', () => {
  it('shows each grant with its request status and grant status side by side', async () => {
    const identity = await seedIdentity(emp('grants'));
    const other = await seedIdentity(emp('grants-other'));
    const account = await seedEntitlement('account', 'acct');
    const group = await seedEntitlement('group', 'grp');
    const a = await seedGrant(identity.id, account, { kind: 'birthright', status: 'auto_approved' }, { status: 'active' });
    const b = await seedGrant(identity.id, group, { kind: 'requested', status: 'approved' }, { status: 'failed', attempts: 3, lastError: 'read-back: member missing' });
    await seedGrant(other.id, account, { kind: 'birthright', status: 'auto_approved' }, { status: 'active' });

    const response = await get(`${BASE}/${identity.id}/grants`);
    expect(response.statusCode).toBe(200);
    const { items } = response.json() as { items: Array<Record<string, unknown>> };
    expect(items).toHaveLength(2);
    expect(items).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ id: a.grant.id, entitlementId: account, entitlementName: 'Test acct', kind: 'account', target: 'directory', requestId: a.request.id, requestKind: 'birthright', requestStatus: 'auto_approved', grantStatus: 'active', attempts: 0, lastError: null }),
        expect.objectContaining({ id: b.grant.id, entitlementId: group, kind: 'group', requestKind: 'requested', requestStatus: 'approved', grantStatus: 'failed', attempts: 3, lastError: 'read-back: member missing' }),
      ]),
    );
    for (const key of ['verifiedAt', 'expiresAt', 'revokedAt', 'revokeReason', 'createdAt', 'updatedAt']) expect(items[0]).toHaveProperty(key);
  });
});

describe('GET /api/v1/identities/:id/timeline', () => {
  it('merges the person’s HR events and audit rows in time order, page by page', async () => {
    const identity = await seedIdentity(emp('timeline'));
    const stranger = await seedIdentity(emp('timeline-stranger'));
    const account = await seedEntitlement('account', 'tl');
    const { grant } = await seedGrant(identity.id, account, { kind: 'birthright', status: 'auto_approved' }, { status: 'active' });

    // Two HR events in the past, with fixed received times around the audit rows.
    const t0 = Date.now() - 60_000;
    const hire = uniqueName('tl-hire');
    const update = uniqueName('tl-update');
    await handle.db.insert(hrEvents).values([
      { id: hire, employeeId: identity.employeeId, type: 'hire', effectiveAt: new Date(t0), payload: {}, source: 'api', receivedAt: new Date(t0) },
      { id: update, employeeId: identity.employeeId, type: 'update', effectiveAt: new Date(t0 + 30_000), payload: {}, source: 'api', receivedAt: new Date(t0 + 30_000) },
      { id: uniqueName('tl-stranger'), employeeId: stranger.employeeId, type: 'hire', effectiveAt: new Date(t0), payload: {}, source: 'api', receivedAt: new Date(t0 + 1) },
    ]);
    // Audit rows (their time is now): by subject, and by correlation with an HR event.
    await handle.db.transaction(async (tx) => {
      await writeAudit(tx, { actor: 'test', action: 'identity.created', subjectType: 'identity', subjectId: identity.id });
      await writeAudit(tx, { actor: 'test', action: 'grant.active', subjectType: 'grant', subjectId: grant.id });
      await writeAudit(tx, { actor: 'test', action: 'workflow.note', subjectType: 'workflow', subjectId: `lifecycle:${identity.employeeId}`, correlationId: update });
      await writeAudit(tx, { actor: 'test', action: 'identity.created', subjectType: 'identity', subjectId: stranger.id });
    });

    const items: Array<{ kind: string; at: string; eventId?: string; action?: string; subjectId?: string; seq?: number }> = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const response = await get(`${BASE}/${identity.id}/timeline?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(response.statusCode).toBe(200);
      const body = response.json() as { items: typeof items; nextCursor: string | null };
      items.push(...body.items);
      cursor = body.nextCursor;
      pages += 1;
    } while (cursor && pages < 100);

    expect(pages).toBe(3);
    expect(items.map((i) => (i.kind === 'hr_event' ? i.eventId : i.action))).toEqual([hire, update, 'identity.created', 'grant.active', 'workflow.note']);
    const times = items.map((i) => Date.parse(i.at));
    expect([...times].sort((x, y) => x - y)).toEqual(times);
    expect(items.find((i) => i.kind === 'audit' && i.subjectId === stranger.id)).toBeUndefined();
    expect(items[0]).toMatchObject({ kind: 'hr_event', type: 'hire', source: 'api', status: 'received' });
  });

  it('refuses a timeline cursor it did not hand out', async () => {
    const identity = await seedIdentity(emp('timeline-cursor'));
    const forged = Buffer.from(JSON.stringify(['x', 'audit', '1'])).toString('base64url');
    const response = await get(`${BASE}/${identity.id}/timeline?cursor=${forged}`);
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ errors: [{ field: 'cursor' }] });
  });
});
