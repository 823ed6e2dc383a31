// The reference page /api/docs in a real browser (Debian's Chromium, driven by
// playwright-core; no browser is ever downloaded): it renders the operations of the API from
// /api/openapi.json's twin, and every request it makes stays on the API's own address, so
// the page works without the internet. A screenshot is saved as an artifact of the run.
import { mkdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DOCS_PATH } from '../../api/openapi.js';
import { buildAppWithoutEngine } from '../support/api.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('../.artifacts/', import.meta.url));
const SCREENSHOT = `${ARTIFACTS}api-docs.png`;

let stop: () => Promise<void>;
let app: FastifyInstance;
let origin: string;
let browser: Browser;

beforeAll(async () => {
  ({ app, stop } = await buildAppWithoutEngine('docs'));
  await app.listen({ host: '127.0.0.1', port: 0 });
  origin = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-background-networking'] });
});

afterAll(async () => {
  await browser?.close();
  await stop?.();
});

describe('the API reference page', () => {
  it('renders every operation from assets served by the API itself, and is saved as a screenshot', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const requested: string[] = [];
    const failed: string[] = [];
    const errors: string[] = [];
    page.on('request', (request) => requested.push(request.url()));
    page.on('requestfailed', (request) => failed.push(request.url()));
    page.on('response', (response) => {
      if (response.status() >= 400) failed.push(`${response.status()} ${response.url()}`);
    });
    page.on('pageerror', (error) => errors.push(error.message));
    page.on('console', (message) => {
      // A Content-Security-Policy refusal is reported here, as a console error.
      if (message.type() === 'error') errors.push(message.text());
    });

    const answer = await page.goto(`${origin}${DOCS_PATH}`);
    expect(answer?.status()).toBe(200);
    // The operations list is rendered from the document: one known operation of each tag.
    for (const path of ['/api/v1/hr/events', '/api/v1/scim/v2/Bulk', '/api/v1/identities/{id}/grants', '/api/v1/hr/batches/{id}/discard', '/api/health']) {
      await page.locator('.opblock-summary-path', { hasText: new RegExp(`^${path.replace(/[{}/]/g, '\\$&')}$`) }).first().waitFor({ state: 'visible' });
    }
    await expect(page.locator('.info .title').textContent()).resolves.toContain('jml-engine API');
    expect(await page.locator('.opblock').count()).toBeGreaterThanOrEqual(22);

    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });

    // Nothing left the API's own address. data: and blob: URLs are made in the page itself.
    const elsewhere = requested.filter((url) => !url.startsWith(`${origin}/`) && !/^(data|blob):/.test(url));
    expect(elsewhere).toEqual([]);
    expect(requested).toEqual(expect.arrayContaining([`${origin}${DOCS_PATH}/json`]));
    expect(failed).toEqual([]);
    expect(errors).toEqual([]);
  });
});
