// What `jml request`, `jml requests`, `jml approve|deny` and `jml withdraw` print and how
// they exit, run as a user would (the real CLI in a child process): the three statuses side
// by side, a policy refusal naming its rule with exit code 1, a clear error without
// JML_TOKEN, the pending-approval list, server text made terminal-safe, and the decision
// sent with the bearer token.
//
// The API here is a TEST DOUBLE: a small node:http server answering the documented
// `/api/v1/access-requests` contract and recording what it was sent. It stands in for the
// API only to test the CLI's own formatting and exit codes; the last block runs the CLI
// against the real API over a real engine.
import { execFile } from 'node:child_process';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createApiToken } from '../../api/auth.js';
import type { ApprovalView, RequestView } from '../../domain/request-view.js';
import { testConfig } from '../support/config.js';
import { eventually, type TestEngine } from '../support/engine.js';
import { testEnv, uniqueEmployeeId } from '../support/env.js';
import { hire, startListeningEngine } from '../support/requests.js';

const REPO = new URL('../../', import.meta.url).pathname;
const TOKEN = 'jml_test_token_do_not_print_0123456789abcdef';
// Raw characters a terminal would act on (the program's own newlines aside).
// eslint-disable-next-line no-control-regex -- the characters under test
const RAW = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

interface Received {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  body: unknown;
}
interface Reply {
  status: number;
  body?: unknown;
  contentType?: string;
}

// --- the test double of the API ------------------------------------------------------
let server: Server;
let baseUrl: string;
let received: Received[] = [];
let answer: (request: Received) => Reply = () => ({ status: 500 });

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://double');
      const text = Buffer.concat(chunks).toString('utf8');
      const request: Received = { method: req.method ?? '', path: url.pathname, query: url.searchParams, headers: req.headers, body: text ? (JSON.parse(text) as unknown) : undefined };
      received.push(request);
      const reply = answer(request);
      res.writeHead(reply.status, { 'content-type': reply.contentType ?? (reply.status >= 400 ? 'application/problem+json' : 'application/json') });
      res.end(reply.body === undefined ? '' : JSON.stringify(reply.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise<void>((resolve) => server?.close(() => resolve()));
});
beforeEach(() => {
  received = [];
  answer = () => ({ status: 500 });
});

