// The JIT elevation API at the HTTP level: elevating (201 with the three statuses, Location,
// the jitElevation workflow `jit:<id>` started), idempotency (one row and one workflow per
// key), every policy refusal as a 422 naming its rule and field and recording nothing, who
// may elevate whom, who sees what (a bound token its own), the fields of one elevation, the
// access-request list keeping elevations apart, the doors (auth before the body, ids of
// other kinds), and `jml elevate` / `jml elevations` run as a user would, against this API. A real Temporal client with a task queue no worker polls: workflows start and
// wait, which is what these checks need (the workflow itself is tested elsewhere).
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Client } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accessRequests, identities } from '../../db/schema.js';
import type { RequestView } from '../../domain/request-view.js';
import type { IdentityAttributes, IdentityStatus } from '../../domain/types.js';
import { submitElevation } from '../../services/jit.js';
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
  identityIdOf,
  insertPerson,
  startRequestsApi,
  tokenOf,
  type CallerTokens,
  type RequestsApi,
} from '../support/requests-api.js';

const PATH = '/api/v1/jit/elevations';

type Elevation = RequestView & { timeLeftMs: number | null };

// Entitlement ids of this file only: other files share the database.
const base = uniqueName('jit');
const ENT = {
  open: `${base}-open`,
  managed: `${base}-managed`,
  sre: `${base}-sre`,
  holdsBase: `${base}-holds`,
  base: `${base}-base`,
  ticketed: `${base}-ticketed`,
  cool: `${base}-cool`,
  glass: `${base}-glass`,
  closed: `${base}-closed`,
  requestable: `${base}-requestable`,
};
// Known before the config is parsed: the owner of the break-glass entitlement.
const managerId = uniqueEmployeeId('JM');

let api: RequestsApi;
let tokens: CallerTokens;
let db: RequestsApi['db'];
let app: FastifyInstance;
let temporal: Client;

let e1: string;
let e1Token: string;
let adminName: string;
let adminToken: string;
let readerToken: string;
let unboundRequester: string;

function person(options: { status?: IdentityStatus; attributes?: IdentityAttributes; id?: string } = {}): Promise<string> {
  return insertPerson(db, options.id ?? uniqueEmployeeId('JT'), { managerId, department: 'Engineering', ...options.attributes }, options.status);
}

/** An elevation row as the workflow leaves it (its workflow recorded as started, so nothing starts one). */
async function seedElevation(employeeId: string, entitlementId: string, values: Partial<typeof accessRequests.$inferInsert> = {}): Promise<string> {
  const [row] = await db
    .insert(accessRequests)
    .values({
      idempotencyKey: `seed:${randomUUID()}`,
      identityId: await identityIdOf(db, employeeId),
      entitlementId,
      kind: 'jit',
      status: 'approved',
      requestedBy: employeeId,
      justification: 'seeded',
      durationMs: 3_600_000,
      workflowStartedAt: new Date(),
      ...values,
    })
    .returning({ id: accessRequests.id });
  return row!.id;
}

const elevate = (token: string, body: Record<string, unknown>, headers: Record<string, string> = {}) => api.post(token, body, headers);

