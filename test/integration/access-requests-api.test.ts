// The access-request API at the HTTP level: asking (201 with the three statuses side by
// side, Location, the workflow started), idempotency, every policy refusal as a 422 that
// names its rule and field and records nothing, who may ask for whom, who sees what, lists
// with cursors, and the doors (bad ids, auth before the body). A real Temporal client with a
// task queue no worker polls: workflows start and wait, which is what these checks need.
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { and, count, eq, or, sql } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../api/app.js';
import { createApiToken } from '../../api/auth.js';
import { createMetricsRegistry } from '../../api/metrics.js';
import { createDb, type DbHandle } from '../../db/client.js';
import { syncEntitlements } from '../../db/entitlements.js';
import { accessRequests, approvals, auditLog, grants, identities } from '../../db/schema.js';
import type { JmlConfig } from '../../domain/config.js';
import type { RequestView } from '../../domain/request-view.js';
import type { IdentityStatus } from '../../domain/types.js';
import { startRequestWorkflow, submitAccessRequest } from '../../services/access-requests.js';
import { createHrEventQueue, type HrEventJob } from '../../services/hr-event-queue.js';
import { redisConnection } from '../../services/redis.js';
import { testConfig } from '../support/config.js';
import { testEnv, uniqueEmployeeId, uniqueName } from '../support/env.js';
import type { Queue } from 'bullmq';

const PATH = '/api/v1/access-requests';

// Entitlement ids of this file only: other files share the database.
const base = uniqueName('ar');
const ENT = {
  a: `${base}-a`,
  b: `${base}-b`,
  c: `${base}-c`,
  d: `${base}-d`,
  e: `${base}-e`,
  limited: `${base}-limited`,
  notRequestable: `${base}-nr`,
  held: `${base}-held`,
  conflicting: `${base}-sod`,
};

let handle: DbHandle;
let db: DbHandle['db'];
let queue: Queue<HrEventJob>;
let connection: Connection;
let temporal: Client;
let app: FastifyInstance;
let config: JmlConfig;
const taskQueue = uniqueName('access-requests-api');
const started: string[] = [];

let manager: string;
let e1: string;
let e1Token: string;
let adminName: string;
let adminToken: string;
let readerToken: string;
let writerUnbound: string;
let managerApprover: string;

async function person(options: { status?: IdentityStatus; managerId?: string | null; id?: string } = {}): Promise<string> {
  const employeeId = options.id ?? uniqueEmployeeId('AR');
  const managerId = options.managerId === undefined ? manager : options.managerId;
  await db.insert(identities).values({ employeeId, status: options.status ?? 'active', attributes: managerId ? { managerId } : {} });
  return employeeId;
}

/** A grant the person holds (with the birthright request it belongs to). */
async function holds(employeeId: string, entitlementId: string): Promise<void> {
  const [identity] = await db.select({ id: identities.id }).from(identities).where(eq(identities.employeeId, employeeId));
  const [request] = await db
    .insert(accessRequests)
    .values({ idempotencyKey: `seed:${randomUUID()}`, identityId: identity!.id, entitlementId, kind: 'birthright', status: 'auto_approved', requestedBy: 'engine' })
    .returning({ id: accessRequests.id });
  await db.insert(grants).values({ identityId: identity!.id, entitlementId, requestId: request!.id, status: 'active', verifiedAt: new Date() });
}

const auth = (token: string) => ({ authorization: `Bearer ${token}` });

async function ask(token: string, body: Record<string, unknown>, headers: Record<string, string> = {}) {
  const response = await app.inject({ method: 'POST', url: PATH, headers: { ...auth(token), ...headers }, payload: body });
  if (response.statusCode === 201) started.push(response.json<RequestView>().id);
  return response;
}

/**
 * What a request about `employeeId` by `actor` would have written: its request rows, and audit
 * rows by the actor or about the subject. Both are this file's own (unique names), so rows
 * other files write at the same time do not count.
 */
async function recorded(employeeId: string, actor: string): Promise<{ requests: number; audit: number }> {
  const [requests] = await db
    .select({ n: count() })
    .from(accessRequests)
    .innerJoin(identities, eq(identities.id, accessRequests.identityId))
    .where(and(eq(identities.employeeId, employeeId), eq(accessRequests.kind, 'requested')));
  const [audit] = await db
    .select({ n: count() })
    .from(auditLog)
    .where(or(eq(auditLog.actor, actor), sql`${auditLog.after}->>'employeeId' = ${employeeId}`));
  return { requests: requests!.n, audit: audit!.n };
}

