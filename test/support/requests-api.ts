// What the request API tests share (test/integration/access-requests-api.test.ts and
// jit-api.test.ts): the real app over the run's Postgres and Redis, with a real Temporal client
// on a task queue no worker polls (workflows start and wait, which is what checks at the HTTP
// level need); the tokens of each kind of caller; people, grants and counts seeded or read
// straight in Postgres; and the checks both APIs answer alike. An elevation is an access
// request of kind `jit`, so one setup serves both: each file names its kind's route and workflow.
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import type { Queue } from 'bullmq';
import { and, count, eq, or, sql } from 'drizzle-orm';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { expect } from 'vitest';
import { buildApp } from '../../api/app.js';
import { createApiToken } from '../../api/auth.js';
import { createMetricsRegistry } from '../../api/metrics.js';
import { createDb, type DbHandle } from '../../db/client.js';
import { syncEntitlements } from '../../db/entitlements.js';
import { accessRequests, auditLog, grants, identities } from '../../db/schema.js';
import type { JmlConfig } from '../../domain/config.js';
import type { IdentityAttributes, IdentityStatus, Scope } from '../../domain/types.js';
import { createHrEventQueue, type HrEventJob } from '../../services/hr-event-queue.js';
import { redisConnection } from '../../services/redis.js';
import { testConfig } from './config.js';
import { testEnv, uniqueName } from './env.js';

type Db = DbHandle['db'];
type Body = Record<string, unknown>;

export const auth = (token: string) => ({ authorization: `Bearer ${token}` });

/** The fields a 400 names, in order. */
export const errorFields = (response: LightMyRequestResponse): string[] => response.json<{ errors: Array<{ field: string }> }>().errors.map((e) => e.field);

/** A group in the run's slapd as an entitlement; `extra` adds requestable, jit, owner and the like. */
export const groupEntitlement = (id: string, extra: Body = {}): Body => ({ id, target: 'directory', kind: 'group', ref: `cn=${id},${testEnv.ldap.groupsDN}`, ...extra });

/** The tests' config with a file's own entitlements beside the shared ones. */
export function configWith(entitlements: Body[], overrides: Body = {}): JmlConfig {
  return testConfig(testEnv.ldap, { entitlements: [...testConfig(testEnv.ldap).entitlements, ...entitlements], ...overrides });
}

export interface RequestsApiOptions {
  /** The kind the API under test records: `recorded` counts its rows. */
  kind: 'requested' | 'jit';
  /** Where one is recorded (POST) and read (GET `path/:id`). */
  path: string;
  /** Its workflow, spelled out here rather than taken from the code under test. */
  workflow: { type: string; idOf: (requestId: string) => string };
  config: JmlConfig;
  /** The file's own entitlements start with it: only those are synced, since other files share the database. */
  entitlementPrefix: string;
  /** Names the task queue and the Redis prefix. */
  name: string;
}

export interface RequestsApi extends RequestsApiOptions {
  db: Db;
  app: FastifyInstance;
  temporal: Client;
  taskQueue: string;
  /** Requests whose workflows this file started: stop() ends them. */
  started: string[];
  /** POSTs to `path` as `token`; a 201 is remembered in `started`. */
  post(token: string, body: Body, headers?: Record<string, string>): Promise<LightMyRequestResponse>;
  /**
   * What a submission about `employeeId` by `actor` would have written: rows of this kind for
   * the subject, and audit rows by the actor or about the subject. Both are this file's own
   * (unique names), so rows other files write at the same time do not count.
   */
  recorded(employeeId: string, actor: string): Promise<{ requests: number; audit: number }>;
  /** Ends the started workflows, then closes the app, the queue, the Temporal connection and the pool. */
  stop(): Promise<void>;
}