beforeAll(async () => {
  const entitlement = (id: string, jit?: Record<string, unknown>, extra: Record<string, unknown> = {}) => groupEntitlement(id, { ...(jit ? { jit } : {}), ...extra });
  const policy = (extra: Record<string, unknown> = {}) => ({ eligible: true, maxDuration: '1h', defaultDuration: '30m', approval: 'none', ...extra });
  api = await startRequestsApi({
    kind: 'jit',
    path: PATH,
    workflow: { type: 'jitElevation', idOf: (id) => `jit:${id}` },
    config: configWith([
      entitlement(ENT.open, policy()),
      entitlement(ENT.managed, policy({ approval: 'manager' })),
      entitlement(ENT.sre, policy({ eligible: { when: { department: 'SRE' } } })),
      entitlement(ENT.base),
      entitlement(ENT.holdsBase, policy({ eligible: { holds: [ENT.base] } })),
      entitlement(ENT.ticketed, policy({ ticketRequired: true, ticketPattern: '^CHG-[0-9]+$' })),
      entitlement(ENT.cool, policy({ cooldown: '1h' })),
      entitlement(ENT.glass, policy({ approval: 'manager', breakGlass: true }), { owner: managerId }),
      entitlement(ENT.closed, policy({ eligible: false })),
      entitlement(ENT.requestable, undefined, { requestable: true }),
    ]),
    entitlementPrefix: base,
    name: 'jit-api',
  });
  ({ db, app, temporal } = api);

  await db.insert(identities).values({ employeeId: managerId, status: 'active', attributes: {} });
  e1 = await person();
  tokens = await callerTokens(db, 'jit:request', e1);
  ({ bound: e1Token, adminName, admin: adminToken, reader: readerToken, unbound: unboundRequester } = tokens);
});

afterAll(async () => {
  await api?.stop();
});