beforeAll(async () => {
  const shared = testConfig(testEnv.ldap);
  const group = (id: string) => `cn=${id},${testEnv.ldap.groupsDN}`;
  const entitlement = (id: string, extra: Record<string, unknown> = {}) => ({ id, target: 'directory', kind: 'group', ref: group(id), requestable: true, ...extra });
  config = testConfig(testEnv.ldap, {
    entitlements: [
      ...shared.entitlements,
      entitlement(ENT.a),
      entitlement(ENT.b),
      entitlement(ENT.c),
      entitlement(ENT.d),
      entitlement(ENT.e),
      entitlement(ENT.limited, { maxDuration: '1d' }),
      entitlement(ENT.notRequestable, { requestable: false }),
      entitlement(ENT.held, { requestable: false }),
      entitlement(ENT.conflicting),
    ],
    sod: [{ name: `${base}-sod-rule`, conflicting: [ENT.held, ENT.conflicting] }],
  });

  handle = createDb(testEnv.databaseUrl, { max: 4 });
  db = handle.db;
  // Only this file's entitlements: the shared ones belong to other files' configs.
  await syncEntitlements(db, { ...config, entitlements: config.entitlements.filter((e) => e.id.startsWith(base)), birthright: [] });
  queue = createHrEventQueue(redisConnection(testEnv.redisUrl, 'producer'), `${testEnv.redisPrefix}:${uniqueName('access-requests-api')}`);
  connection = await Connection.connect({ address: testEnv.temporalAddress });
  temporal = new Client({ connection });
  app = await buildApp({
    db,
    hrEventQueue: queue,
    webhookSecrets: [],
    config,
    temporal,
    taskQueue,
    publicUrl: 'https://jml.test',
    health: { redis: async () => {}, temporal: async () => {} },
    logger: false,
    metrics: createMetricsRegistry({ defaultMetrics: false }),
  });

  manager = await person({ managerId: null });
  e1 = await person();
  managerApprover = (await createApiToken(db, { name: uniqueName('m1'), scopes: ['requests:approve'], employeeId: manager })).token;
  // Bound in lower case: the binding is stored canonical.
  e1Token = (await createApiToken(db, { name: uniqueName('e1'), scopes: ['requests:write'], employeeId: e1.toLowerCase() })).token;
  adminName = uniqueName('admin');
  adminToken = (await createApiToken(db, { name: adminName, scopes: ['admin'] })).token;
  readerToken = (await createApiToken(db, { name: uniqueName('reader'), scopes: ['identities:read'] })).token;
  writerUnbound = (await createApiToken(db, { name: uniqueName('writer'), scopes: ['requests:write'] })).token;
});

afterAll(async () => {
  for (const id of started) {
    await temporal
      ?.workflow.getHandle(`access-request:${id}`)
      .terminate('test over')
      .catch(() => undefined);
  }
  await app?.close();
  await queue?.close();
  await connection?.close();
  await handle?.close();
});