export async function startRequestsApi(options: RequestsApiOptions): Promise<RequestsApi> {
  const taskQueue = uniqueName(options.name);
  const handle = createDb(testEnv.databaseUrl, { max: 4 });
  const db = handle.db;
  const { config } = options;
  await syncEntitlements(db, { ...config, entitlements: config.entitlements.filter((e) => e.id.startsWith(options.entitlementPrefix)), birthright: [] });
  const queue: Queue<HrEventJob> = createHrEventQueue(redisConnection(testEnv.redisUrl, 'producer'), `${testEnv.redisPrefix}:${uniqueName(options.name)}`);
  const connection = await Connection.connect({ address: testEnv.temporalAddress });
  const temporal = new Client({ connection });
  const app = await buildApp({
    db,
    hrEventQueue: queue,
    webhookSecrets: [],
    config,
    temporal,
    taskQueue,
    publicUrl: 'https://jml.test',
    // Test double: the health probes are not what these tests look at.
    health: { redis: async () => {}, temporal: async () => {} },
    logger: false,
    metrics: createMetricsRegistry({ defaultMetrics: false }),
  });
  const started: string[] = [];
  return {
    ...options,
    db,
    app,
    temporal,
    taskQueue,
    started,
    async post(token, body, headers = {}) {
      const response = await app.inject({ method: 'POST', url: options.path, headers: { ...auth(token), ...headers }, payload: body });
      if (response.statusCode === 201) started.push(response.json<{ id: string }>().id);
      return response;
    },
    async recorded(employeeId, actor) {
      const [requests] = await db
        .select({ n: count() })
        .from(accessRequests)
        .innerJoin(identities, eq(identities.id, accessRequests.identityId))
        .where(and(eq(identities.employeeId, employeeId), eq(accessRequests.kind, options.kind)));
      const [audit] = await db
        .select({ n: count() })
        .from(auditLog)
        .where(or(eq(auditLog.actor, actor), sql`${auditLog.after}->>'employeeId' = ${employeeId}`));
      return { requests: requests!.n, audit: audit!.n };
    },
    async stop() {
      for (const id of started) {
        await temporal.workflow
          .getHandle(options.workflow.idOf(id))
          .terminate('test over')
          .catch(() => undefined);
      }
      await app.close();
      await queue.close();
      await connection.close();
      await handle.close();
    },
  };
}

export interface CallerTokens {
  /** The requester scope, bound to the person (in lower case: the binding is stored canonical). */
  bound: string;
  adminName: string;
  admin: string;
  /** identities:read, bound to nobody. */
  reader: string;
  /** The requester scope, bound to nobody: it may ask for no one (that needs admin). */
  unbound: string;
}

/** A new token (named `name` and a unique suffix) with these scopes, bound to the person if one is given. */
export async function tokenOf(db: Db, name: string, scopes: Scope[], employeeId?: string): Promise<string> {
  return (await createApiToken(db, { name: uniqueName(name), scopes, ...(employeeId !== undefined ? { employeeId } : {}) })).token;
}

/** A token for each kind of caller, `requesterScope` being the scope that asks (requests:write, jit:request). */
export async function callerTokens(db: Db, requesterScope: Scope, boundTo: string): Promise<CallerTokens> {
  // Named exactly: a request an admin token bound to nobody makes is recorded as by `api:<its name>`.
  const adminName = uniqueName('admin');
  return {
    bound: await tokenOf(db, 'bound', [requesterScope], boundTo.toLowerCase()),
    adminName,
    admin: (await createApiToken(db, { name: adminName, scopes: ['admin'] })).token,
    reader: await tokenOf(db, 'reader', ['identities:read']),
    unbound: await tokenOf(db, 'unbound', [requesterScope]),
  };
}

/** A person in Postgres only (no lifecycle, no directory account): what the API checks against. */
export async function insertPerson(db: Db, employeeId: string, attributes: IdentityAttributes, status: IdentityStatus = 'active'): Promise<string> {
  await db.insert(identities).values({ employeeId, status, attributes });
  return employeeId;
}

export async function identityIdOf(db: Db, employeeId: string): Promise<string> {
  const [row] = await db.select({ id: identities.id }).from(identities).where(eq(identities.employeeId, employeeId));
  if (!row) throw new Error(`no identity ${employeeId}`);
  return row.id;
}

/** A grant the person holds (with the birthright request it belongs to). */
export async function holds(db: Db, employeeId: string, entitlementId: string): Promise<void> {
  const identityId = await identityIdOf(db, employeeId);
  const [request] = await db
    .insert(accessRequests)
    .values({ idempotencyKey: `seed:${randomUUID()}`, identityId, entitlementId, kind: 'birthright', status: 'auto_approved', requestedBy: 'engine' })
    .returning({ id: accessRequests.id });
  await db.insert(grants).values({ identityId, entitlementId, requestId: request!.id, status: 'active', verifiedAt: new Date() });
}