function runJml(args: string[], env: Record<string, string | undefined> = { JML_TOKEN: TOKEN }): Promise<{ code: number; stdout: string; stderr: string }> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'warn' };
  delete childEnv.JML_TOKEN;
  for (const [name, value] of Object.entries(env)) if (value !== undefined) childEnv[name] = value;
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'cli/index.ts', ...args], { cwd: REPO, env: childEnv, encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

function approval(overrides: Partial<ApprovalView> = {}): ApprovalView {
  return {
    id: 'a1',
    stage: 1,
    role: 'manager',
    approver: 'E2000',
    fallbackReason: null,
    escalatedFrom: null,
    dueAt: '2030-01-04T09:00:00.000Z',
    remindersSent: 0,
    escalatedTo: null,
    escalatedAt: null,
    escalationNote: null,
    decision: null,
    decidedBy: null,
    decidedAt: null,
    decidedVia: null,
    comment: null,
    ...overrides,
  };
}

function requestView(overrides: Partial<RequestView> = {}): RequestView {
  return {
    id: '0b7c9a52-4d1e-4c3a-9f57-2f0c8e1d6a11',
    employeeId: 'E1001',
    entitlementId: 'prod-db-read',
    kind: 'requested',
    requestedBy: 'E1001',
    justification: 'incident 42',
    duration: '8h',
    createdAt: '2030-01-01T09:00:00.000Z',
    requestStatus: 'pending_approval',
    statusReason: null,
    decidedAt: null,
    grantStatus: null,
    revocationStatus: null,
    retainedBy: [],
    expiresAt: null,
    revokedAt: null,
    revocationLagMs: null,
    ticket: null,
    breakGlass: false,
    extensions: 0,
    grant: null,
    approvals: [approval()],
    timeline: [],
    ...overrides,
  };
}

describe('jml request', () => {
  it('sends the request with a fresh Idempotency-Key and prints the id, the three statuses and who must approve', async () => {
    answer = () => ({ status: 201, body: requestView() });
    const first = await runJml(['request', 'prod-db-read', '--for', '8h', '--reason', 'incident 42', '--url', baseUrl]);
    expect({ code: first.code, stderr: first.stderr }).toEqual({ code: 0, stderr: '' });
    const lines = first.stdout.split('\n');
    expect(lines).toContain('request 0b7c9a52-4d1e-4c3a-9f57-2f0c8e1d6a11');
    // The three statuses side by side: one header, one row, a column each.
    const header = lines.findIndex((line) => /^\s*REQUEST\s+GRANT\s+REVOCATION$/.test(line));
    expect(header).toBeGreaterThan(0);
    expect(lines[header + 1]?.trim().split(/\s+/)).toEqual(['pending_approval', '-', '-']);
    expect(first.stdout).toContain('waiting for: E2000 (manager, stage 1)');

    const second = await runJml(['request', 'prod-db-read', '--reason', 'again', '--employee', 'e1002', '--url', baseUrl]);
    expect(second.code).toBe(0);
    expect(received.map((r) => [r.method, r.path])).toEqual([
      ['POST', '/api/v1/access-requests'],
      ['POST', '/api/v1/access-requests'],
    ]);
    expect(received[0]!.body).toEqual({ entitlementId: 'prod-db-read', justification: 'incident 42', duration: '8h' });
    // Another person (any spelling of the id), and no duration: until removed.
    expect(received[1]!.body).toEqual({ entitlementId: 'prod-db-read', justification: 'again', employeeId: 'E1002' });
    const keys = received.map((r) => r.headers['idempotency-key']);
    for (const key of keys) expect(key).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(keys[0]).not.toBe(keys[1]);
    expect(received[0]!.headers.authorization).toBe(`Bearer ${TOKEN}`);
  });

  it('prints a policy refusal with its rule and detail and exits 1', async () => {
    answer = () => ({
      status: 422,
      body: {
        type: 'urn:jml:problem:policy',
        title: 'Request refused',
        status: 422,
        detail: 'prod-db-read conflicts with prod-db-admin, which E1001 holds',
        rule: 'sod',
        field: 'entitlementId',
      },
    });
    const { code, stdout, stderr } = await runJml(['request', 'prod-db-read', '--reason', 'x', '--url', baseUrl]);
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toContain('refused by rule sod: prod-db-read conflicts with prod-db-admin, which E1001 holds');
    expect(stderr).toContain('field: entitlementId');
  });

  it('refuses a bad duration and a missing reason before asking the API', async () => {
    const duration = await runJml(['request', 'prod-db-read', '--for', 'tomorrow', '--reason', 'x', '--url', baseUrl]);
    expect(duration.code).not.toBe(0);
    expect(duration.stderr).toContain('expected a duration such as 90m, 8h or 30d');
    const reason = await runJml(['request', 'prod-db-read', '--url', baseUrl]);
    expect(reason.code).not.toBe(0);
    expect(reason.stderr).toContain("required option '--reason <text>' not specified");
    expect(received).toEqual([]);
  });
});

describe('the token and the connection', () => {
  it('fails naming JML_TOKEN when it is not set, and asks the API nothing', async () => {
    const { code, stdout, stderr } = await runJml(['requests', '--url', baseUrl], {});
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/^jml: JML_TOKEN is not set/);
    expect(received).toEqual([]);
  });

  it('names the URL in one line when the API cannot be reached', async () => {
    // A port that was just free: nothing listens there.
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const { code, stderr } = await runJml(['approve', 'some-id', '--url', `http://127.0.0.1:${port}/`]);
    expect(code).toBe(1);
    expect(stderr.trim().split('\n')).toEqual([`jml: cannot reach the jml API at http://127.0.0.1:${port}: ECONNREFUSED`]);
    expect(stderr).not.toContain(TOKEN);
  });

  it('reports a rejected token as such, without printing it', async () => {
    answer = () => ({ status: 401, body: { type: 'urn:jml:problem:unauthorized', title: 'Unauthorized', status: 401, detail: 'The bearer token is not valid.' } });
    const { code, stdout, stderr } = await runJml(['requests', '--url', baseUrl]);
    expect(code).toBe(1);
    expect(stderr).toContain('the API did not accept JML_TOKEN (401): The bearer token is not valid.');
    expect(stdout + stderr).not.toContain(TOKEN);
  });
});