describe('asking for access', () => {
  it('records the request, answers 201 with Location and three statuses side by side, and starts its workflow', async () => {
    const response = await ask(e1Token, { entitlementId: ENT.a, justification: 'Quarter-end close needs the ledger group', duration: '8h' });
    expect(response.statusCode, response.body).toBe(201);
    const view = response.json<RequestView>();
    expect(response.headers.location).toBe(`https://jml.test${PATH}/${view.id}`);
    expect(view).toMatchObject({
      employeeId: e1,
      entitlementId: ENT.a,
      kind: 'requested',
      requestedBy: e1,
      justification: 'Quarter-end close needs the ledger group',
      duration: '8h',
      requestStatus: 'pending_approval',
      grantStatus: null,
      revocationStatus: null,
      retainedBy: [],
      grant: null,
    });
    expect(view.timeline.map((t) => t.action)).toEqual(['access_request.submitted']);
    expect(view.timeline[0]!.detail).toMatchObject({ entitlementId: ENT.a, employeeId: e1, durationMs: 8 * 3_600_000, requestedBy: e1 });
    expect(JSON.stringify(view.timeline)).not.toContain('Quarter-end');

    const description = await temporal.workflow.getHandle(`access-request:${view.id}`).describe();
    expect(description.status.name).toBe('RUNNING');
    expect(description.type).toBe('accessRequest');
    expect(description.taskQueue).toBe(taskQueue);
    const [row] = await db.select({ startedAt: accessRequests.workflowStartedAt }).from(accessRequests).where(eq(accessRequests.id, view.id));
    expect(row!.startedAt).toBeInstanceOf(Date);

    const again = await app.inject({ method: 'GET', url: `${PATH}/${view.id}`, headers: auth(readerToken) });
    expect(again.statusCode).toBe(200);
    expect(again.json<RequestView>()).toEqual(view);
  });

  it('is idempotent by Idempotency-Key: a replay answers 200 with the same request, another body under the key is a 422', async () => {
    const subject = await person();
    const token = (await createApiToken(db, { name: uniqueName('idem'), scopes: ['requests:write'], employeeId: subject })).token;
    const key = `key-${randomUUID()}`;
    const body = { entitlementId: ENT.b, justification: 'On-call rotation' };
    const first = await ask(token, body, { 'idempotency-key': key });
    expect(first.statusCode, first.body).toBe(201);
    const replay = await ask(token, body, { 'idempotency-key': key });
    expect(replay.statusCode).toBe(200);
    expect(replay.json<RequestView>().id).toBe(first.json<RequestView>().id);
    expect(replay.headers.location).toBe(first.headers.location);

    const before = await recorded(subject, subject);
    const reused = await ask(token, { ...body, justification: 'Something else' }, { 'idempotency-key': key });
    expect(reused.statusCode).toBe(422);
    expect(reused.json()).toMatchObject({ type: 'urn:jml:problem:idempotency-key-reuse', detail: 'idempotency key reused with a different request' });
    expect(await recorded(subject, subject)).toEqual(before);

    // At the same moment: one request, whatever the race (requests for one person take turns).
    const sameKey = `key-${randomUUID()}`;
    const racing = await Promise.all([0, 1, 2].map(() => ask(token, { entitlementId: ENT.c, justification: 'Raced' }, { 'idempotency-key': sameKey })));
    expect(racing.map((r) => r.statusCode).sort()).toEqual([200, 200, 201]);
    expect(new Set(racing.map((r) => r.json<RequestView>().id)).size).toBe(1);
    const otherKeys = await Promise.all([0, 1].map(() => ask(token, { entitlementId: ENT.d, justification: 'Raced apart' })));
    expect(otherKeys.map((r) => r.statusCode).sort()).toEqual([201, 422]);
    expect(otherKeys.find((r) => r.statusCode === 422)!.json()).toMatchObject({ rule: 'already_pending' });

    for (const bad of ['', 'has space', 'x'.repeat(256), 'naïve']) {
      const response = await app.inject({ method: 'POST', url: PATH, headers: { ...auth(token), 'idempotency-key': bad }, payload: body });
      expect(response.statusCode, JSON.stringify(bad)).toBe(400);
      expect(response.json<{ errors: Array<{ field: string }> }>().errors.map((e) => e.field)).toEqual(['Idempotency-Key']);
    }
  });

  it('refuses each policy rule with a 422 naming the rule and the field, and records nothing', async () => {
    const terminated = await person({ status: 'terminated' });
    const managerless = await person({ managerId: null });
    const ownManagerId = uniqueEmployeeId('AR');
    const ownManager = await person({ id: ownManagerId, managerId: ownManagerId });
    const holder = await person();
    await holds(holder, ENT.b);
    const pendingOne = await person();
    expect((await ask(adminToken, { employeeId: pendingOne, entitlementId: ENT.c, justification: 'First ask' })).statusCode).toBe(201);

    const cases: Array<{ rule: string; field: string; body: Record<string, unknown> }> = [
      { rule: 'justification_required', field: 'justification', body: { employeeId: e1, entitlementId: ENT.d, justification: '' } },
      { rule: 'justification_invalid', field: 'justification', body: { employeeId: e1, entitlementId: ENT.d, justification: 'bell\u0007' } },
      { rule: 'justification_invalid', field: 'justification', body: { employeeId: e1, entitlementId: ENT.d, justification: 'x'.repeat(1_001) } },
      { rule: 'duration_invalid', field: 'duration', body: { employeeId: e1, entitlementId: ENT.d, justification: 'Why', duration: '0' } },
      { rule: 'unknown_entitlement', field: 'entitlementId', body: { employeeId: e1, entitlementId: `${base}-nothing`, justification: 'Why' } },
      { rule: 'not_requestable', field: 'entitlementId', body: { employeeId: e1, entitlementId: ENT.notRequestable, justification: 'Why' } },
      { rule: 'unknown_subject', field: 'employeeId', body: { employeeId: uniqueEmployeeId('NOBODY'), entitlementId: ENT.d, justification: 'Why' } },
      { rule: 'subject_not_active', field: 'employeeId', body: { employeeId: terminated, entitlementId: ENT.d, justification: 'Why' } },
      { rule: 'duration_required', field: 'duration', body: { employeeId: e1, entitlementId: ENT.limited, justification: 'Why' } },
      { rule: 'duration_too_long', field: 'duration', body: { employeeId: e1, entitlementId: ENT.limited, justification: 'Why', duration: '2d' } },
      { rule: 'already_held', field: 'entitlementId', body: { employeeId: holder, entitlementId: ENT.b, justification: 'Why' } },
      { rule: 'already_pending', field: 'entitlementId', body: { employeeId: pendingOne, entitlementId: ENT.c, justification: 'Again' } },
      { rule: 'no_approver', field: 'entitlementId', body: { employeeId: managerless, entitlementId: ENT.d, justification: 'Why' } },
      { rule: 'self_approval', field: 'entitlementId', body: { employeeId: ownManager, entitlementId: ENT.d, justification: 'Why' } },
    ];
    const actor = `api:${adminName}`;
    for (const { rule, field, body } of cases) {
      const subject = body.employeeId as string;
      const before = await recorded(subject, actor);
      const response = await ask(adminToken, body);
      expect(response.statusCode, `${rule}: ${response.body}`).toBe(422);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.json(), rule).toMatchObject({ type: 'urn:jml:problem:access-policy', title: 'Access request refused', status: 422, rule, field });
      expect(response.json<{ detail: string }>().detail.length, rule).toBeGreaterThan(0);
      expect(await recorded(subject, actor), rule).toEqual(before);
    }
  });

  it('refuses a separation-of-duties conflict with what the person holds: 422 sod_conflict naming the conflict, nothing recorded', async () => {
    const subject = await person();
    await holds(subject, ENT.held);
    const token = (await createApiToken(db, { name: uniqueName('sod'), scopes: ['requests:write'], employeeId: subject })).token;
    const before = await recorded(subject, subject);
    const response = await ask(token, { entitlementId: ENT.conflicting, justification: 'Need both' });
    expect(response.statusCode).toBe(422);
    expect(response.json()).toMatchObject({
      rule: 'sod_conflict',
      field: 'entitlementId',
      conflict: { rule: `${base}-sod-rule`, entitlementId: ENT.held, source: 'held' },
    });
    expect(await recorded(subject, subject)).toEqual(before);
  });

  it('lets a bound token ask only for its person; admin asks for anyone; a token bound to nobody needs admin and an employeeId', async () => {
    const other = await person();
    const forOther = await ask(e1Token, { employeeId: other, entitlementId: ENT.d, justification: 'For a colleague' });
    expect(forOther.statusCode).toBe(403);
    // Its own id in another spelling is still itself.
    const own = await ask(e1Token, { employeeId: e1.toLowerCase(), entitlementId: ENT.e, justification: 'For me' });
    expect(own.statusCode, own.body).toBe(201);
    expect(own.json<RequestView>().employeeId).toBe(e1);

    expect((await ask(writerUnbound, { employeeId: other, entitlementId: ENT.d, justification: 'Unbound' })).statusCode).toBe(403);
    const missing = await ask(adminToken, { entitlementId: ENT.d, justification: 'Nobody named' });
    expect(missing.statusCode).toBe(400);
    expect(missing.json<{ errors: Array<{ field: string }> }>().errors.map((e) => e.field)).toEqual(['employeeId']);

    const byAdmin = await ask(adminToken, { employeeId: other, entitlementId: ENT.d, justification: 'Set up by IT' });
    expect(byAdmin.statusCode, byAdmin.body).toBe(201);
    expect(byAdmin.json<RequestView>()).toMatchObject({ employeeId: other, requestedBy: `api:${adminName}` });
  });

  it('names bad fields with a 400: the duration, unknown keys', async () => {
    for (const [body, field] of [
      [{ entitlementId: ENT.d, justification: 'Why', duration: 'eight hours' }, 'duration'],
      [{ entitlementId: ENT.d, justification: 'Why', duration: ' 8h' }, 'duration'],
      [{ entitlementId: ENT.d, justification: 'Why', durations: '8h' }, '(body)'],
      [{ entitlementId: ENT.d }, 'justification'],
    ] as const) {
      const response = await ask(e1Token, body);
      expect(response.statusCode, JSON.stringify(body)).toBe(400);
      expect(JSON.stringify(response.json<{ errors: Array<{ field: string }> }>().errors), JSON.stringify(body)).toContain(field);
    }
  });

  it('records a request while Temporal is away, and starts its workflow when the request is retried', async () => {
    const subject = await person();
    const input = { employeeId: subject, entitlementId: ENT.a, justification: 'Temporal is down', requestedBy: subject, requestedByEmployeeId: subject, idempotencyKey: `test:${randomUUID()}` };
    const result = await submitAccessRequest({ db, config, taskQueue }, input);
    if (!('requestId' in result)) throw new Error(`refused: ${JSON.stringify(result)}`);
    expect(result.created).toBe(true);
    started.push(result.requestId);
    const startedAt = async () => (await db.select({ at: accessRequests.workflowStartedAt }).from(accessRequests).where(eq(accessRequests.id, result.requestId)))[0]!.at;
    expect(await startedAt()).toBeNull();
    await expect(temporal.workflow.getHandle(`access-request:${result.requestId}`).describe()).rejects.toThrow();

    // The client retries (same key) once Temporal is back: the same request, its workflow now started.
    expect(await submitAccessRequest({ db, config, taskQueue, temporal }, input)).toEqual({ created: false, requestId: result.requestId });
    expect((await temporal.workflow.getHandle(`access-request:${result.requestId}`).describe()).status.name).toBe('RUNNING');
    expect(await startedAt()).toBeInstanceOf(Date);
    // Again (a sweep after a lost update): the running workflow is found, not a second one.
    expect(await startRequestWorkflow({ db, temporal, taskQueue }, result.requestId)).toBe(true);
  });
});