export async function workflowStartedAt(db: Db, requestId: string): Promise<Date | null> {
  const [row] = await db.select({ at: accessRequests.workflowStartedAt }).from(accessRequests).where(eq(accessRequests.id, requestId));
  return row!.at;
}

/** A 201 whose Location is the URL of what it recorded; returns the view it answered. */
export function createdView<View extends { id: string }>(api: RequestsApi, response: LightMyRequestResponse): View {
  expect(response.statusCode, response.body).toBe(201);
  const view = response.json<View>();
  expect(response.headers.location).toBe(`https://jml.test${api.path}/${view.id}`);
  return view;
}

/** Read back by its id (as `token`), the request is what its submission answered. */
export async function expectReadBack(api: RequestsApi, token: string, view: { id: string }): Promise<void> {
  const again = await api.app.inject({ method: 'GET', url: `${api.path}/${view.id}`, headers: auth(token) });
  expect(again.statusCode).toBe(200);
  expect(again.json()).toEqual(view);
}

/** The request's workflow runs (and waits: no worker polls the queue), of its type, on the API's queue, its start recorded. */
export async function expectWorkflowStarted(api: RequestsApi, requestId: string): Promise<void> {
  const description = await api.temporal.workflow.getHandle(api.workflow.idOf(requestId)).describe();
  expect(description.status.name).toBe('RUNNING');
  expect(description.type).toBe(api.workflow.type);
  expect(description.taskQueue).toBe(api.taskQueue);
  expect(await workflowStartedAt(api.db, requestId)).toBeInstanceOf(Date);
}

/** The request is recorded, but no workflow was started for it (Temporal was away). */
export async function expectNoWorkflow(api: RequestsApi, requestId: string): Promise<void> {
  expect(await workflowStartedAt(api.db, requestId)).toBeNull();
  await expect(api.temporal.workflow.getHandle(api.workflow.idOf(requestId)).describe()).rejects.toThrow();
}

/** Each case is refused with a 422 problem of `problem` naming its rule and field, and records nothing. */
export async function expectPolicyRefusals(
  api: RequestsApi,
  token: string,
  actor: string,
  problem: { type: string; title: string },
  cases: Array<{ rule: string; field: string; body: Body }>,
): Promise<void> {
  for (const { rule, field, body } of cases) {
    const subject = body.employeeId as string;
    const before = await api.recorded(subject, actor);
    const response = await api.post(token, body);
    expect(response.statusCode, `${rule}: ${response.body}`).toBe(422);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(response.json(), rule).toMatchObject({ ...problem, status: 422, rule, field });
    expect(response.json<{ detail: string }>().detail.length, rule).toBeGreaterThan(0);
    expect(await api.recorded(subject, actor), rule).toEqual(before);
  }
}

/** Each key is a 400 naming the Idempotency-Key header. */
export async function expectBadIdempotencyKeys(api: RequestsApi, token: string, body: Body, keys: string[]): Promise<void> {
  for (const bad of keys) {
    const response = await api.app.inject({ method: 'POST', url: api.path, headers: { ...auth(token), 'idempotency-key': bad }, payload: body });
    expect(response.statusCode, JSON.stringify(bad)).toBe(400);
    expect(errorFields(response)).toEqual(['Idempotency-Key']);
  }
}

/** Each body is a 400 whose errors name the field. */
export async function expectFieldErrors(api: RequestsApi, token: string, cases: ReadonlyArray<readonly [Body, string]>): Promise<void> {
  for (const [body, field] of cases) {
    const response = await api.post(token, body);
    expect(response.statusCode, JSON.stringify(body)).toBe(400);
    expect(JSON.stringify(response.json<{ errors: unknown[] }>().errors), JSON.stringify(body)).toContain(field);
  }
}

/** Each list query (GET `path?query` as `token`) is a 400 naming just its field. */
export async function expectQueryErrors(api: RequestsApi, token: string, cases: ReadonlyArray<readonly [string, string]>): Promise<void> {
  for (const [query, field] of cases) {
    const response = await api.app.inject({ method: 'GET', url: `${api.path}?${query}`, headers: auth(token) });
    expect(response.statusCode, query).toBe(400);
    expect(errorFields(response), query).toEqual([field]);
  }
}

