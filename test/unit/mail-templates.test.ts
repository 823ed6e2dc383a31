import { describe, expect, it } from 'vitest';
import { approvalMail, escapeHtml, requesterMail, type ApprovalMailInput, type ApprovalMailKind, type RequesterMailInput, type RequesterMailKind } from '../../services/mail-templates.js';

const HOSTILE = `<script>alert("x")</script><img src=x onerror=alert(1)> & 'quoted' "double"`;
const HOSTILE_LINE = `Mallory\r\nBcc: victim@example.com\n<b>bold</b>\u202Eevil`;

const approvalInput = (over: Partial<ApprovalMailInput> = {}): ApprovalMailInput => ({
  kind: 'request',
  requestId: 'req-0001',
  subject: { employeeId: 'E1001', name: 'Ada Lovelace' },
  requester: { employeeId: 'E0001', name: 'Grace Hopper' },
  entitlement: { id: 'prod-admin', name: 'Production admin', risk: 'high', target: 'corp-ldap' },
  justification: 'Incident response\nfor the payments outage',
  duration: '8h',
  dueAt: '2026-12-03T09:00:00.000Z',
  reviewUrl: 'https://jml.example.com/approvals/tok_abc',
  ...over,
});

const requesterInput = (over: Partial<RequesterMailInput> = {}): RequesterMailInput => ({
  kind: 'approved',
  requestId: 'req-0001',
  subject: { employeeId: 'E1001', name: 'Ada Lovelace' },
  entitlement: { id: 'prod-admin', name: 'Production admin', risk: 'high', target: 'corp-ldap' },
  decidedBy: { employeeId: 'E0001', name: 'Grace Hopper' },
  statusUrl: 'https://jml.example.com/requests/req-0001',
  ...over,
});

const APPROVAL_KINDS: ApprovalMailKind[] = ['request', 'reminder', 'escalation', 'mover_review'];
const REQUESTER_KINDS: RequesterMailKind[] = ['approved', 'denied', 'expired', 'cancelled', 'granted', 'grant_failed', 'removed', 'retained', 'revoke_failed'];

/** Every href in the HTML part. */
const hrefs = (html: string) => [...html.matchAll(/href="([^"]*)"/g)].map((m) => m[1]);
/** Every http(s) URL in the text part. */
const textUrls = (text: string) => text.match(/https?:\/\/\S+/g) ?? [];

describe('escapeHtml', () => {
  it('escapes the five characters that matter in content and attributes', () => {
    expect(escapeHtml(`<a href="x" title='y'>&</a>`)).toBe('&#60;a href=&#34;x&#34; title=&#39;y&#39;&#62;&#38;&#60;/a&#62;');
  });
});

