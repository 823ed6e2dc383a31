// The approval page an approver's email links to (GET/HEAD/POST /approvals/<token>), through
// the real app over the run's Postgres. Rows are seeded as the approval workflow leaves them:
// a request, its stage's approval row and the link's token, stored only as its SHA-256.
// What it shows: who asks, for what, why, for how long, the risk and what the person holds,
// with one form; that GET and HEAD (a mail scanner) and a form without its CSRF nonce change
// nothing; that unknown, used and expired links get pages that say so and no more.
import { randomBytes } from 'node:crypto';
import { and, eq, inArray, sql } from 'drizzle-orm';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../api/app.js';
import { hashToken } from '../../api/auth.js';
import { createMetricsRegistry } from '../../api/metrics.js';
import { commentFromForm, PAGE_HEADERS } from '../../api/routes/approval-page.js';
import { approvalByToken } from '../../db/approval-page-view.js';
import { createDb, type Db, type DbHandle } from '../../db/client.js';
import { accessRequests, approvals, approvalTokens, auditLog, entitlements, grants, identities } from '../../db/schema.js';
import { createHrEventQueue } from '../../services/hr-event-queue.js';
import { redisConnection } from '../../services/redis.js';
import type { ApprovalInput } from '../../workflows/approval.js';
import { approvalStateQuery, approvalWorkflowId } from '../../workflows/request-messages.js';
import { buildAppWithoutEngine, buildTestApp } from '../support/api.js';
import { testConfig } from '../support/config.js';
import { startTestEngine, type TestEngine } from '../support/engine.js';
import { testEnv, uniqueEmployeeId, uniqueName } from '../support/env.js';
import { emailOf, parseMail } from '../support/requests.js';
import { startSmtpCapture, type SmtpCapture } from '../support/smtp.js';

let app: FastifyInstance;
let db: DbHandle['db'];
let stop: () => Promise<void>;

beforeAll(async () => {
  ({ app, db, stop } = await buildAppWithoutEngine('approval-page'));
});
afterAll(async () => {
  await stop?.();
});

const HOUR = 3_600_000;

interface Seeded {
  token: string;
  url: string;
  requestId: string;
  approvalId: string;
  subjectId: string;
  managerId: string;
  requesterId: string;
  entitlementId: string;
  heldId: string;
  revokedId: string;
}

async function person(employeeId: string, givenName: string, familyName: string, managerId?: string, on: Db = db): Promise<string> {
  const [row] = await on
    .insert(identities)
    .values({ employeeId, status: 'active', attributes: { givenName, familyName, ...(managerId ? { managerId } : {}) } })
    .returning({ id: identities.id });
  return row!.id;
}

async function entitlement(name: string, risk: string, on: Db = db): Promise<string> {
  const id = uniqueName('ent').toLowerCase();
  await on.insert(entitlements).values({ id, name, target: 'directory', kind: 'group', targetRef: `cn=${id},ou=groups`, risk, requestable: true });
  return id;
}

