// The access-request API at the HTTP level: asking (201 with the three statuses side by
// side, Location, the workflow started), idempotency, every policy refusal as a 422 that
// names its rule and field and records nothing, who may ask for whom, who sees what, lists
// with cursors, and the doors (bad ids, auth before the body). A real Temporal client with a
// task queue no worker polls: workflows start and wait, which is what these checks need.
import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approvals } from '../../db/schema.js';
import type { RequestView } from '../../domain/request-view.js';
import type { IdentityStatus } from '../../domain/types.js';
import { startRequestWorkflow, submitAccessRequest } from '../../services/access-requests.js';
import { uniqueEmployeeId, uniqueName } from '../support/env.js';
import {
  auth,
  callerTokens,
  configWith,
  createdView,
  errorFields,
  expectAsksForOwnPersonOnly,
  expectBadIdempotencyKeys,
  expectFieldErrors,
  expectKeyReuseRefused,
  expectNoWorkflow,
  expectOneUnderRacingKey,
  expectPolicyRefusals,
  expectQueryErrors,
  expectReadBack,
  expectReplayAnswered,
  expectTokenBeforeBody,
  expectWorkflowStarted,
  groupEntitlement,
  holds,
  insertPerson,
  startRequestsApi,
  tokenOf,
  type CallerTokens,
  type RequestsApi,
} from '../support/requests-api.js';

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

let api: RequestsApi;
let tokens: CallerTokens;
let db: RequestsApi['db'];
let app: FastifyInstance;
let temporal: Client;

let manager: string;
let e1: string;
let e1Token: string;
let adminName: string;
let adminToken: string;
let readerToken: string;
let writerUnbound: string;
let managerApprover: string;

async function person(options: { status?: IdentityStatus; managerId?: string | null; id?: string } = {}): Promise<string> {
  const managerId = options.managerId === undefined ? manager : options.managerId;
  return insertPerson(db, options.id ?? uniqueEmployeeId('AR'), managerId ? { managerId } : {}, options.status);
}

const ask = (token: string, body: Record<string, unknown>, headers: Record<string, string> = {}) => api.post(token, body, headers);

