// The mail layer through real SMTP: createMailer (nodemailer) sends to the embedded catcher
// (smtp-server), which keeps .eml files that mailparser reads back, and the local mailbox
// pages show them to loopback only.
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorHandler, notFoundHandler, PROBLEM_TYPES, zodValidatorCompiler } from '../../api/problem.js';
import { mailboxRoutes } from '../../api/routes/mailbox.js';
import { freePort } from '../../scripts/free-port.js';
import { isCaughtMailId, listCaughtMail, readCaughtMail, startMailCatcher, type MailCatcher } from '../../services/mail-catcher.js';
import { approvalMail } from '../../services/mail-templates.js';
import { createMailer, MailError, type Mailer } from '../../services/mailer.js';

const REVIEW_URL = 'https://jml.example.com/approvals/tok_0123456789abcdef';
const HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>';

describe('mail catcher, mailer and mailbox', () => {
  let root: string;
  let dir: string;
  let catcher: MailCatcher;
  let mailer: Mailer;
  let app: FastifyInstance;
  let caughtId: string;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'jml-mail-'));
    dir = join(root, 'data', 'mail');
    catcher = await startMailCatcher({ dir });
    mailer = createMailer({ smtpUrl: catcher.url, from: 'jml-engine <jml@example.com>' });

    // A bare app: the mailbox plugin and the project's problem handlers, nothing else.
    app = Fastify({ logger: false });
    app.setErrorHandler(errorHandler);
    app.setValidatorCompiler(zodValidatorCompiler);
    app.setNotFoundHandler(notFoundHandler);
    await app.register(mailboxRoutes, { dir, publicUrl: 'http://jml.local:3000' });
    await app.ready();
  });

  afterAll(async () => {
    await mailer?.close();
    await app?.close();
    await catcher?.stop();
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('listens on loopback and keeps what nodemailer sends as a private .eml file', async () => {
    expect(catcher.url).toBe(`smtp://127.0.0.1:${catcher.port}`);
    const mail = approvalMail({
      kind: 'request',
      requestId: 'req-catch-1',
      subject: { employeeId: 'E1001', name: 'Ada Lovelace' },
      entitlement: { id: 'prod-admin', name: 'Production admin', risk: 'high', target: 'corp-ldap' },
      justification: HOSTILE,
      duration: '8h',
      dueAt: '2026-12-03T09:00:00Z',
      reviewUrl: REVIEW_URL,
    });
    await mailer.send({ to: 'grace@example.com', ...mail, messageId: '<req-catch-1.request@jml>' });

    const files = await readdir(dir);
    const emls = files.filter((f) => f.endsWith('.eml'));
    expect(emls).toHaveLength(1);
    expect(files.filter((f) => f.endsWith('.partial'))).toEqual([]);
    caughtId = emls[0]!.slice(0, -4);
    expect(isCaughtMailId(caughtId)).toBe(true);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    expect((await stat(join(dir, emls[0]!))).mode & 0o777).toBe(0o600);

    const [listed] = await listCaughtMail(dir, 10);
    expect(listed?.id).toBe(caughtId);
    const caught = await readCaughtMail(dir, caughtId);
    expect(caught).toMatchObject({ id: caughtId, to: 'grace@example.com', subject: mail.subject });
    expect(caught?.from).toContain('jml@example.com');
    expect(caught?.text).toContain(`Review request: ${REVIEW_URL}`);
    expect(caught?.html).toContain(`href="${REVIEW_URL}"`);
    expect(caught?.html).not.toContain('<script>');
    expect(Number.isNaN(Date.parse(caught!.date))).toBe(false);
  });

  it('lists newest first and keeps ids to what its writer produces', async () => {
    await mailer.send({ to: 'bob@example.com', subject: 'second', text: 'second message', html: '<p>second</p>' });
    const mails = await listCaughtMail(dir, 10);
    expect(mails.map((m) => m.subject)).toEqual(['second', expect.stringContaining('Access request to review')]);
    expect(await listCaughtMail(dir, 1)).toHaveLength(1);

    for (const bad of ['../../etc/passwd', '..', `${caughtId}.eml`, `../mail/${caughtId}`, '', 'x']) {
      expect(await readCaughtMail(dir, bad)).toBeUndefined();
    }
    expect(await readCaughtMail(dir, '20000101T000000000Z-0000000000000000')).toBeUndefined();
  });

  it('shows the mailbox to loopback: the list, and a message with escaped text and a sandboxed HTML part', async () => {
    const list = await app.inject({ method: 'GET', url: '/dev/mail', remoteAddress: '127.0.0.1' });
    expect(list.statusCode).toBe(200);
    expect(list.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(list.headers['content-security-policy']).toContain("default-src 'none'");
    expect(list.body).toContain(`href="/dev/mail/${caughtId}"`);
    expect(list.body).toContain('Access request to review: Production admin (prod-admin) for Ada Lovelace (E1001)');

    const page = await app.inject({ method: 'GET', url: `/dev/mail/${caughtId}`, remoteAddress: '::1' });
    expect(page.statusCode).toBe(200);
    // The text part's link is clickable; the hostile reason is text.
    expect(page.body).toContain(`<a href="${REVIEW_URL}">${REVIEW_URL}</a>`);
    expect(page.body).toContain('&#60;script&#62;alert(&#34;x&#34;)&#60;/script&#62;');
    expect(page.body).not.toMatch(/<script|<img/i);
    // The HTML part: in a frame that may run nothing and reach nothing of this page.
    const frame = /<iframe [^>]*sandbox="([^"]*)"[^>]*srcdoc="([^"]*)"/.exec(page.body);
    expect(frame?.[1]).not.toMatch(/allow-scripts|allow-same-origin/);
    expect(frame?.[2]).toContain('Review request');
    expect(frame?.[2]).toContain('&#60;base target=&#34;_blank&#34;&#62;');

    // ::ffff:127.0.0.1 is loopback too, and PUBLIC_URL's host is accepted.
    const mapped = await app.inject({ method: 'GET', url: '/dev/mail', remoteAddress: '::ffff:127.0.0.1', headers: { host: 'jml.local:3000' } });
    expect(mapped.statusCode).toBe(200);
  });

  it('answers anyone else, a forwarded request and a foreign Host with the 404 of a missing route', async () => {
    const attempts = [
      { remoteAddress: '10.0.0.5', url: '/dev/mail' },
      { remoteAddress: '192.168.1.20', url: `/dev/mail/${caughtId}` },
      { remoteAddress: '127.0.0.1', url: '/dev/mail', headers: { 'x-forwarded-for': '203.0.113.9' } },
      { remoteAddress: '127.0.0.1', url: '/dev/mail', headers: { forwarded: 'for=203.0.113.9' } },
      // DNS rebinding: a page on evil.example that resolves to 127.0.0.1.
      { remoteAddress: '127.0.0.1', url: `/dev/mail/${caughtId}`, headers: { host: 'evil.example:3000' } },
    ];
    for (const attempt of attempts) {
      const res = await app.inject({ method: 'GET', ...attempt });
      expect(res.statusCode, JSON.stringify(attempt)).toBe(404);
      expect(res.headers['content-type']).toContain('application/problem+json');
      expect(res.json()).toMatchObject({ type: PROBLEM_TYPES.notFound, status: 404 });
      expect(res.body).not.toContain('Access request');
    }
  });

  it('refuses path traversal and unknown ids with 404', async () => {
    for (const url of ['/dev/mail/..%2F..%2Fetc%2Fpasswd', '/dev/mail/%2E%2E', `/dev/mail/${caughtId}.eml`, '/dev/mail/20000101T000000000Z-0000000000000000']) {
      const res = await app.inject({ method: 'GET', url, remoteAddress: '127.0.0.1' });
      expect(res.statusCode, url).toBe(404);
      expect(res.json()).toMatchObject({ type: PROBLEM_TYPES.notFound });
    }
  });

  it('refuses to listen beyond loopback', async () => {
    await expect(startMailCatcher({ dir, host: '0.0.0.0' })).rejects.toThrow(/loopback only/);
  });
});

describe('createMailer', () => {
  it('without SMTP_URL rejects every send, saying so', async () => {
    const mailer = createMailer({ smtpUrl: undefined, from: 'jml@example.com' });
    await expect(mailer.send({ to: 'ada@example.com', subject: 's', text: 't', html: '<p>t</p>' })).rejects.toThrow(/SMTP_URL is not set/);
    await mailer.close();
  });

  it('throws when the server is down, with no address in the error', async () => {
    const port = await freePort(); // nothing listens there
    const mailer = createMailer({ smtpUrl: `smtp://127.0.0.1:${port}`, from: 'jml@example.com' });
    try {
      const err = await mailer.send({ to: 'ada@example.com', subject: 'secret subject', text: 't', html: '<p>t</p>' }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(MailError);
      expect((err as MailError).code).toBe('ESOCKET');
      expect((err as MailError).message).not.toMatch(/ada@example\.com|secret subject/);
    } finally {
      await mailer.close();
    }
  });

  it('refuses a recipient list or display name, and a URL that is not smtp(s)', async () => {
    const mailer = createMailer({ smtpUrl: 'smtp://127.0.0.1:1', from: 'jml@example.com' });
    for (const to of ['ada@example.com, eve@example.com', 'Ada <ada@example.com>', 'ada@example.com\r\nBcc: eve@example.com']) {
      await expect(mailer.send({ to, subject: 's', text: 't', html: 'h' })).rejects.toMatchObject({ code: 'EINVALIDRECIPIENT', permanent: true });
    }
    await mailer.close();
    expect(() => createMailer({ smtpUrl: 'http://mail.example.com', from: 'jml@example.com' })).toThrow(/smtp:\/\/ or smtps:\/\//);
  });
});