/** A request for a high-risk group, pending its first (manager) stage, with one emailed link. */
async function seed(options: { durationMs?: number | null; tokenExpiresAt?: Date; on?: Db } = {}): Promise<Seeded> {
  const on = options.on ?? db;
  const managerId = uniqueEmployeeId('M');
  const subjectId = uniqueEmployeeId('S');
  const requesterId = uniqueEmployeeId('R');
  await person(managerId, 'Grace', 'Hopper', undefined, on);
  const subject = await person(subjectId, 'Ada', 'Lovelace', managerId, on);
  await person(requesterId, 'Charles', 'Babbage', managerId, on);
  const entitlementId = await entitlement('Finance <reports> & co', 'high', on);
  const heldId = await entitlement('All staff', 'low', on);
  const revokedId = await entitlement('Old project', 'low', on);

  // What the subject holds: one live grant and one revoked (which the page leaves out).
  for (const [ent, status] of [
    [heldId, 'active'],
    [revokedId, 'revoked'],
  ] as const) {
    const [birthright] = await on
      .insert(accessRequests)
      .values({ idempotencyKey: uniqueName('birthright'), identityId: subject, entitlementId: ent, kind: 'birthright', status: 'auto_approved', requestedBy: 'system' })
      .returning({ id: accessRequests.id });
    await on.insert(grants).values({ identityId: subject, entitlementId: ent, requestId: birthright!.id, status });
  }

  const [request] = await on
    .insert(accessRequests)
    .values({
      idempotencyKey: uniqueName('request'),
      identityId: subject,
      entitlementId,
      kind: 'requested',
      status: 'pending_approval',
      requestedBy: requesterId,
      justification: 'Quarter close <script>alert(1)</script> & audit',
      durationMs: options.durationMs === undefined ? 8 * HOUR : options.durationMs,
    })
    .returning({ id: accessRequests.id });
  const [approval] = await on
    .insert(approvals)
    .values({ requestId: request!.id, stage: 1, role: 'manager', approver: managerId, dueAt: new Date('2031-03-04T05:06:00Z') })
    .returning({ id: approvals.id });
  const token = await linkFor(approval!.id, options.tokenExpiresAt ?? new Date(Date.now() + 72 * HOUR), on);
  return { token, url: `/approvals/${token}`, requestId: request!.id, approvalId: approval!.id, subjectId, managerId, requesterId, entitlementId, heldId, revokedId };
}

/** A fresh emailed link for an approval row: 256 random bits, stored only as its hash. */
async function linkFor(approvalId: string, expiresAt: Date, on: Db = db): Promise<string> {
  const token = randomBytes(32).toString('base64url');
  await on.insert(approvalTokens).values({ tokenHash: hashToken(token), approvalId, purpose: 'request', expiresAt });
  return token;
}

/** Every row the page could change for a request, and its audit trail, to compare before and after. */
async function snapshot(s: Pick<Seeded, 'requestId' | 'approvalId' | 'subjectId'>, on: Db = db) {
  const approvalRows = await on.select().from(approvals).where(eq(approvals.requestId, s.requestId));
  const tokenRows = await on.select().from(approvalTokens).where(inArray(approvalTokens.approvalId, approvalRows.map((a) => a.id)));
  const requestRows = await on.select().from(accessRequests).where(eq(accessRequests.id, s.requestId));
  const [audit] = await on
    .select({ count: sql<number>`count(*)::int` })
    .from(auditLog)
    .where(inArray(auditLog.subjectId, [s.requestId, s.approvalId, s.subjectId]));
  return { approvalRows, tokenRows, requestRows, auditCount: audit!.count };
}

/** GET the page as a browser would: its CSRF cookie and the nonce from the form. */
async function openForm(url: string, on: FastifyInstance = app): Promise<{ cookie: string; nonce: string; response: LightMyRequestResponse }> {
  const response = await on.inject({ method: 'GET', url });
  expect(response.statusCode).toBe(200);
  const setCookie = [response.headers['set-cookie'] ?? []].flat();
  const cookie = setCookie.map((c) => c.split(';')[0]!).find((c) => c.startsWith('jml_approval_csrf='));
  const nonce = /<input type="hidden" name="_csrf" value="([^"]+)">/.exec(response.body)?.[1];
  expect(cookie).toBeDefined();
  expect(nonce).toBeDefined();
  return { cookie: cookie!, nonce: nonce!, response };
}

function postForm(url: string, fields: Record<string, string | undefined>, cookie?: string, on: FastifyInstance = app) {
  return on.inject({
    method: 'POST',
    url,
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...(cookie ? { cookie } : {}) },
    payload: new URLSearchParams(Object.entries(fields).filter((entry): entry is [string, string] => entry[1] !== undefined)).toString(),
  });
}