beforeAll(async () => {
  const entitlement = (id: string, extra: Record<string, unknown> = {}) => groupEntitlement(id, { requestable: true, ...extra });
  api = await startRequestsApi({
    kind: 'requested',
    path: PATH,
    workflow: { type: 'accessRequest', idOf: (id) => `access-request:${id}` },
    config: configWith(
      [
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
      { sod: [{ name: `${base}-sod-rule`, conflicting: [ENT.held, ENT.conflicting] }] },
    ),
    entitlementPrefix: base,
    name: 'access-requests-api',
  });
  ({ db, app, temporal } = api);

  manager = await person({ managerId: null });
  e1 = await person();
  managerApprover = await tokenOf(db, 'm1', ['requests:approve'], manager);
  tokens = await callerTokens(db, 'requests:write', e1);
  ({ bound: e1Token, adminName, admin: adminToken, reader: readerToken, unbound: writerUnbound } = tokens);
});

afterAll(async () => {
  await api?.stop();
});

describe('asking for access', () => {
  it('records the request, answers 201 with Location and three statuses side by side, and starts its workflow', async () => {
    const view = createdView<RequestView>(api, await ask(e1Token, { entitlementId: ENT.a, justification: 'Quarter-end close needs the ledger group', duration: '8h' }));
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

    await expectWorkflowStarted(api, view.id);
    await expectReadBack(api, readerToken, view);
  });

  it('is idempotent by Idempotency-Key: a replay answers 200 with the same request, another body under the key is a 422', async () => {
    const subject = await person();
    const token = await tokenOf(db, 'idem', ['requests:write'], subject);
    const key = `key-${randomUUID()}`;
    const body = { entitlementId: ENT.b, justification: 'On-call rotation' };
    const first = await ask(token, body, { 'idempotency-key': key });
    expect(first.statusCode, first.body).toBe(201);
    await expectReplayAnswered(api, token, body, key, first);

    await expectKeyReuseRefused(api, token, subject, { ...body, justification: 'Something else' }, key);

    // At the same moment: one request, whatever the race (requests for one person take turns).
    await expectOneUnderRacingKey(api, token, { entitlementId: ENT.c, justification: 'Raced' });
    const otherKeys = await Promise.all([0, 1].map(() => ask(token, { entitlementId: ENT.d, justification: 'Raced apart' })));
    expect(otherKeys.map((r) => r.statusCode).sort()).toEqual([201, 422]);
    expect(otherKeys.find((r) => r.statusCode === 422)!.json()).toMatchObject({ rule: 'already_pending' });

    await expectBadIdempotencyKeys(api, token, body, ['', 'has space', 'x'.repeat(256), 'naïve']);
  });

  it('refuses each policy rule with a 422 naming the rule and the field, and records nothing', async () => {
    const terminated = await person({ status: 'terminated' });
    const managerless = await person({ managerId: null });
    const ownManagerId = uniqueEmployeeId('AR');
    const ownManager = await person({ id: ownManagerId, managerId: ownManagerId });
    const holder = await person();
    await holds(db, holder, ENT.b);
    const pendingOne = await person();
    expect((await ask(adminToken, { employeeId: pendingOne, entitlementId: ENT.c, justification: 'First ask' })).statusCode).toBe(201);

    await expectPolicyRefusals(api, adminToken, `api:${adminName}`, { type: 'urn:jml:problem:access-policy', title: 'Access request refused' }, [
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
    ]);
  });

  it('refuses a separation-of-duties conflict with what the person holds: 422 sod_conflict naming the conflict, nothing recorded', async () => {
    const subject = await person();
    await holds(db, subject, ENT.held);
    const token = await tokenOf(db, 'sod', ['requests:write'], subject);
    const before = await api.recorded(subject, subject);
    const response = await ask(token, { entitlementId: ENT.conflicting, justification: 'Need both' });
    expect(response.statusCode).toBe(422);
    expect(response.json()).toMatchObject({
      rule: 'sod_conflict',
      field: 'entitlementId',
      conflict: { rule: `${base}-sod-rule`, entitlementId: ENT.held, source: 'held' },
    });
    expect(await api.recorded(subject, subject)).toEqual(before);
  });

  it('lets a bound token ask only for its person; admin asks for anyone; a token bound to nobody needs admin and an employeeId', async () => {
    // Its own ask is for another entitlement than the others: ENT.d would be pending for e1 by then.
    await expectAsksForOwnPersonOnly(api, tokens, { self: e1, other: await person() }, { self: ENT.e, other: ENT.d });
  });

  it('names bad fields with a 400: the duration, unknown keys', async () => {
    await expectFieldErrors(api, e1Token, [
      [{ entitlementId: ENT.d, justification: 'Why', duration: 'eight hours' }, 'duration'],
      [{ entitlementId: ENT.d, justification: 'Why', duration: ' 8h' }, 'duration'],
      [{ entitlementId: ENT.d, justification: 'Why', durations: '8h' }, '(body)'],
      [{ entitlementId: ENT.d }, 'justification'],
    ]);
  });

  it('records a request while Temporal is away, and starts its workflow when the request is retried', async () => {
    const subject = await person();
    const input = { employeeId: subject, entitlementId: ENT.a, justification: 'Temporal is down', requestedBy: subject, requestedByEmployeeId: subject, idempotencyKey: `test:${randomUUID()}` };
    const { config, taskQueue } = api;
    const result = await submitAccessRequest({ db, config, taskQueue }, input);
    if (!('requestId' in result)) throw new Error(`refused: ${JSON.stringify(result)}`);
    expect(result.created).toBe(true);
    api.started.push(result.requestId);
    await expectNoWorkflow(api, result.requestId);

    // The client retries (same key) once Temporal is back: the same request, its workflow now started.
    expect(await submitAccessRequest({ db, config, taskQueue, temporal }, input)).toEqual({ created: false, requestId: result.requestId });
    await expectWorkflowStarted(api, result.requestId);
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
    await holds(db, holder, ENT.b);
    const plain = await app.inject({ method: 'GET', url: `${PATH}?employeeId=${holder}`, headers: auth(readerToken) });
    expect(plain.json<{ items: RequestView[] }>().items).toEqual([]);
    const birthright = await app.inject({ method: 'GET', url: `${PATH}?employeeId=${holder}&kind=birthright`, headers: auth(readerToken) });
    expect(birthright.json<{ items: RequestView[] }>().items).toMatchObject([{ kind: 'birthright', requestStatus: 'auto_approved', grantStatus: 'active', revocationStatus: null }]);
  });

  it('refuses a cursor it did not write, and bad filters, naming the field', async () => {
    const forged = Buffer.from(JSON.stringify(['2026-13-45T00:00:00.000000Z', randomUUID()])).toString('base64url');
    await expectQueryErrors(api, readerToken, [
      ['cursor=not*base64', 'cursor'],
      [`cursor=${forged}`, 'cursor'],
      ['cursor=e30', 'cursor'],
      ['limit=0', 'limit'],
      ['limit=201', 'limit'],
      ['status=done', 'status'],
      ['employeeId=has%20space', 'employeeId'],
    ]);
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
    expect(errorFields(bad)).toEqual(['id']);
    const unknown = await app.inject({ method: 'GET', url: `${PATH}/${randomUUID()}`, headers: auth(readerToken) });
    expect(unknown.statusCode).toBe(404);
  });

  it('decides only as a bound approver, on an open stage, mapping what the workflow refuses', async () => {
    const unbound = await tokenOf(db, 'approver', ['requests:approve']);
    const asUnbound = await app.inject({ method: 'POST', url: `${PATH}/${ids[0]}/decision`, headers: auth(unbound), payload: { decision: 'approve' } });
    expect(asUnbound.statusCode).toBe(403);
    expect(asUnbound.json<{ detail: string }>().detail).toBe('a decision needs a token bound to a person');

    const badComment = await app.inject({ method: 'POST', url: `${PATH}/${ids[0]}/decision`, headers: auth(managerApprover), payload: { decision: 'approve', comment: 'ok\u0000' } });
    expect(badComment.statusCode).toBe(400);
    expect(errorFields(badComment)).toEqual(['comment']);

    // No approval stage opened (no worker runs here): nothing awaits a decision.
    const admin = await tokenOf(db, 'approver-admin', ['admin'], manager);
    const noStage = await app.inject({ method: 'POST', url: `${PATH}/${ids[1]}/decision`, headers: auth(admin), payload: { decision: 'approve' } });
    expect(noStage.statusCode).toBe(409);
    // A stage recorded open whose approval workflow is not running: closed, as the workflow layer says.
    const closed = await app.inject({ method: 'POST', url: `${PATH}/${ids[0]}/decision`, headers: auth(managerApprover), payload: { decision: 'deny', comment: 'Not needed' } });
    expect(closed.statusCode, closed.body).toBe(409);
    expect(closed.json()).toMatchObject({ reason: 'stage_closed' });
    // Someone the request does not concern cannot learn it exists.
    const stranger = await tokenOf(db, 'stranger', ['requests:approve'], await person());
    expect((await app.inject({ method: 'POST', url: `${PATH}/${ids[0]}/decision`, headers: auth(stranger), payload: { decision: 'approve' } })).statusCode).toBe(404);
  });

  it('lets only the requester or an admin withdraw', async () => {
    // The subject's own token: the request was made by an admin for them.
    const subjectToken = await tokenOf(db, 'subject', ['requests:write'], subject);
    const notRequester = await app.inject({ method: 'DELETE', url: `${PATH}/${ids[2]}`, headers: auth(subjectToken) });
    expect(notRequester.statusCode).toBe(403);
    expect((await app.inject({ method: 'DELETE', url: `${PATH}/${ids[2]}`, headers: auth(e1Token) })).statusCode).toBe(404);
    expect((await app.inject({ method: 'DELETE', url: `${PATH}/${ids[2]}`, headers: auth(writerUnbound) })).statusCode).toBe(403);
    expect((await app.inject({ method: 'DELETE', url: `${PATH}/${ids[2]}`, headers: auth(readerToken) })).statusCode).toBe(403);
  });
});

describe('the door', () => {
  it('checks the token before it reads the body', async () => {
    await expectTokenBeforeBody(api);
    const decision = await app.inject({ method: 'POST', url: `${PATH}/${randomUUID()}/decision`, headers: { 'content-type': 'application/json' }, payload: '[' });
    expect(decision.statusCode).toBe(401);
    // The wrong scope is a 403, still before the body.
    const reader = await app.inject({ method: 'POST', url: PATH, headers: { ...auth(readerToken), 'content-type': 'application/json' }, payload: '{' });
    expect(reader.statusCode).toBe(403);
  });
});