describe('jml requests', () => {
  const open = requestView({ id: '11111111-1111-4111-8111-111111111111', employeeId: 'E3001' });
  // Stage 1 decided, the request still pending (as the double sends it): nothing open for anyone.
  const decided = requestView({
    id: '22222222-2222-4222-8222-222222222222',
    employeeId: 'E3002',
    approvals: [approval({ decision: 'approved', decidedBy: 'E2000', decidedAt: '2030-01-02T09:00:00.000Z' })],
  });
  const secondStage = requestView({
    id: '33333333-3333-4333-8333-333333333333',
    employeeId: 'E3003',
    approvals: [approval({ decision: 'approved', decidedBy: 'E2000', decidedAt: '2030-01-02T09:00:00.000Z' }), approval({ id: 'a2', stage: 2, role: 'owner', approver: 'E4000' })],
  });

  it('--pending-my-approval asks for pending requests, follows the cursor, and shows only those with an open stage', async () => {
    answer = (request) =>
      request.query.get('cursor') === 'page-2'
        ? { status: 200, body: { items: [secondStage], nextCursor: null } }
        : { status: 200, body: { items: [open, decided], nextCursor: 'page-2' } };
    const { code, stdout, stderr } = await runJml(['requests', '--pending-my-approval', '--url', baseUrl]);
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    expect(received).toHaveLength(2);
    for (const request of received) {
      expect(request.path).toBe('/api/v1/access-requests');
      expect(request.query.get('status')).toBe('pending_approval');
      expect(request.headers.authorization).toBe(`Bearer ${TOKEN}`);
    }
    expect(received[1]!.query.get('cursor')).toBe('page-2');
    const lines = stdout.trim().split('\n');
    expect(lines[0]?.split(/\s{2,}/)).toEqual(['ID', 'EMPLOYEE', 'ENTITLEMENT', 'REQUEST', 'GRANT', 'REVOCATION', 'CREATED']);
    expect(lines.slice(1).map((line) => line.split(/\s+/).slice(0, 6))).toEqual([
      [open.id, 'E3001', 'prod-db-read', 'pending_approval', '-', '-'],
      [secondStage.id, 'E3003', 'prod-db-read', 'pending_approval', '-', '-'],
    ]);

    // With --approver, only the stages open for that person.
    received = [];
    const mine = await runJml(['requests', '--pending-my-approval', '--approver', 'e4000', '--json', '--url', baseUrl]);
    expect(mine.code).toBe(0);
    expect(received[0]!.query.get('approver')).toBe('E4000');
    expect((JSON.parse(mine.stdout) as { items: RequestView[] }).items.map((v) => v.id)).toEqual([secondStage.id]);
  });

  it('stops at --limit and says more exist', async () => {
    answer = () => ({ status: 200, body: { items: [open, decided], nextCursor: 'page-2' } });
    const { code, stdout } = await runJml(['requests', '--mine', '--limit', '1', '--url', baseUrl]);
    expect(code).toBe(0);
    expect(received).toHaveLength(1);
    expect(received[0]!.query.get('limit')).toBe('1');
    // --mine sends no filter: the API limits a bound token to its person's requests.
    expect([...received[0]!.query.keys()]).toEqual(['limit']);
    expect(stdout).toContain(open.id);
    expect(stdout).not.toContain(decided.id);
    expect(stdout).toContain('the first 1 shown; --limit to see more');
  });

  it('shows an approved request whose grant failed as approved and failed, never as done', async () => {
    const failed = requestView({
      requestStatus: 'approved',
      grantStatus: 'failed',
      approvals: [approval({ decision: 'approved', decidedBy: 'E2000', decidedAt: '2030-01-02T09:00:00.000Z', comment: 'ok' })],
      grant: { id: 'g1', status: 'failed', attempts: 5, lastError: 'LDAP: insufficient access rights', verifiedAt: null, revokedAt: null, revokeReason: null },
    });
    answer = () => ({ status: 200, body: failed });
    const { code, stdout } = await runJml(['requests', failed.id, '--url', baseUrl]);
    expect(code).toBe(0);
    expect(received[0]!.path).toBe(`/api/v1/access-requests/${failed.id}`);
    const lines = stdout.split('\n');
    const header = lines.findIndex((line) => /^\s*REQUEST\s+GRANT\s+REVOCATION$/.test(line));
    expect(lines[header + 1]?.trim().split(/\s+/)).toEqual(['approved', 'failed', '-']);
    expect(stdout).toContain('grant error: LDAP: insufficient access rights');
    expect(stdout).not.toContain('waiting for');
  });

  it('neutralises control characters in what the server sends, in tables, refusals and JSON', async () => {
    const hostile = requestView({ entitlementId: 'db\x1b[2J\u202eadmin', employeeId: 'E1001\x9b31m', statusReason: 'line1\nline2\x07' });
    answer = (request) =>
      request.query.get('status') === 'denied'
        ? { status: 403, body: { type: 'urn:jml:problem:forbidden', title: 'Forbidden\x1b]0;pwned\x07', status: 403, detail: 'no\x1b[31m \u2066way' } }
        : request.path.endsWith(hostile.id)
          ? { status: 200, body: hostile }
          : { status: 200, body: { items: [hostile], nextCursor: null } };
    const list = await runJml(['requests', '--url', baseUrl]);
    const one = await runJml(['requests', hostile.id, '--url', baseUrl]);
    const json = await runJml(['requests', '--json', '--url', baseUrl]);
    const refusal = await runJml(['requests', '--status', 'denied', '--url', baseUrl]);
    expect([list.code, one.code, json.code, refusal.code]).toEqual([0, 0, 0, 1]);
    for (const output of [list.stdout, one.stdout, json.stdout, refusal.stderr]) expect(output).not.toMatch(RAW);
    expect(list.stdout).toContain('db\\x1b[2J\\u202eadmin');
    expect(one.stdout).toContain('reason: line1\\x0aline2\\x07');
    expect(refusal.stderr).toContain('no\\x1b[31m \\u2066way');
    // The JSON is still JSON, with the same values.
    expect((JSON.parse(json.stdout) as { items: RequestView[] }).items[0]!.entitlementId).toBe(hostile.entitlementId);
  });
});