describe('elevating', () => {
  it('records the elevation, answers 201 with Location and the three statuses, and starts its jitElevation workflow', async () => {
    const view = createdView<Elevation>(api, await elevate(e1Token, { entitlementId: ENT.open, duration: '45m', justification: 'Incident 4711: read the prod logs', ticket: 'INC-4711' }));
    expect(view).toMatchObject({
      employeeId: e1,
      entitlementId: ENT.open,
      kind: 'jit',
      requestedBy: e1,
      duration: '45m',
      requestStatus: 'pending_approval',
      grantStatus: null,
      revocationStatus: null,
      expiresAt: null,
      revokedAt: null,
      revocationLagMs: null,
      timeLeftMs: null,
      ticket: 'INC-4711',
      breakGlass: false,
      extensions: 0,
      approvals: [],
    });
    expect(view.timeline.map((t) => t.action)).toEqual(['access_request.submitted']);
    expect(view.timeline[0]!.detail).toMatchObject({ kind: 'jit', entitlementId: ENT.open, employeeId: e1, durationMs: 45 * 60_000, ticket: 'INC-4711', breakGlass: false, approvers: [] });
    // The justification stays in the row: not in the audit log.
    expect(JSON.stringify(view.timeline)).not.toContain('prod logs');

    await expectWorkflowStarted(api, view.id);
    await expectReadBack(api, e1Token, view);
  });

  it("takes the entitlement's default duration, names the approver the policy chose, and allows break-glass where the policy does", async () => {
    const subject = await person();
    const token = await tokenOf(db, 'defaults', ['jit:request'], subject);
    const byDefault = await elevate(token, { entitlementId: ENT.managed, justification: 'Deploy the hotfix' });
    expect(byDefault.statusCode, byDefault.body).toBe(201);
    expect(byDefault.json<Elevation>()).toMatchObject({ duration: '30m', breakGlass: false });
    expect(byDefault.json<Elevation>().timeline[0]!.detail).toMatchObject({ approvers: [managerId] });

    const glass = await elevate(token, { entitlementId: ENT.glass, justification: 'Production is down', breakGlass: true });
    expect(glass.statusCode, glass.body).toBe(201);
    expect(glass.json<Elevation>()).toMatchObject({ breakGlass: true, requestStatus: 'pending_approval' });
    expect(glass.json<Elevation>().timeline[0]!.detail).toMatchObject({ breakGlass: true, approvers: [] });
  });

  it('is idempotent by Idempotency-Key: one row and one workflow per key; another body under the key is a 422', async () => {
    const subject = await person();
    const token = await tokenOf(db, 'idem', ['jit:request'], subject);
    const key = `key-${randomUUID()}`;
    const body = { entitlementId: ENT.open, justification: 'On-call', duration: '20m' };
    const first = await elevate(token, body, { 'idempotency-key': key });
    expect(first.statusCode, first.body).toBe(201);
    const id = first.json<Elevation>().id;
    const run = await temporal.workflow.getHandle(`jit:${id}`).describe();
    await expectReplayAnswered(api, token, body, key, first);
    expect(await api.recorded(subject, subject)).toMatchObject({ requests: 1 });
    // The one workflow, still its first run.
    const after = await temporal.workflow.getHandle(`jit:${id}`).describe();
    expect({ status: after.status.name, runId: after.runId }).toEqual({ status: 'RUNNING', runId: run.runId });

    await expectKeyReuseRefused(api, token, subject, { ...body, duration: '25m' }, key);

    // At the same moment: one elevation, whatever the race.
    await expectOneUnderRacingKey(api, token, { entitlementId: ENT.open, justification: 'Raced' });

    // A key is the token's own, and apart from access requests' keys.
    const requestToken = await tokenOf(db, 'idem-req', ['requests:write'], subject);
    const asRequest = await app.inject({ method: 'POST', url: '/api/v1/access-requests', headers: { ...auth(requestToken), 'idempotency-key': key }, payload: { entitlementId: ENT.requestable, justification: 'Other door' } });
    expect(asRequest.statusCode, asRequest.body).toBe(201);
    await temporal.workflow
      .getHandle(`access-request:${asRequest.json<RequestView>().id}`)
      .terminate('test over')
      .catch(() => undefined);

    await expectBadIdempotencyKeys(api, token, body, ['', 'has space', 'x'.repeat(256)]);
  });

  it('records an elevation while Temporal is away, and a retry with the same key starts its one workflow', async () => {
    const subject = await person();
    const input = { employeeId: subject, entitlementId: ENT.open, justification: 'Temporal is down', requestedBy: subject, requestedByEmployeeId: subject, idempotencyKey: `jit:test:${randomUUID()}` };
    const { config, taskQueue } = api;
    const result = await submitElevation({ db, config, taskQueue }, input);
    if (!('requestId' in result)) throw new Error(`refused: ${JSON.stringify(result)}`);
    api.started.push(result.requestId);
    await expectNoWorkflow(api, result.requestId);

    expect(await submitElevation({ db, config, taskQueue, temporal }, input)).toEqual({ created: false, requestId: result.requestId });
    await expectWorkflowStarted(api, result.requestId);
  });

  it('refuses each policy rule with a 422 naming the rule and the field, and records nothing', async () => {
    const inactive = await person({ status: 'on_leave' });
    const cooling = await person();
    await seedElevation(cooling, ENT.cool, { revocationStatus: 'revoked', expiresAt: new Date(), revokedAt: new Date(), revocationLagMs: 0 });
    const sre = await person({ attributes: { department: 'sre' } });
    const holder = await person();
    await holds(db, holder, ENT.base);

    await expectPolicyRefusals(api, adminToken, `api:${adminName}`, { type: 'urn:jml:problem:jit-policy', title: 'Elevation refused' }, [
      { rule: 'not_eligible', field: 'entitlementId', body: { employeeId: e1, entitlementId: ENT.sre, justification: 'Why' } },
      { rule: 'not_eligible', field: 'entitlementId', body: { employeeId: e1, entitlementId: ENT.holdsBase, justification: 'Why' } },
      { rule: 'duration_too_long', field: 'duration', body: { employeeId: e1, entitlementId: ENT.open, justification: 'Why', duration: '2h' } },
      { rule: 'ticket_required', field: 'ticket', body: { employeeId: e1, entitlementId: ENT.ticketed, justification: 'Why' } },
      { rule: 'ticket_required', field: 'ticket', body: { employeeId: e1, entitlementId: ENT.ticketed, justification: 'Why', ticket: '   ' } },
      { rule: 'ticket_invalid', field: 'ticket', body: { employeeId: e1, entitlementId: ENT.ticketed, justification: 'Why', ticket: 'INC-12' } },
      { rule: 'cooldown', field: 'entitlementId', body: { employeeId: cooling, entitlementId: ENT.cool, justification: 'Again' } },
      { rule: 'break_glass_not_allowed', field: 'breakGlass', body: { employeeId: e1, entitlementId: ENT.open, justification: 'Why', breakGlass: true } },
      { rule: 'subject_not_active', field: 'employeeId', body: { employeeId: inactive, entitlementId: ENT.open, justification: 'Why' } },
      { rule: 'unknown_entitlement', field: 'entitlementId', body: { employeeId: e1, entitlementId: `${base}-nothing`, justification: 'Why' } },
      { rule: 'unknown_entitlement', field: 'entitlementId', body: { employeeId: e1, entitlementId: ENT.requestable, justification: 'Why' } },
      { rule: 'not_jit_eligible', field: 'entitlementId', body: { employeeId: e1, entitlementId: ENT.closed, justification: 'Why' } },
      { rule: 'unknown_subject', field: 'employeeId', body: { employeeId: uniqueEmployeeId('NOBODY'), entitlementId: ENT.open, justification: 'Why' } },
      { rule: 'justification_required', field: 'justification', body: { employeeId: e1, entitlementId: ENT.open, justification: ' ' } },
      { rule: 'duration_invalid', field: 'duration', body: { employeeId: e1, entitlementId: ENT.open, justification: 'Why', duration: '0' } },
    ]);

    // The same rules let the right people through: an SRE by attribute (any case), a holder by `holds`, a matching ticket.
    for (const body of [
      { employeeId: sre, entitlementId: ENT.sre, justification: 'SRE' },
      { employeeId: holder, entitlementId: ENT.holdsBase, justification: 'Holds the base' },
      { employeeId: e1, entitlementId: ENT.ticketed, justification: 'Change', ticket: 'CHG-42' },
    ]) {
      const response = await elevate(adminToken, body);
      expect(response.statusCode, `${body.entitlementId}: ${response.body}`).toBe(201);
    }
    // The cool-down counts from the last end: one that ended long enough ago does not refuse.
    const rested = await person();
    await seedElevation(rested, ENT.cool, { revocationStatus: 'revoked', expiresAt: new Date(Date.now() - 3 * 3_600_000), revokedAt: new Date(Date.now() - 2 * 3_600_000) });
    expect((await elevate(adminToken, { employeeId: rested, entitlementId: ENT.cool, justification: 'Rested' })).statusCode).toBe(201);
  });

  it('lets a bound token elevate only its person; admin elevates anyone; a token bound to nobody needs admin', async () => {
    // Overlapping elevations are allowed: one entitlement serves every ask.
    await expectAsksForOwnPersonOnly(api, tokens, { self: e1, other: await person() }, { self: ENT.open, other: ENT.open });
  });

  it('names bad fields with a 400: the duration, the types, unknown keys', async () => {
    await expectFieldErrors(api, e1Token, [
      [{ entitlementId: ENT.open, justification: 'Why', duration: 'half an hour' }, 'duration'],
      [{ entitlementId: ENT.open, justification: 'Why', breakGlass: 'yes' }, 'breakGlass'],
      [{ entitlementId: ENT.open, justification: 'Why', ticket: 42 }, 'ticket'],
      [{ entitlementId: ENT.open, justification: 'Why', reason: 'extra' }, '(body)'],
      [{ entitlementId: ENT.open }, 'justification'],
    ]);
  });
});