describe('approval mail', () => {
  it.each(APPROVAL_KINDS)('%s: one link, labelled "Review request", in HTML and text', (kind) => {
    const mail = approvalMail(approvalInput({ kind, silentApprover: { employeeId: 'E0002', name: 'Bob' }, defaultAtDeadline: 'remove' }));
    expect(hrefs(mail.html)).toEqual(['https://jml.example.com/approvals/tok_abc']);
    expect(mail.html.match(/<a\b/g)).toHaveLength(1);
    expect(mail.html).toMatch(/<a [^>]*>Review request<\/a>/);
    expect(textUrls(mail.text)).toEqual(['https://jml.example.com/approvals/tok_abc']);
    expect(mail.text).toContain('Review request: https://jml.example.com/approvals/tok_abc');
    // Never a link or button that decides by being opened.
    for (const part of [mail.html, mail.text]) {
      expect(part).not.toMatch(/approve\?|deny\?|decision=|\/approve\b|\/deny\b/i);
      expect(part).not.toMatch(/>\s*(approve|deny)\s*</i);
    }
  });

  it('says who asks, for whom, for what, why, for how long and by when, in both parts', () => {
    const mail = approvalMail(approvalInput());
    for (const part of [mail.text, mail.html]) {
      expect(part).toContain('Grace Hopper (E0001)');
      expect(part).toContain('Ada Lovelace (E1001)');
      expect(part).toContain('Production admin (prod-admin)');
      expect(part).toContain('corp-ldap');
      expect(part).toContain('high');
      expect(part).toContain('Incident response');
      expect(part).toContain('for the payments outage');
      expect(part).toContain('8h');
      expect(part).toContain('2026-12-03 09:00 UTC');
      expect(part).toContain('req-0001');
    }
    expect(mail.text).toContain('Asked by: Grace Hopper (E0001)');
    // Free text is quoted in the text part, so it cannot pass for the mail's own lines.
    expect(mail.text).toContain('  > Incident response\n  > for the payments outage');
  });

  it('leaves the requester out when they ask for themselves, and says "until removed" without a duration', () => {
    const mail = approvalMail(approvalInput({ requester: { employeeId: 'E1001' }, duration: null, justification: null }));
    expect(mail.text).not.toContain('Asked by');
    expect(mail.text).toContain('Ada Lovelace (E1001) asks for access to Production admin (prod-admin).');
    expect(mail.text).toContain('For how long: until removed');
    expect(mail.text).toContain('(none given)');
  });

  it('escalation names who was silent; mover review says what happens at the deadline', () => {
    const escalation = approvalMail(approvalInput({ kind: 'escalation', silentApprover: { employeeId: 'E0002', name: 'Bob Boss' } }));
    expect(escalation.subject).toMatch(/^Escalated:/);
    expect(escalation.text).toContain('Bob Boss (E0002) did not decide in time');
    expect(escalation.html).toContain('Did not decide');

    const removeByDefault = approvalMail(approvalInput({ kind: 'mover_review', defaultAtDeadline: 'remove', moveDetail: 'from Engineering to Finance' }));
    expect(removeByDefault.text).toContain('Ada Lovelace (E1001) has moved from Engineering to Finance.');
    expect(removeByDefault.text).toMatch(/keep this access or it is removed/);
    expect(removeByDefault.text).toContain('If nobody decides by then, it is removed.');
    expect(removeByDefault.text).toContain('If nobody decides: the access is removed');
    const keepByDefault = approvalMail(approvalInput({ kind: 'mover_review', defaultAtDeadline: 'keep' }));
    expect(keepByDefault.text).toContain('If nobody decides by then, they keep it.');
  });

  it('escapes every hostile value in the HTML and keeps the subject on one line', () => {
    const mail = approvalMail(
      approvalInput({
        subject: { employeeId: 'E1001', name: HOSTILE_LINE },
        requester: { employeeId: 'E6666', name: HOSTILE },
        entitlement: { id: 'x"><script>', name: HOSTILE, risk: 'low', target: '<t>' },
        justification: HOSTILE,
        duration: '<8h>',
        stage: { number: 1, of: 2, role: '<manager>' },
      }),
    );
    expect(mail.html).not.toMatch(/<script|<img|<b>|onerror=alert\(1\)>|x"><script|<t>|<8h>|<manager>/);
    expect(mail.html).toContain('&#60;script&#62;alert(&#34;x&#34;)&#60;/script&#62;');
    expect(mail.html).toContain('&#38; &#39;quoted&#39;');
    // The only elements are the template's own.
    const tags = new Set([...mail.html.matchAll(/<\/?([a-z0-9!]+)/gi)].map((m) => m[1]!.toLowerCase()));
    const allowed = new Set(['!doctype', 'a', 'body', 'br', 'h1', 'h2', 'head', 'html', 'main', 'meta', 'p', 'table', 'tbody', 'td', 'th', 'title', 'tr']);
    expect([...tags].filter((tag) => !allowed.has(tag))).toEqual([]);
    expect(mail.subject).not.toMatch(/[\r\n\u202e]/);
    expect(mail.subject).toContain('Mallory Bcc: victim@example.com <b>bold</b> evil');
    // A name cannot start a line of its own in the text part (a forged header or link).
    expect(mail.text).not.toMatch(/^Bcc:/m);
    expect(mail.text).not.toContain('\r');
  });

  it('refuses a link that is not http(s)', () => {
    expect(() => approvalMail(approvalInput({ reviewUrl: 'javascript:alert(1)' }))).toThrow(/http or https/);
    expect(() => approvalMail(approvalInput({ reviewUrl: '/approvals/tok' }))).toThrow(/absolute URL/);
  });

  it('is an accessible HTML document', () => {
    const mail = approvalMail(approvalInput());
    expect(mail.html.startsWith('<!doctype html>\n<html lang="en">')).toBe(true);
    expect(mail.html).toContain(`<title>${escapeHtml(mail.subject)}</title>`);
    expect(mail.html).toMatch(/<h1[^>]*>[^<]+<\/h1>/);
    expect(mail.html).toMatch(/<th scope="row"[^>]*>Decide by<\/th>/);
    expect(mail.html).not.toMatch(/<script|<img|<style|<link|class=/i);
  });

  it('caps a long subject', () => {
    const mail = approvalMail(approvalInput({ subject: { employeeId: 'E1001', name: 'A'.repeat(500) } }));
    expect(mail.subject.length).toBeLessThanOrEqual(200);
    expect(mail.subject.endsWith('…')).toBe(true);
  });
});

describe('requester mail', () => {
  it.each(REQUESTER_KINDS)('%s: a text part, one status link, a one-line subject', (kind) => {
    const mail = requesterMail(requesterInput({ kind, comment: 'ok\r\nthanks', expiresAt: '2026-12-03T17:00:00Z', retainedBy: ['birthright rule everyone'] }));
    expect(mail.text.length).toBeGreaterThan(100);
    expect(mail.text).toContain('View request status: https://jml.example.com/requests/req-0001');
    expect(hrefs(mail.html)).toEqual(['https://jml.example.com/requests/req-0001']);
    expect(mail.subject).not.toMatch(/[\r\n]/);
    for (const part of [mail.text, mail.html]) {
      expect(part).toContain('req-0001');
      expect(part).toContain('Production admin (prod-admin)');
    }
  });

  it('grant_failed says approved but not in place, being fixed, and never claims success', () => {
    const mail = requesterMail(requesterInput({ kind: 'grant_failed', comment: 'go ahead', reason: 'the directory refused the change' }));
    for (const part of [mail.subject, mail.text, mail.html]) {
      expect(part).toMatch(/approved/i);
      expect(part).toMatch(/not in place yet/i);
      // Nothing affirmative: no "granted", "done", "success", "complete", "ready now", "you have access",
      // and "in place" only as "not in place".
      expect(part).not.toMatch(/\bgranted\b|\bdone\b|succe(ss|eded)|\bcomplete(d)?\b|you (now )?have access|access is ready/i);
      expect(part.replace(/not in place/gi, '')).not.toMatch(/in place/i);
    }
    for (const part of [mail.text, mail.html]) {
      expect(part).toMatch(/alert was raised/i);
      expect(part).toMatch(/being fixed/i);
      expect(part).toContain('corp-ldap');
    }
  });

  it('approved says it is being set up, not that the access exists', () => {
    const mail = requesterMail(requesterInput({ kind: 'approved', comment: 'fine by me' }));
    expect(mail.text).toContain('Grace Hopper (E0001) approved access to Production admin (prod-admin).');
    expect(mail.text).toMatch(/being set up/);
    expect(mail.text).not.toMatch(/\bgranted\b|you (now )?have access/i);
    expect(mail.text).toContain('Decided by: Grace Hopper (E0001)');
    expect(mail.text).toContain('  > fine by me');
  });

  it('granted with a duration says when it ends; without, until removed', () => {
    const timed = requesterMail(requesterInput({ kind: 'granted', expiresAt: '2026-12-03T17:00:00Z' }));
    expect(timed.text).toContain('It ends at 2026-12-03 17:00 UTC');
    expect(timed.text).toContain('Ends: 2026-12-03 17:00 UTC');
    const open = requesterMail(requesterInput({ kind: 'granted', expiresAt: null }));
    expect(open.text).toContain('It lasts until it is removed.');
  });

  it('retained names what keeps the access', () => {
    const mail = requesterMail(requesterInput({ kind: 'retained', retainedBy: ['birthright rule everyone', 'request req-0002'] }));
    expect(mail.text).toContain('birthright rule everyone; request req-0002');
    expect(mail.html).toContain('birthright rule everyone<br>request req-0002');
  });

  it('denied carries who decided and the comment; every hostile value is escaped', () => {
    const mail = requesterMail(requesterInput({ kind: 'denied', decidedBy: { employeeId: 'E0001', name: HOSTILE }, comment: HOSTILE, reason: HOSTILE }));
    expect(mail.html).not.toMatch(/<script|<img/);
    expect(mail.html).toContain('&#60;script&#62;');
    expect(mail.text).toMatch(/Nothing was changed on corp-ldap/);
  });

  it('revoke_failed says the access is still there', () => {
    const mail = requesterMail(requesterInput({ kind: 'revoke_failed' }));
    expect(mail.text).toMatch(/still there/);
    expect(mail.text).toMatch(/alert was raised/);
    expect(mail.text).not.toMatch(/\bremoved\b(?! yet)/i);
  });
});
