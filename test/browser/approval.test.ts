// The approval, end to end in a real browser: a request through the API, the approver's mail
// through a real SMTP server, the emailed link opened in Debian's Chromium (playwright-core,
// no browser downloaded), Approve clicked, the confirmation seen, and the group proven in
// slapd. The page is saved as a screenshot, an artifact of the run.
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiToken } from '../../api/auth.js';
import { testConfig } from '../support/config.js';
import { eventually, type TestEngine } from '../support/engine.js';
import { testEnv, uniqueEmployeeId } from '../support/env.js';
import { emailOf, hire, parseMail, startListeningEngine, statuses } from '../support/requests.js';
import type { SmtpCapture } from '../support/smtp.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('../.artifacts/', import.meta.url));
const SCREENSHOT = `${ARTIFACTS}approval-decided.png`;

let engine: TestEngine;
let smtp: SmtpCapture;
let stop: (() => Promise<void>) | undefined;
let browser: Browser;
let origin: string;
const manager = uniqueEmployeeId('M');
const subject = uniqueEmployeeId('S');

beforeAll(async () => {
  const base = testConfig(testEnv.ldap);
  // The links in mail point at where this test's API listens.
  ({ engine, smtp, origin, stop } = await startListeningEngine(testConfig(testEnv.ldap, { entitlements: base.entitlements.map((e) => (e.id === 'sales' ? { ...e, requestable: true, name: 'Sales team', risk: 'medium' } : e)) })));
  await hire(engine, manager);
  await hire(engine, subject, { managerId: manager, givenName: 'Grace', familyName: 'Hopper' });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-background-networking'] });
}, 120_000);
afterAll(async () => {
  await browser?.close();
  await stop?.();
});

describe('approving from the emailed link in a browser', () => {
  it('opens the page from the mail, approves, shows the confirmation, and the group is granted', async () => {
    const { token } = await createApiToken(engine.db, { name: 'grace', scopes: ['requests:write'], employeeId: subject });
    const response = await fetch(`${origin}/api/v1/access-requests`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ entitlementId: 'sales', justification: 'covering the Q4 pipeline review' }),
    });
    expect(response.status).toBe(201);
    const created = (await response.json()) as { id: string; requestStatus: string; grantStatus: string | null };
    expect(created).toMatchObject({ requestStatus: 'pending_approval', grantStatus: null });

    const mail = await parseMail(await smtp.waitFor((m) => m.to.includes(emailOf(manager)) && m.raw.includes(subject), 20_000));
    expect(mail.link?.startsWith(`${origin}/approvals/`)).toBe(true);

    const page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    const opened = await page.goto(mail.link!);
    expect(opened?.status()).toBe(200);
    await expect(page.locator('main').textContent()).resolves.toMatch(/Grace Hopper/);
    await expect(page.locator('main').textContent()).resolves.toMatch(/covering the Q4 pipeline review/);
    // Opening the page decided nothing.
    expect((await statuses(engine, created.id)).requestStatus).toBe('pending_approval');

    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: `${ARTIFACTS}approval-review.png`, fullPage: true });
    await page.locator('textarea[name="comment"]').fill('ok for the quarter');
    await page.locator('button[value="approve"]').click();
    await page.locator('h1', { hasText: /You approved/ }).waitFor({ state: 'visible' });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(errors).toEqual([]);

    const granted = await eventually(async () => {
      const s = await statuses(engine, created.id);
      return s.grantStatus === 'active' && s;
    }, 30_000);
    expect(granted).toMatchObject({ requestStatus: 'approved', revocationStatus: null });
    expect(await engine.connector.isGroupMember(subject, `cn=sales,${testEnv.ldap.groupsDN}`)).toBe(true);

    // The same link again: the decision stands, and the page says so.
    const again = await page.goto(mail.link!);
    expect(again?.status()).toBe(410);
    await expect(page.locator('main').textContent()).resolves.toMatch(/already decided|approved/i);
  });
});