function expectPageHeaders(response: LightMyRequestResponse) {
  for (const [name, value] of Object.entries(PAGE_HEADERS)) expect(response.headers[name], name).toBe(value);
  expect(response.headers['content-security-policy']).toBe("default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'");
  expect(response.headers['cache-control']).toBe('no-store');
  expect(response.headers['referrer-policy']).toBe('no-referrer');
  expect(response.headers['x-frame-options']).toBe('DENY');
  expect(response.headers['x-robots-tag']).toBe('noindex');
  expect(response.headers['content-type']).toBe('text/html; charset=utf-8');
}

/** A readable document with no script of any kind. */
function expectPlainDocument(body: string) {
  expect(body).toMatch(/^<!doctype html>\n<html lang="en">/);
  expect(body).toContain('<main>');
  expect(body).toMatch(/<h1>[^<]+<\/h1>/);
  expect(body).not.toMatch(/<script|javascript:|\son[a-z]+=/i);
}

describe('GET /approvals/<token>', () => {
  it('shows who asks, for what, why, for how long, the risk and what they hold, with one form', async () => {
    const s = await seed();
    const { response, cookie } = await openForm(s.url);
    expectPageHeaders(response);
    expectPlainDocument(response.body);
    const body = response.body;

    expect(body).toContain(`Ada Lovelace (${s.subjectId})`);
    expect(body).toContain(`Charles Babbage (${s.requesterId})`);
    expect(body).toContain(`Grace Hopper (${s.managerId})`);
    expect(body).toContain(`Finance &lt;reports&gt; &amp; co (${s.entitlementId})`);
    expect(body).toContain('group in directory');
    expect(body).toContain('<span class="risk-high">high</span>');
    expect(body).toContain('Quarter close &lt;script&gt;alert(1)&lt;/script&gt; &amp; audit');
    expect(body).toContain('<th scope="row">For how long</th><td>8h</td>');
    expect(body).toContain('pending approval');
    expect(body).toContain('Stage 1: approval by the manager');
    expect(body).toContain('<time datetime="2031-03-04T05:06:00.000Z">2031-03-04 05:06 UTC</time>');
    expect(body).toContain(`<li>All staff (${s.heldId})</li>`);
    expect(body).not.toContain(s.revokedId);

    // One form, posted back to this same URL, with both buttons, a labelled comment and the nonce.
    expect(body.match(/<form /g)).toHaveLength(1);
    expect(body).toContain('<form method="post">');
    expect(body).toContain('<button type="submit" name="decision" value="approve">Approve</button>');
    expect(body).toContain('<button type="submit" name="decision" value="deny">Deny</button>');
    expect(body).toContain('<label for="comment">');
    expect(body).toContain('<textarea id="comment" name="comment" rows="4" maxlength="1000"></textarea>');
    expect(body).toMatch(/<input type="hidden" name="_csrf" value="[^"]{20,}">/);
    expect(body).toContain('<table>');
    expect(body).toContain('<caption>');

    // The CSRF cookie: strict, unreadable by script, only sent to /approvals, Secure (https PUBLIC_URL).
    const raw = [response.headers['set-cookie']].flat().find((c) => c?.startsWith('jml_approval_csrf='))!;
    expect(raw).toMatch(/; Path=\/approvals(;|$)/);
    expect(raw).toMatch(/; HttpOnly(;|$)/);
    expect(raw).toMatch(/; Secure(;|$)/);
    expect(raw).toMatch(/; SameSite=Strict(;|$)/);
    expect(cookie).toMatch(/^jml_approval_csrf=.+/);
  });

  it('says "until removed" for a request with no duration', async () => {
    const s = await seed({ durationMs: null });
    const response = await app.inject({ method: 'GET', url: s.url });
    expect(response.body).toContain('<th scope="row">For how long</th><td>until removed</td>');
    expect((await approvalByToken(db, s.token))?.duration).toBe('until removed');
  });

  it('changes nothing when opened again and again, or with HEAD, as a mail scanner does', async () => {
    const s = await seed();
    const before = await snapshot(s);
    for (let i = 0; i < 3; i++) expect((await app.inject({ method: 'GET', url: s.url })).statusCode).toBe(200);
    const head = await app.inject({ method: 'HEAD', url: s.url });
    expect(head.statusCode).toBe(200);
    expect(head.body).toBe('');
    expect(head.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(head.headers['referrer-policy']).toBe('no-referrer');

    const after = await snapshot(s);
    expect(after).toEqual(before);
    expect(after.tokenRows[0]!.usedAt).toBeNull();
    expect(after.approvalRows[0]!.decision).toBeNull();
    // And the link still opens the form.
    expect((await app.inject({ method: 'GET', url: s.url })).body).toContain('<form method="post">');
  });

  it('answers an unknown or malformed link with a 404 page that says nothing about any request', async () => {
    const s = await seed();
    const unknown = randomBytes(32).toString('base64url');
    for (const url of [`/approvals/${unknown}`, '/approvals/short', `/approvals/${s.token.slice(0, 42)}%3C`, `/approvals/${s.token}x`]) {
      for (const method of ['GET', 'HEAD'] as const) {
        const response = await app.inject({ method, url });
        expect(response.statusCode, `${method} ${url}`).toBe(404);
        expect(response.headers['content-type']).toBe('text/html; charset=utf-8');
        if (method === 'GET') {
          expectPlainDocument(response.body);
          expect(response.body).toContain('This link is not valid');
          expect(response.body).not.toMatch(/Lovelace|Hopper|Finance|<form/);
        }
      }
    }
  });
});

describe('POST /approvals/<token>', () => {
  it('refuses a form without its CSRF cookie or nonce (403) and changes nothing', async () => {
    const s = await seed();
    const { cookie, nonce } = await openForm(s.url);
    const other = await openForm((await seed()).url);
    const before = await snapshot(s);
    const attempts = [
      { name: 'no cookie, no nonce', fields: { decision: 'approve' } },
      { name: 'nonce without its cookie', fields: { decision: 'approve', _csrf: nonce } },
      { name: 'cookie without the nonce', fields: { decision: 'approve' }, cookie },
      { name: 'a forged nonce', fields: { decision: 'approve', _csrf: 'forged-nonce' }, cookie },
      { name: "another browser's nonce", fields: { decision: 'deny', _csrf: other.nonce }, cookie },
    ];
    for (const attempt of attempts) {
      const response = await postForm(s.url, attempt.fields, attempt.cookie);
      expect(response.statusCode, attempt.name).toBe(403);
      expectPageHeaders(response);
      expectPlainDocument(response.body);
      expect(response.body, attempt.name).toContain('This form expired, reload the page');
    }
    // A nonce in a header, as a script could send it, is not taken either: the form is the only client.
    const viaHeader = await app.inject({ method: 'POST', url: s.url, headers: { 'content-type': 'application/x-www-form-urlencoded', cookie, 'x-csrf-token': nonce }, payload: 'decision=approve' });
    expect(viaHeader.statusCode).toBe(403);
    expect(await snapshot(s)).toEqual(before);
  });

  it('answers 503 when this server has no Temporal client, and changes nothing', async () => {
    const s = await seed();
    const { cookie, nonce } = await openForm(s.url);
    const before = await snapshot(s);
    const response = await postForm(s.url, { decision: 'approve', comment: 'Fine for the quarter', _csrf: nonce }, cookie);
    expect(response.statusCode).toBe(503);
    expectPageHeaders(response);
    expectPlainDocument(response.body);
    expect(response.body).toContain('Nothing was decided');
    expect(await snapshot(s)).toEqual(before);
  });

  it('refuses a decision other than approve or deny, and a comment over 1000 characters (400), changing nothing', async () => {
    const s = await seed();
    const { cookie, nonce } = await openForm(s.url);
    const before = await snapshot(s);
    for (const fields of [{}, { decision: 'approved' }, { decision: 'APPROVE' }, { decision: 'approve', comment: 'x'.repeat(1001) }, { decision: 'deny', comment: 'bad \u202E override' }]) {
      const response = await postForm(s.url, { ...fields, _csrf: nonce }, cookie);
      expect(response.statusCode, JSON.stringify(fields).slice(0, 60)).toBe(400);
      expectPageHeaders(response);
      expectPlainDocument(response.body);
      expect(response.body).toMatch(/nothing was decided/i);
    }
    expect(await snapshot(s)).toEqual(before);
  });

  it('answers an unknown link with the 404 page, even with a good nonce', async () => {
    const s = await seed();
    const { cookie, nonce } = await openForm(s.url);
    const response = await postForm(`/approvals/${randomBytes(32).toString('base64url')}`, { decision: 'approve', _csrf: nonce }, cookie);
    expect(response.statusCode).toBe(404);
    expect(response.body).toContain('This link is not valid');
  });
});

describe('a link that can no longer decide', () => {
  it('answers 410 "already decided" with the recorded decision to GET and to a second POST, and decides nothing', async () => {
    const s = await seed();
    const { cookie, nonce } = await openForm(s.url);
    const decidedAt = new Date('2030-01-02T03:04:00Z');
    await db.update(approvals).set({ decision: 'approved', decidedBy: s.managerId, decidedAt, decidedVia: 'email' }).where(eq(approvals.id, s.approvalId));
    await db.update(approvalTokens).set({ usedAt: decidedAt }).where(eq(approvalTokens.approvalId, s.approvalId));
    const before = await snapshot(s);

    const page = await app.inject({ method: 'GET', url: s.url });
    expect(page.statusCode).toBe(410);
    expectPageHeaders(page);
    expectPlainDocument(page.body);
    expect(page.body).toContain(`This request was already decided: approved by Grace Hopper (${s.managerId}) at <time datetime="2030-01-02T03:04:00.000Z">2030-01-02 03:04 UTC</time>.`);
    // The decision, and nothing about the request.
    expect(page.body).not.toMatch(/<form|Lovelace|Finance|Quarter close/);
    expect((await app.inject({ method: 'HEAD', url: s.url })).statusCode).toBe(410);

    // The second POST (no Temporal here: it must not even try) shows the same page.
    const second = await postForm(s.url, { decision: 'deny', _csrf: nonce }, cookie);
    expect(second.statusCode).toBe(410);
    expect(second.body).toContain('This request was already decided: approved by Grace Hopper');
    expect(await snapshot(s)).toEqual(before);
  });

  it('names the decision when another approver of the stage (after an escalation) decided', async () => {
    const s = await seed();
    const escalatedTo = uniqueEmployeeId('X');
    await person(escalatedTo, 'Katherine', 'Johnson');
    const [escalation] = await db
      .insert(approvals)
      .values({ requestId: s.requestId, stage: 1, role: 'escalation', approver: escalatedTo, escalatedFrom: s.approvalId, dueAt: new Date(Date.now() + HOUR) })
      .returning({ id: approvals.id });
    await db.update(approvals).set({ decision: 'denied', decidedBy: escalatedTo, decidedAt: new Date(), decidedVia: 'api' }).where(eq(approvals.id, escalation!.id));
    const response = await app.inject({ method: 'GET', url: s.url });
    expect(response.statusCode).toBe(410);
    expect(response.body).toContain(`This request was already decided: denied by Katherine Johnson (${escalatedTo}) at`);
    const view = await approvalByToken(db, s.token);
    expect(view?.token).toMatchObject({ state: 'used', decision: 'denied', decidedBy: { id: escalatedTo, name: 'Katherine Johnson' } });
  });

  it('answers 410 "expired" for a link past its time or a stage that ran out, and "withdrawn" for a cancelled one', async () => {
    const late = await seed({ tokenExpiresAt: new Date(Date.now() - 1_000) });
    // Closing a stage nobody decided also uses its links up (activities/requests.ts closeStage).
    const stageExpired = await seed();
    await db.update(approvals).set({ decision: 'expired', decidedAt: new Date(), decidedVia: 'engine' }).where(eq(approvals.id, stageExpired.approvalId));
    await db.update(approvalTokens).set({ usedAt: new Date() }).where(eq(approvalTokens.approvalId, stageExpired.approvalId));
    const withdrawn = await seed();
    await db.update(approvals).set({ decision: 'cancelled', decidedAt: new Date(), decidedVia: 'engine' }).where(eq(approvals.id, withdrawn.approvalId));
    await db.update(approvalTokens).set({ usedAt: new Date() }).where(eq(approvalTokens.approvalId, withdrawn.approvalId));
    const requestCancelled = await seed();
    await db.update(accessRequests).set({ status: 'cancelled' }).where(eq(accessRequests.id, requestCancelled.requestId));

    for (const [s, heading] of [
      [late, 'This link has expired'],
      [stageExpired, 'This link has expired'],
      [withdrawn, 'This request was withdrawn'],
      [requestCancelled, 'This request was withdrawn'],
    ] as const) {
      const before = await snapshot(s);
      const response = await app.inject({ method: 'GET', url: s.url });
      expect(response.statusCode, heading).toBe(410);
      expectPageHeaders(response);
      expectPlainDocument(response.body);
      expect(response.body).toContain(`<h1>${heading}</h1>`);
      expect(response.body).not.toMatch(/<form|Lovelace|Finance/);
      expect(await snapshot(s)).toEqual(before);
    }
    expect((await approvalByToken(db, late.token))?.token).toEqual({ state: 'expired', reason: 'expired' });
    // The same link was open a moment before it expired.
    const opensUntil = await seed({ tokenExpiresAt: new Date(Date.now() + HOUR) });
    expect((await approvalByToken(db, opensUntil.token, new Date(Date.now() + 2 * HOUR)))?.token).toEqual({ state: 'expired', reason: 'expired' });
    expect((await approvalByToken(db, opensUntil.token))?.token).toEqual({ state: 'open' });
  });
});

describe('the view and the comment', () => {
  it('finds a link only by its exact token', async () => {
    const s = await seed();
    expect(await approvalByToken(db, s.token)).toMatchObject({ requestId: s.requestId, approvalId: s.approvalId, stage: 1, role: 'manager', entitlement: { id: s.entitlementId, risk: 'high', kind: 'group' } });
    expect(await approvalByToken(db, hashToken(s.token))).toBeNull();
    expect(await approvalByToken(db, s.token.toUpperCase() === s.token ? s.token.toLowerCase() : s.token.toUpperCase())).toBeNull();
    expect(await approvalByToken(db, '')).toBeNull();
    const [tokenRow] = await db.select().from(approvalTokens).where(and(eq(approvalTokens.approvalId, s.approvalId)));
    expect(tokenRow!.tokenHash).toMatch(/^[0-9a-f]{64}$/);
    expect(tokenRow!.tokenHash).not.toContain(s.token);
  });

  it('keeps a comment as one trimmed line, and refuses what the text rule refuses', () => {
    expect(commentFromForm(undefined)).toEqual({ comment: null });
    expect(commentFromForm('  \r\n ')).toEqual({ comment: null });
    expect(commentFromForm(' Fine\r\nfor Q3 \n')).toEqual({ comment: 'Fine for Q3' });
    expect(commentFromForm('x'.repeat(1000))).toEqual({ comment: 'x'.repeat(1000) });
    expect(commentFromForm('x'.repeat(1001))).toHaveProperty('problem');
    expect(commentFromForm('a\u0000b')).toHaveProperty('problem');
  });
});

describe('the logs', () => {
  it('never carry the token of a link', async () => {
    const lines: string[] = [];
    const handle = createDb(testEnv.databaseUrl, { max: 2 });
    const queue = createHrEventQueue(redisConnection(testEnv.redisUrl, 'producer'), `${testEnv.redisPrefix}:${uniqueName('approval-page-logs')}`);
    const logged = await buildApp({
      db: handle.db,
      hrEventQueue: queue,
      webhookSecrets: [],
      config: testConfig(testEnv.ldap),
      publicUrl: 'https://jml.test',
      // Test double: the health probes are not what this test looks at.
      health: { redis: async () => {}, temporal: async () => {} },
      logger: { level: 'debug', stream: { write: (line: string) => lines.push(line) } },
      metrics: createMetricsRegistry({ defaultMetrics: false }),
    });
    try {
      const s = await seed();
      const { cookie, nonce } = await openForm(s.url, logged);
      await postForm(s.url, { decision: 'approve', _csrf: nonce }, cookie, logged);
      await logged.inject({ method: 'HEAD', url: s.url });
      expect(lines.some((line) => line.includes('/approvals/[token]'))).toBe(true);
      expect(lines.join('\n')).not.toContain(s.token);
      expect(lines.join('\n')).not.toContain(nonce);
    } finally {
      await logged.close();
      await queue.close();
      await handle.close();
    }
  });
});

// The POST that decides, end to end: the real `approval` workflow on a real worker emails the
// approver through nodemailer to an in-process SMTP server; the link in that mail opens the
// page, and only the form's POST decides, through the workflow's `decide` Update.
describe('deciding through the approval workflow (real worker, real mail)', () => {
  let engine: TestEngine;
  let engineApp: FastifyInstance;
  let smtp: SmtpCapture;

  beforeAll(async () => {
    const base = testConfig(testEnv.ldap);
    const config = testConfig(testEnv.ldap, {
      entitlements: base.entitlements.map((e) => (e.id === 'sales' ? { ...e, name: 'Sales pipeline', requestable: true, risk: 'high' } : e)),
    });
    smtp = await startSmtpCapture();
    engine = await startTestEngine({ config, smtpUrl: smtp.url, publicUrl: 'http://jml.test' });
    engineApp = await buildTestApp(engine);
  });
  afterAll(async () => {
    await engineApp?.close();
    await engine?.stop();
    await smtp?.stop();
  });

  /** A manager and their report, who asks for the sales group for 8 hours; its first stage's workflow started. */
  async function pendingStage() {
    const managerId = uniqueEmployeeId('M');
    const subjectId = uniqueEmployeeId('S');
    await engine.db.insert(identities).values({ employeeId: managerId, status: 'active', attributes: { givenName: 'Grace', familyName: 'Hopper', email: emailOf(managerId) } });
    const [subject] = await engine.db
      .insert(identities)
      .values({ employeeId: subjectId, status: 'active', attributes: { givenName: 'Ada', familyName: 'Lovelace', email: emailOf(subjectId), managerId } })
      .returning({ id: identities.id });
    const [request] = await engine.db
      .insert(accessRequests)
      .values({ idempotencyKey: uniqueName('request'), identityId: subject!.id, entitlementId: 'sales', kind: 'requested', status: 'pending_approval', requestedBy: subjectId, justification: 'Pipeline review', durationMs: 8 * HOUR })
      .returning({ id: accessRequests.id });
    const requestId = request!.id;
    const input: ApprovalInput = { requestId, stage: 1, role: 'manager', subjectId, requesterId: subjectId, timeoutMs: HOUR, reminderAfterMs: 0, escalateAfterMs: 0 };
    const handle = await engine.client.workflow.start('approval', { workflowId: approvalWorkflowId(requestId, 1), taskQueue: engine.taskQueue, args: [input] });
    const mail = await parseMail(await smtp.waitFor((m) => m.to.includes(emailOf(managerId)), 30_000));
    expect(mail.link).toMatch(/^http:\/\/jml\.test\/approvals\/[A-Za-z0-9_-]{43}$/);
    return { managerId, subjectId, requestId, handle, url: new URL(mail.link!).pathname };
  }

  async function stageRows(requestId: string) {
    const rows = await engine.db.select().from(approvals).where(eq(approvals.requestId, requestId));
    const tokens = await engine.db.select().from(approvalTokens).where(inArray(approvalTokens.approvalId, rows.map((r) => r.id)));
    return { rows, tokens };
  }

  it('opens the emailed link without deciding, decides on the POST, and shows the decision to a second POST', async () => {
    const stage = await pendingStage();
    for (const method of ['GET', 'HEAD', 'GET'] as const) expect((await engineApp.inject({ method, url: stage.url })).statusCode).toBe(200);
    const { cookie, nonce, response } = await openForm(stage.url, engineApp);
    expect(response.body).toContain(`Ada Lovelace (${stage.subjectId})`);
    expect(response.body).toContain('Sales pipeline (sales)');
    expect(response.body).toContain('<span class="risk-high">high</span>');

    // Opened four times, decided never: the workflow still waits, no row moved.
    const opened = await stageRows(stage.requestId);
    expect(opened.rows.map((r) => r.decision)).toEqual([null]);
    expect(opened.tokens.length).toBeGreaterThan(0);
    expect(opened.tokens.every((t) => t.usedAt === null)).toBe(true);
    expect(await stage.handle.query(approvalStateQuery)).toMatchObject({ decided: null, closed: false });

    const decided = await postForm(stage.url, { decision: 'approve', comment: ' Fine\r\nfor the pipeline review ', _csrf: nonce }, cookie, engineApp);
    expect(decided.statusCode).toBe(200);
    expectPageHeaders(decided);
    expectPlainDocument(decided.body);
    expect(decided.body).toContain(`<h1>You approved Sales pipeline (sales) for Ada Lovelace (${stage.subjectId})</h1>`);
    expect(await stage.handle.result()).toEqual({ decision: 'approved', decidedBy: stage.managerId, reason: null });

    const after = await stageRows(stage.requestId);
    expect(after.rows).toHaveLength(1);
    expect(after.rows[0]).toMatchObject({ decision: 'approved', decidedBy: stage.managerId, decidedVia: 'email', comment: 'Fine for the pipeline review' });
    expect(after.tokens.every((t) => t.usedAt !== null)).toBe(true);

    // The same form again (a double click, the back button): the recorded decision, never a second one.
    const again = await postForm(stage.url, { decision: 'deny', _csrf: nonce }, cookie, engineApp);
    expect(again.statusCode).toBe(410);
    expect(again.body).toContain(`This request was already decided: approved by Grace Hopper (${stage.managerId}) at`);
    expect((await engineApp.inject({ method: 'GET', url: stage.url })).statusCode).toBe(410);
    const decisions = await engine.db
      .select({ count: sql<number>`count(*)::int` })
      .from(auditLog)
      .where(and(eq(auditLog.subjectId, after.rows[0]!.id), inArray(auditLog.action, ['approval.approved', 'approval.denied'])));
    expect(decisions[0]!.count).toBe(1);
    expect((await stageRows(stage.requestId)).rows[0]).toMatchObject({ decision: 'approved' });
  });

  it('denies through the form', async () => {
    const stage = await pendingStage();
    const { cookie, nonce } = await openForm(stage.url, engineApp);
    const denied = await postForm(stage.url, { decision: 'deny', _csrf: nonce }, cookie, engineApp);
    expect(denied.statusCode).toBe(200);
    expect(denied.body).toContain(`<h1>You denied Sales pipeline (sales) for Ada Lovelace (${stage.subjectId})</h1>`);
    expect(await stage.handle.result()).toEqual({ decision: 'denied', decidedBy: stage.managerId, reason: null });
    expect((await stageRows(stage.requestId)).rows[0]).toMatchObject({ decision: 'denied', decidedVia: 'email', comment: null });
  });

  it('answers 410 and changes nothing when the stage has no workflow any more', async () => {
    // The rows say open, but no workflow waits for this stage (it ended, or was never started).
    const s = await seed({ on: engine.db });
    const { cookie, nonce } = await openForm(s.url, engineApp);
    const before = await snapshot(s, engine.db);
    const response = await postForm(s.url, { decision: 'approve', _csrf: nonce }, cookie, engineApp);
    expect(response.statusCode).toBe(410);
    expectPlainDocument(response.body);
    expect(response.body).toContain('This approval is closed');
    expect(await snapshot(s, engine.db)).toEqual(before);
  });
});