describe('jml approve, deny and withdraw', () => {
  it('approve sends the decision and comment with the bearer token and prints the outcome', async () => {
    const id = '44444444-4444-4444-8444-444444444444';
    answer = () => ({
      status: 200,
      body: requestView({
        id,
        requestStatus: 'approved',
        grantStatus: 'provisioning',
        approvals: [approval({ decision: 'approved', decidedBy: 'E2000', decidedAt: '2030-01-02T09:00:00.000Z', comment: 'ok for the incident' })],
      }),
    });
    const { code, stdout, stderr } = await runJml(['approve', id, '--comment', 'ok for the incident', '--url', `${baseUrl}/`]);
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    expect(received).toHaveLength(1);
    expect(received[0]).toMatchObject({ method: 'POST', path: `/api/v1/access-requests/${id}/decision`, body: { decision: 'approve', comment: 'ok for the incident' } });
    expect(received[0]!.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(received[0]!.headers['content-type']).toBe('application/json');
    expect(stdout).toContain('approved: your decision is recorded');
    const lines = stdout.split('\n');
    const header = lines.findIndex((line) => /^\s*REQUEST\s+GRANT\s+REVOCATION$/.test(line));
    expect(lines[header + 1]?.trim().split(/\s+/)).toEqual(['approved', 'provisioning', '-']);
    expect(stdout).not.toContain(TOKEN);
  });

  it('deny without a comment sends only the decision; a second decision is refused with the detail and exit 1', async () => {
    answer = () => ({ status: 409, body: { type: 'urn:jml:problem:conflict', title: 'Conflict', status: 409, detail: 'This stage was already decided (approved).' } });
    const { code, stderr } = await runJml(['deny', 'abc/../x', '--url', baseUrl]);
    expect(code).toBe(1);
    // The id is one path segment, whatever it contains.
    expect(received[0]).toMatchObject({ method: 'POST', path: '/api/v1/access-requests/abc%2F..%2Fx/decision', body: { decision: 'deny' } });
    expect(stderr).toContain('jml: deny refused (409 Conflict): This stage was already decided (approved).');
  });

  it('withdraw deletes the request and says when the access stays for another reason', async () => {
    const id = '55555555-5555-4555-8555-555555555555';
    const view = requestView({ id, requestStatus: 'approved', grantStatus: 'active', approvals: [approval({ decision: 'approved', decidedBy: 'E2000', decidedAt: '2030-01-02T09:00:00.000Z' })] });
    answer = () => ({ status: 202, body: { ...view, withdrawal: { requestStatus: 'approved', grantStatus: 'active', revocationStatus: 'retained', retainedBy: ['birthright:engineering'] } } });
    const { code, stdout } = await runJml(['withdraw', id, '--url', baseUrl]);
    expect(code).toBe(0);
    expect(received[0]).toMatchObject({ method: 'DELETE', path: `/api/v1/access-requests/${id}` });
    const lines = stdout.split('\n');
    const header = lines.findIndex((line) => /^\s*REQUEST\s+GRANT\s+REVOCATION$/.test(line));
    expect(lines[header + 1]?.trim().split(/\s+/)).toEqual(['approved', 'active', 'retained']);
    expect(stdout).toContain('access stays: still due for birthright:engineering');
  });
});

// The real thing: the CLI against the real API, over a real engine (Temporal, slapd, mail).
describe('jml request / approve against the real API', () => {
  let engine: TestEngine;
  let origin: string;
  let stop: (() => Promise<void>) | undefined;
  const manager = uniqueEmployeeId('M');
  const subject = uniqueEmployeeId('S');

  beforeAll(async () => {
    const base = testConfig(testEnv.ldap);
    const config = testConfig(testEnv.ldap, {
      entitlements: base.entitlements.map((e) =>
        e.id === 'sales' ? { ...e, requestable: true, maxDuration: '1d' } : e.id === 'contractors' ? { ...e, jit: { eligible: true, maxDuration: '1h', approval: 'none' } } : e,
      ),
    });
    ({ engine, origin, stop } = await startListeningEngine(config));
    await hire(engine, manager);
    await hire(engine, subject, { managerId: manager });
  }, 120_000);
  afterAll(async () => {
    await stop?.();
  });

  it('asks as the token\'s person, the manager approves by CLI, and the group is granted', async () => {
    const asker = (await createApiToken(engine.db, { name: 'subject', scopes: ['requests:write'], employeeId: subject })).token;
    const approver = (await createApiToken(engine.db, { name: 'manager', scopes: ['requests:approve', 'requests:write'], employeeId: manager })).token;

    const refused = await runJml(['request', 'sales', '--reason', 'pipeline review', '--url', origin], { JML_TOKEN: asker });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('duration_required');

    const asked = await runJml(['request', 'sales', '--for', '8h', '--reason', 'pipeline review', '--url', origin, '--json'], { JML_TOKEN: asker });
    expect(asked.code, asked.stderr).toBe(0);
    const created = JSON.parse(asked.stdout) as RequestView;
    expect(created).toMatchObject({ employeeId: subject, entitlementId: 'sales', requestStatus: 'pending_approval', grantStatus: null, revocationStatus: null, duration: '8h' });

    const pending = await runJml(['requests', '--pending-my-approval', '--url', origin], { JML_TOKEN: approver });
    expect(pending.code, pending.stderr).toBe(0);
    expect(pending.stdout).toContain(created.id);

    // The subject cannot approve their own request.
    const self = await runJml(['approve', created.id, '--url', origin], { JML_TOKEN: asker });
    expect(self.code).toBe(1);

    const approved = await runJml(['approve', created.id, '--comment', 'ok', '--url', origin], { JML_TOKEN: approver });
    expect(approved.code, approved.stderr).toBe(0);
    expect(approved.stdout).toContain('approved');
    const granted = await eventually(async () => {
      const shown = await runJml(['requests', created.id, '--json', '--url', origin], { JML_TOKEN: asker });
      const view = JSON.parse(shown.stdout) as RequestView;
      return view.grantStatus === 'active' && view;
    }, 30_000);
    expect(granted).toMatchObject({ requestStatus: 'approved', grantStatus: 'active', revocationStatus: null });
    expect(granted.expiresAt).not.toBeNull();
    expect(await engine.connector.isGroupMember(subject, `cn=sales,${testEnv.ldap.groupsDN}`)).toBe(true);
  });

  it('elevates, lists and revokes early with jml elevate, elevations and revoke', async () => {
    const token = (await createApiToken(engine.db, { name: 'elevating', scopes: ['jit:request'], employeeId: subject })).token;
    const elevated = await runJml(['elevate', 'contractors', '--for', '30m', '--reason', 'covering on-call', '--url', origin, '--json'], { JML_TOKEN: token });
    expect(elevated.code, elevated.stderr).toBe(0);
    const view = JSON.parse(elevated.stdout) as RequestView;
    expect(view).toMatchObject({ kind: 'jit', entitlementId: 'contractors', duration: '30m' });
    await eventually(async () => engine.connector.isGroupMember(subject, `cn=contractors,${testEnv.ldap.groupsDN}`), 30_000);
    const listed = await runJml(['elevations', '--url', origin], { JML_TOKEN: token });
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toContain(view.id);
    const revoked = await runJml(['revoke', view.id, '--url', origin], { JML_TOKEN: token });
    expect(revoked.code, revoked.stderr).toBe(0);
    await eventually(async () => !(await engine.connector.isGroupMember(subject, `cn=contractors,${testEnv.ldap.groupsDN}`)), 30_000);
  });
});