describe('reading elevations', () => {
  let subject: string;
  let subjectToken: string;
  let pending: string;
  let active: string;
  let ended: string;
  let askedBySubject: string;
  let requestId: string;

  beforeAll(async () => {
    subject = await person();
    subjectToken = await tokenOf(db, 'reader-subject', ['jit:request'], subject);
    const response = await elevate(subjectToken, { entitlementId: ENT.open, justification: 'Pending one' });
    expect(response.statusCode, response.body).toBe(201);
    pending = response.json<Elevation>().id;
    active = await seedElevation(subject, ENT.managed, { expiresAt: new Date(Date.now() + 20 * 60_000), ticket: 'CHG-7', extensions: 1 });
    const expiresAt = new Date(Date.now() - 60_000);
    ended = await seedElevation(subject, ENT.open, { expiresAt, revocationStatus: 'revoked', revokedAt: new Date(expiresAt.getTime() + 850), revocationLagMs: 850 });
    // The subject asked for someone else (seeded: a bound admin would read everything anyway).
    askedBySubject = await seedElevation(await person(), ENT.open, { requestedBy: subject, status: 'pending_approval' });
    // An access request of the same person: not an elevation.
    const [request] = await db
      .insert(accessRequests)
      .values({ idempotencyKey: `seed:${randomUUID()}`, identityId: await identityIdOf(db, subject), entitlementId: ENT.requestable, kind: 'requested', status: 'pending_approval', requestedBy: subject, justification: 'seeded', workflowStartedAt: new Date() })
      .returning({ id: accessRequests.id });
    requestId = request!.id;
  });

  it('shows one elevation with its statuses, expiry, time left, revocation and ticket', async () => {
    const activeView = (await app.inject({ method: 'GET', url: `${PATH}/${active}`, headers: auth(subjectToken) })).json<Elevation>();
    expect(activeView).toMatchObject({ id: active, kind: 'jit', requestStatus: 'approved', revocationStatus: null, revokedAt: null, revocationLagMs: null, ticket: 'CHG-7', extensions: 1, breakGlass: false });
    expect(activeView.timeLeftMs).toBeGreaterThan(19 * 60_000);
    expect(activeView.timeLeftMs).toBeLessThanOrEqual(20 * 60_000);
    expect(Date.parse(activeView.expiresAt!)).toBeGreaterThan(Date.now());
    expect(activeView).toHaveProperty('approvals');
    expect(activeView).toHaveProperty('timeline');
    expect(activeView).toHaveProperty('grantStatus');

    const endedView = (await app.inject({ method: 'GET', url: `${PATH}/${ended}`, headers: auth(readerToken) })).json<Elevation>();
    expect(endedView).toMatchObject({ revocationStatus: 'revoked', revocationLagMs: 850, timeLeftMs: 0 });
    expect(Date.parse(endedView.revokedAt!) - Date.parse(endedView.expiresAt!)).toBe(850);
  });

  it('lists a bound token its own elevations only (subject or requester), and everyone\'s to readers and admins, with time left', async () => {
    const mine = await app.inject({ method: 'GET', url: `${PATH}?limit=200`, headers: auth(subjectToken) });
    expect(mine.statusCode, mine.body).toBe(200);
    const items = mine.json<{ items: Elevation[] }>().items;
    expect(new Set(items.map((i) => i.id))).toEqual(new Set([pending, active, ended, askedBySubject]));
    for (const item of items) {
      expect(item.kind).toBe('jit');
      expect(item).not.toHaveProperty('timeline');
      expect(item).toHaveProperty('timeLeftMs');
    }
    // Filters cannot widen it.
    const theirs = await app.inject({ method: 'GET', url: `${PATH}?employeeId=${e1}`, headers: auth(subjectToken) });
    expect(theirs.json<{ items: Elevation[] }>().items).toEqual([]);
    expect((await app.inject({ method: 'GET', url: `${PATH}/${active}`, headers: auth(e1Token) })).statusCode).toBe(404);

    for (const token of [readerToken, adminToken]) {
      const everyone = await app.inject({ method: 'GET', url: `${PATH}?employeeId=${subject.toLowerCase()}&limit=2`, headers: auth(token) });
      const page1 = everyone.json<{ items: Elevation[]; nextCursor: string | null }>();
      expect(page1.items.map((i) => i.id)).toEqual([ended, active]);
      const page2 = (await app.inject({ method: 'GET', url: `${PATH}?employeeId=${subject}&limit=2&cursor=${page1.nextCursor}`, headers: auth(token) })).json<{ items: Elevation[]; nextCursor: string | null }>();
      expect(page2.items.map((i) => i.id)).toEqual([pending]);
      expect(page2.nextCursor).toBeNull();
    }

    const current = await app.inject({ method: 'GET', url: `${PATH}?active=true`, headers: auth(subjectToken) });
    expect(current.json<{ items: Elevation[] }>().items.map((i) => i.id)).toEqual([active]);
    const byStatus = await app.inject({ method: 'GET', url: `${PATH}?status=pending_approval&entitlementId=${ENT.open}`, headers: auth(subjectToken) });
    expect(new Set(byStatus.json<{ items: Elevation[] }>().items.map((i) => i.id))).toEqual(new Set([pending, askedBySubject]));

    // A token bound to nobody without identities:read sees nothing.
    expect((await app.inject({ method: 'GET', url: PATH, headers: auth(unboundRequester) })).statusCode).toBe(403);
    await expectQueryErrors(api, readerToken, [
      ['active=yes', 'active'],
      ['cursor=not*base64', 'cursor'],
      ['status=done', 'status'],
    ]);
  });

  it('keeps elevations and access requests apart: each route answers its own kind', async () => {
    // The access-request list leaves elevations out unless kind=jit asks for them.
    const requests = await app.inject({ method: 'GET', url: `/api/v1/access-requests?employeeId=${subject}`, headers: auth(readerToken) });
    expect(requests.json<{ items: RequestView[] }>().items.map((i) => i.id)).toEqual([requestId]);
    const asked = await app.inject({ method: 'GET', url: `/api/v1/access-requests?employeeId=${subject}&kind=jit`, headers: auth(readerToken) });
    expect(new Set(asked.json<{ items: RequestView[] }>().items.map((i) => i.id))).toEqual(new Set([pending, active, ended]));

    // An access request's id is no elevation.
    for (const [method, url] of [
      ['GET', `${PATH}/${requestId}`],
      ['POST', `${PATH}/${requestId}/revoke`],
    ] as const) {
      expect((await app.inject({ method, url, headers: auth(adminToken) })).statusCode, `${method} ${url}`).toBe(404);
    }
    expect((await app.inject({ method: 'POST', url: `${PATH}/${requestId}/extend`, headers: auth(adminToken), payload: { duration: '30m' } })).statusCode).toBe(404);
    expect((await app.inject({ method: 'GET', url: `${PATH}/${randomUUID()}`, headers: auth(readerToken) })).statusCode).toBe(404);
    const bad = await app.inject({ method: 'GET', url: `${PATH}/not-a-uuid`, headers: auth(readerToken) });
    expect(bad.statusCode).toBe(400);
    expect(errorFields(bad)).toEqual(['id']);
  });

  it('lets only the subject, the requester or an admin extend or revoke; an elevation with no workflow left is a 409', async () => {
    const stranger = await tokenOf(db, 'stranger', ['jit:request'], await person());
    const readingRequester = await tokenOf(db, 'reading', ['jit:request', 'identities:read'], await person());
    for (const action of ['extend', 'revoke'] as const) {
      const call = (token: string) => app.inject({ method: 'POST', url: `${PATH}/${ended}/${action}`, headers: auth(token), ...(action === 'extend' ? { payload: { duration: '30m' } } : {}) });
      // Someone it does not concern cannot learn it exists; a reader can see it but not act on it.
      expect((await call(stranger)).statusCode, action).toBe(404);
      expect((await call(readingRequester)).statusCode, action).toBe(403);
      expect((await call(unboundRequester)).statusCode, action).toBe(403);
      expect((await call(readerToken)).statusCode, action).toBe(403);
      // Its workflow has ended (here: never ran): nothing to extend or end.
      for (const token of [subjectToken, adminToken]) {
        const response = await call(token);
        expect(response.statusCode, `${action}: ${response.body}`).toBe(409);
        expect(response.json(), action).toMatchObject({ requestStatus: 'approved', revocationStatus: 'revoked', ...(action === 'extend' ? { rule: 'not_extendable', field: 'id' } : {}) });
      }
    }
    const badDuration = await app.inject({ method: 'POST', url: `${PATH}/${ended}/extend`, headers: auth(subjectToken), payload: { duration: 'later' } });
    expect(badDuration.statusCode).toBe(400);
    expect(errorFields(badDuration)).toEqual(['duration']);
  });
});