/** Without a token, a malformed body and one far over the size limit are both 401s: the token is checked before the body is read. */
export async function expectTokenBeforeBody(api: RequestsApi): Promise<void> {
  const malformed = await api.app.inject({ method: 'POST', url: api.path, headers: { 'content-type': 'application/json' }, payload: '{"entitlementId": ' });
  expect(malformed.statusCode).toBe(401);
  const huge = await api.app.inject({ method: 'POST', url: api.path, headers: { 'content-type': 'application/json' }, payload: `{"justification":"${'x'.repeat(2 * 1024 * 1024)}"}` });
  expect(huge.statusCode).toBe(401);
}

/** The same body again under the key of `first` (a 201): answered 200 with what `first` recorded, at its Location. */
export async function expectReplayAnswered(api: RequestsApi, token: string, body: Body, key: string, first: LightMyRequestResponse): Promise<void> {
  const replay = await api.post(token, body, { 'idempotency-key': key });
  expect(replay.statusCode).toBe(200);
  expect(replay.json<{ id: string }>().id).toBe(first.json<{ id: string }>().id);
  expect(replay.headers.location).toBe(first.headers.location);
}

/** Another body under a key already used is a 422 that records nothing. */
export async function expectKeyReuseRefused(api: RequestsApi, token: string, subject: string, body: Body, key: string): Promise<void> {
  const before = await api.recorded(subject, subject);
  const reused = await api.post(token, body, { 'idempotency-key': key });
  expect(reused.statusCode).toBe(422);
  expect(reused.json()).toMatchObject({ type: 'urn:jml:problem:idempotency-key-reuse', detail: 'idempotency key reused with a different request' });
  expect(await api.recorded(subject, subject)).toEqual(before);
}

/** Three submissions at the same moment under one fresh key: one is recorded (201), the others answer it (200). */
export async function expectOneUnderRacingKey(api: RequestsApi, token: string, body: Body): Promise<void> {
  const key = `key-${randomUUID()}`;
  const racing = await Promise.all([0, 1, 2].map(() => api.post(token, body, { 'idempotency-key': key })));
  expect(racing.map((r) => r.statusCode).sort()).toEqual([200, 200, 201]);
  expect(new Set(racing.map((r) => r.json<{ id: string }>().id)).size).toBe(1);
}

/**
 * Who may ask for whom, the same for every kind (the routes' subjectFor): a bound token asks
 * for its own person only, in any spelling; a token bound to nobody needs admin; admin names
 * the employeeId, or is told to. `entitlements`: what `self` asks for, and what is asked for `other`.
 */
export async function expectAsksForOwnPersonOnly(
  api: RequestsApi,
  tokens: CallerTokens,
  people: { self: string; other: string },
  entitlements: { self: string; other: string },
): Promise<void> {
  const { self, other } = people;
  const forOther = await api.post(tokens.bound, { employeeId: other, entitlementId: entitlements.other, justification: 'For a colleague' });
  expect(forOther.statusCode).toBe(403);
  // Its own id in another spelling is still itself.
  const own = await api.post(tokens.bound, { employeeId: self.toLowerCase(), entitlementId: entitlements.self, justification: 'For me' });
  expect(own.statusCode, own.body).toBe(201);
  expect(own.json<{ employeeId: string }>().employeeId).toBe(self);

  expect((await api.post(tokens.unbound, { employeeId: other, entitlementId: entitlements.other, justification: 'Unbound' })).statusCode).toBe(403);
  const missing = await api.post(tokens.admin, { entitlementId: entitlements.other, justification: 'Nobody named' });
  expect(missing.statusCode).toBe(400);
  expect(errorFields(missing)).toEqual(['employeeId']);

  const byAdmin = await api.post(tokens.admin, { employeeId: other, entitlementId: entitlements.other, justification: 'Set up by IT' });
  expect(byAdmin.statusCode, byAdmin.body).toBe(201);
  expect(byAdmin.json()).toMatchObject({ employeeId: other, requestedBy: `api:${tokens.adminName}` });
}