describe('reading requests', () => {
  let subject: string;
  let ids: string[];

  beforeAll(async () => {
    subject = await person();
    ids = [];
    for (const entitlementId of [ENT.c, ENT.d, ENT.e]) {
      const response = await ask(adminToken, { employeeId: subject, entitlementId, justification: `Needs ${entitlementId}` });
      expect(response.statusCode, response.body).toBe(201);
      ids.push(response.json<RequestView>().id);
    }
  });

  it('lists with filters, newest first, a page at a time by cursor', async () => {
    const page1 = await app.inject({ method: 'GET', url: `${PATH}?employeeId=${subject.toLowerCase()}&limit=2`, headers: auth(readerToken) });
    expect(page1.statusCode, page1.body).toBe(200);
    const first = page1.json<{ items: RequestView[]; nextCursor: string | null }>();
    expect(first.items.map((i) => i.id)).toEqual([ids[2], ids[1]]);
    expect(first.items[0]).not.toHaveProperty('timeline');
    expect(first.items[0]).toMatchObject({ requestStatus: 'pending_approval', grantStatus: null, revocationStatus: null });
    expect(first.nextCursor).toEqual(expect.any(String));

    const page2 = await app.inject({ method: 'GET', url: `${PATH}?employeeId=${subject}&limit=2&cursor=${first.nextCursor}`, headers: auth(readerToken) });
    const second = page2.json<{ items: RequestView[]; nextCursor: string | null }>();
    expect(second.items.map((i) => i.id)).toEqual([ids[0]]);
    expect(second.nextCursor).toBeNull();

    const byEntitlement = await app.inject({ method: 'GET', url: `${PATH}?employeeId=${subject}&entitlementId=${ENT.d}`, headers: auth(readerToken) });
    expect(byEntitlement.json<{ items: RequestView[] }>().items.map((i) => i.id)).toEqual([ids[1]]);
    const approved = await app.inject({ method: 'GET', url: `${PATH}?employeeId=${subject}&status=approved`, headers: auth(readerToken) });
    expect(approved.json<{ items: RequestView[] }>().items).toEqual([]);
    // Birthright requests only when asked for.
    const holder = await person();
    await holds(holder, ENT.b);
    const plain = await app.inject({ method: 'GET', url: `${PATH}?employeeId=${holder}`, headers: auth(readerToken) });
    expect(plain.json<{ items: RequestView[] }>().items).toEqual([]);
    const birthright = await app.inject({ method: 'GET', url: `${PATH}?employeeId=${holder}&kind=birthright`, headers: auth(readerToken) });
    expect(birthright.json<{ items: RequestView[] }>().items).toMatchObject([{ kind: 'birthright', requestStatus: 'auto_approved', grantStatus: 'active', revocationStatus: null }]);
  });

  it('refuses a cursor it did not write, and bad filters, naming the field', async () => {
    const forged = Buffer.from(JSON.stringify(['2026-13-45T00:00:00.000000Z', randomUUID()])).toString('base64url');
    for (const [query, field] of [
      ['cursor=not*base64', 'cursor'],
      [`cursor=${forged}`, 'cursor'],
      ['cursor=e30', 'cursor'],
      ['limit=0', 'limit'],
      ['limit=201', 'limit'],
      ['status=done', 'status'],
      ['employeeId=has%20space', 'employeeId'],
    ] as const) {
      const response = await app.inject({ method: 'GET', url: `${PATH}?${query}`, headers: auth(readerToken) });
      expect(response.statusCode, query).toBe(400);
      expect(response.json<{ errors: Array<{ field: string }> }>().errors.map((e) => e.field), query).toEqual([field]);
    }
  });

  it('shows a token bound to a person only the requests that person is subject, requester or approver of', async () => {
    const mine = await app.inject({ method: 'GET', url: `${PATH}?limit=200`, headers: auth(e1Token) });
    expect(mine.statusCode).toBe(200);
    const items = mine.json<{ items: RequestView[] }>().items;
    expect(items.length).toBeGreaterThan(0);
    for (const item of items) expect(item.employeeId === e1 || item.requestedBy === e1).toBe(true);
    // Filters cannot widen it.
    const theirs = await app.inject({ method: 'GET', url: `${PATH}?employeeId=${subject}`, headers: auth(e1Token) });
    expect(theirs.json<{ items: RequestView[] }>().items).toEqual([]);
    const one = await app.inject({ method: 'GET', url: `${PATH}/${ids[0]}`, headers: auth(e1Token) });
    expect(one.statusCode).toBe(404);

    // The approver sees what awaits them, with who decides each stage.
    await db.insert(approvals).values({ requestId: ids[0]!, stage: 1, role: 'manager', approver: manager, dueAt: new Date(Date.now() + 86_400_000) });
    const asApprover = await app.inject({ method: 'GET', url: `${PATH}?awaiting=${manager}`, headers: auth(managerApprover) });
    expect(asApprover.json<{ items: RequestView[] }>().items.map((i) => i.id)).toEqual([ids[0]]);
    const byReader = await app.inject({ method: 'GET', url: `${PATH}?approver=${manager}&employeeId=${subject}`, headers: auth(readerToken) });
    expect(byReader.json<{ items: RequestView[] }>().items.map((i) => i.id)).toEqual([ids[0]]);
    const view = (await app.inject({ method: 'GET', url: `${PATH}/${ids[0]}`, headers: auth(managerApprover) })).json<RequestView>();
    expect(view.approvals).toMatchObject([{ stage: 1, role: 'manager', approver: manager, decision: null, decidedBy: null }]);

    // A token bound to nobody without identities:read sees nothing.
    expect((await app.inject({ method: 'GET', url: PATH, headers: auth(writerUnbound) })).statusCode).toBe(403);
  });

  it('answers 400 naming id for a bad uuid, 404 for an unknown one', async () => {
    const bad = await app.inject({ method: 'GET', url: `${PATH}/not-a-uuid`, headers: auth(readerToken) });
    expect(bad.statusCode).toBe(400);
    expect(bad.json<{ errors: Array<{ field: string }> }>().errors.map((e) => e.field)).toEqual(['id']);
    const unknown = await app.inject({ method: 'GET', url: `${PATH}/${randomUUID()}`, headers: auth(readerToken) });
    expect(unknown.statusCode).toBe(404);
  });

  it('decides only as a bound approver, on an open stage, mapping what the workflow refuses', async () => {
    const unbound = (await createApiToken(db, { name: uniqueName('approver'), scopes: ['requests:approve'] })).token;
    const asUnbound = await app.inject({ method: 'POST', url: `${PATH}/${ids[0]}/decision`, headers: auth(unbound), payload: { decision: 'approve' } });
    expect(asUnbound.statusCode).toBe(403);
    expect(asUnbound.json<{ detail: string }>().detail).toBe('a decision needs a token bound to a person');

    const badComment = await app.inject({ method: 'POST', url: `${PATH}/${ids[0]}/decision`, headers: auth(managerApprover), payload: { decision: 'approve', comment: 'ok\u0000' } });
    expect(badComment.statusCode).toBe(400);
    expect(badComment.json<{ errors: Array<{ field: string }> }>().errors.map((e) => e.field)).toEqual(['comment']);

    // No approval stage opened (no worker runs here): nothing awaits a decision.
    const admin = (await createApiToken(db, { name: uniqueName('approver-admin'), scopes: ['admin'], employeeId: manager })).token;
    const noStage = await app.inject({ method: 'POST', url: `${PATH}/${ids[1]}/decision`, headers: auth(admin), payload: { decision: 'approve' } });
    expect(noStage.statusCode).toBe(409);
    // A stage recorded open whose approval workflow is not running: closed, as the workflow layer says.
    const closed = await app.inject({ method: 'POST', url: `${PATH}/${ids[0]}/decision`, headers: auth(managerApprover), payload: { decision: 'deny', comment: 'Not needed' } });
    expect(closed.statusCode, closed.body).toBe(409);
    expect(closed.json()).toMatchObject({ reason: 'stage_closed' });
    // Someone the request does not concern cannot learn it exists.
    const stranger = (await createApiToken(db, { name: uniqueName('stranger'), scopes: ['requests:approve'], employeeId: await person() })).token;
    expect((await app.inject({ method: 'POST', url: `${PATH}/${ids[0]}/decision`, headers: auth(stranger), payload: { decision: 'approve' } })).statusCode).toBe(404);
  });

  it('lets only the requester or an admin withdraw', async () => {
    // The subject's own token: the request was made by an admin for them.
    const subjectToken = (await createApiToken(db, { name: uniqueName('subject'), scopes: ['requests:write'], employeeId: subject })).token;
    const notRequester = await app.inject({ method: 'DELETE', url: `${PATH}/${ids[2]}`, headers: auth(subjectToken) });
    expect(notRequester.statusCode).toBe(403);
    expect((await app.inject({ method: 'DELETE', url: `${PATH}/${ids[2]}`, headers: auth(e1Token) })).statusCode).toBe(404);
    expect((await app.inject({ method: 'DELETE', url: `${PATH}/${ids[2]}`, headers: auth(writerUnbound) })).statusCode).toBe(403);
    expect((await app.inject({ method: 'DELETE', url: `${PATH}/${ids[2]}`, headers: auth(readerToken) })).statusCode).toBe(403);
  });
});

describe('the door', () => {
  it('checks the token before it reads the body', async () => {
    const malformed = await app.inject({ method: 'POST', url: PATH, headers: { 'content-type': 'application/json' }, payload: '{"entitlementId": ' });
    expect(malformed.statusCode).toBe(401);
    const huge = await app.inject({ method: 'POST', url: PATH, headers: { 'content-type': 'application/json' }, payload: `{"justification":"${'x'.repeat(2 * 1024 * 1024)}"}` });
    expect(huge.statusCode).toBe(401);
    const decision = await app.inject({ method: 'POST', url: `${PATH}/${randomUUID()}/decision`, headers: { 'content-type': 'application/json' }, payload: '[' });
    expect(decision.statusCode).toBe(401);
    // The wrong scope is a 403, still before the body.
    const reader = await app.inject({ method: 'POST', url: PATH, headers: { ...auth(readerToken), 'content-type': 'application/json' }, payload: '{' });
    expect(reader.statusCode).toBe(403);
  });
});