describe('the door', () => {
  it('checks the token before it reads the body', async () => {
    await expectTokenBeforeBody(api);
    const extend = await app.inject({ method: 'POST', url: `${PATH}/${randomUUID()}/extend`, headers: { 'content-type': 'application/json' }, payload: '[' });
    expect(extend.statusCode).toBe(401);
    // The wrong scope is a 403, still before the body.
    for (const url of [PATH, `${PATH}/${randomUUID()}/extend`, `${PATH}/${randomUUID()}/revoke`]) {
      const reader = await app.inject({ method: 'POST', url, headers: { ...auth(readerToken), 'content-type': 'application/json' }, payload: '{' });
      expect(reader.statusCode, url).toBe(403);
    }
    expect((await app.inject({ method: 'GET', url: PATH })).statusCode).toBe(401);
  });
});

describe('the CLI', () => {
  const REPO = new URL('../../', import.meta.url).pathname;
  function runJml(args: string[], token?: string): Promise<{ code: number; stdout: string; stderr: string }> {
    const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'warn' };
    delete env.JML_TOKEN;
    if (token) env.JML_TOKEN = token;
    return new Promise((resolve) => {
      execFile(process.execPath, ['--import', 'tsx', 'cli/index.ts', ...args], { cwd: REPO, env, encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });
  }

  it('jml elevate --help names its options', async () => {
    const { code, stdout } = await runJml(['elevate', '--help']);
    expect(code).toBe(0);
    for (const option of ['<entitlement>', '--for <duration>', '--reason <text>', '--ticket <ref>', '--break-glass', '--employee <id>', '--json']) expect(stdout).toContain(option);
  });

  it('jml elevate asks as the token\'s person and prints the statuses; jml elevations lists it with its time left; a refusal names its rule', async () => {
    await app.listen({ port: 0, host: '127.0.0.1' });
    const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    const subject = await person();
    const token = await tokenOf(db, 'cli', ['jit:request'], subject);

    const asked = await runJml(['elevate', ENT.ticketed, '--for', '15m', '--reason', 'Change 42', '--ticket', 'CHG-42', '--url', url], token);
    expect(asked.code, asked.stderr).toBe(0);
    const id = /^elevation ([0-9a-f-]{36})$/m.exec(asked.stdout)?.[1];
    expect(id, asked.stdout).toBeDefined();
    api.started.push(id!);
    expect(asked.stdout).toContain(`${ENT.ticketed} for ${subject} (15m)`);
    expect(asked.stdout).toMatch(/pending_approval\s+-\s+-/);
    expect(asked.stdout).toContain('ticket CHG-42');

    const listed = await runJml(['elevations', '--url', url], token);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toMatch(/ID\s+EMPLOYEE\s+ENTITLEMENT\s+REQUEST\s+GRANT\s+REVOCATION\s+EXPIRES AT\s+TIME LEFT/);
    expect(listed.stdout).toContain(id!);

    const refusedRun = await runJml(['elevate', ENT.ticketed, '--reason', 'No ticket', '--url', url], token);
    expect(refusedRun.code).toBe(1);
    expect(refusedRun.stderr).toContain('refused by rule ticket_required');
    expect(refusedRun.stderr).toContain('field: ticket');
  });
});
