// App-level hardening of the API, through the real app over a test engine (Postgres, Redis,
// Temporal): rate limits (per client, per token, and a stricter one for failed
// authentications, all before the body is read), the health checks' cache, the headers
// every response carries, problem documents without an echo of the input for every error
// (414 and 431 over a real socket, where Node's parser and Fastify's router answer), the
// app-wide strict JSON parser, and cursors that a client has tampered with.
import { randomBytes } from 'node:crypto';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { inArray } from 'drizzle-orm';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiToken } from '../../api/auth.js';
import { encodeCursor } from '../../api/cursor.js';
import { MAX_JSON_DEPTH } from '../../api/json-body.js';
import { PROBLEM_TYPES } from '../../api/problem.js';
import { ConfigError, parseConfig } from '../../domain/config.js';
import { hrEvents, identities } from '../../db/schema.js';
import { readEnv } from '../../services/env.js';
import { buildTestApp, newWebhookSecret, signedWebhook } from '../support/api.js';
import { eventually, startTestEngine, type TestEngine } from '../support/engine.js';
import { uniqueName } from '../support/env.js';

const HR_EVENTS = '/api/v1/hr/events';
const IDENTITIES = '/api/v1/identities';
const BATCHES = '/api/v1/hr/batches';

let engine: TestEngine;
let secret: string;
/** The app with the default limits (`failedAuthMax` 20), listening on a port for raw requests. */
let app: FastifyInstance;
let port: number;
let readToken: string;
let adminToken: string;
const apps: FastifyInstance[] = [];

beforeAll(async () => {
  engine = await startTestEngine();
  secret = newWebhookSecret();
  app = await buildTestApp(engine, { secret });
  apps.push(app);
  await app.listen({ host: '127.0.0.1', port: 0 });
  port = (app.server.address() as AddressInfo).port;
  ({ token: readToken } = await createApiToken(engine.db, { name: uniqueName('reader'), scopes: ['identities:read'] }));
  ({ token: adminToken } = await createApiToken(engine.db, { name: uniqueName('admin'), scopes: ['admin'] }));
}, 120_000);

afterAll(async () => {
  for (const a of apps) await a.close();
  await engine?.stop();
});

/** An app over the same engine whose config has these rate limits. */
async function appWithLimits(rateLimit: Record<string, unknown>, overrides: Parameters<typeof buildTestApp>[1] = {}, trustProxy: boolean | string[] = false): Promise<FastifyInstance> {
  const config = parseConfig({ targets: engine.config.targets, entitlements: engine.config.entitlements, api: { rateLimit, trustProxy } });
  const built = await buildTestApp(engine, { secret, config, ...overrides });
  apps.push(built);
  return built;
}

const hire = (employeeId: string) => ({ type: 'hire', employeeId, attributes: { givenName: 'Rate', familyName: 'Limit' } });

function expectHardenedHeaders(response: { headers: Record<string, unknown> }): void {
  expect(response.headers['cache-control']).toBe('no-store');
  expect(response.headers['x-content-type-options']).toBe('nosniff');
}

function expectProblem(response: LightMyRequestResponse, status: number): Record<string, unknown> {
  expect(response.statusCode).toBe(status);
  expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
  expectHardenedHeaders(response);
  const body = response.json() as Record<string, unknown>;
  expect(body).toMatchObject({ status });
  return body;
}

interface RawAnswer {
  status: number;
  headers: IncomingMessage['headers'];
  text: string;
}

/** One request over a real socket to the listening app; `path` and headers are sent as given. */
function raw(path: string, headers: Record<string, string> = {}): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, method: 'GET', headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

function expectRawProblem(answer: RawAnswer, status: number, marker: string): Record<string, unknown> {
  expect(answer.status).toBe(status);
  expect(answer.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(answer.headers['cache-control']).toBe('no-store');
  expect(answer.headers['x-content-type-options']).toBe('nosniff');
  // Nothing of what was sent comes back.
  expect(answer.text).not.toContain(marker);
  const body = JSON.parse(answer.text) as Record<string, unknown>;
  expect(body).toMatchObject({ status });
  expect(typeof body.title).toBe('string');
  return body;
}

describe('rate limits', () => {
  it('answers 429 with Retry-After once one client has sent too many bad webhook signatures; others still get through', async () => {
    const attacker = '198.51.100.7';
    const statuses: number[] = [];
    const ids: string[] = [];
    let lastRefusal: LightMyRequestResponse | undefined;
    for (let i = 0; i < 200; i++) {
      const request = signedWebhook(newWebhookSecret(), hire(`RL${i}`));
      ids.push(request.id);
      const response = await app.inject({ method: 'POST', url: HR_EVENTS, payload: request.payload, headers: request.headers, remoteAddress: attacker });
      statuses.push(response.statusCode);
      if (response.statusCode === 429) lastRefusal = response;
    }
    // The default failedAuthMax: twenty 401s, then every request is refused.
    const { failedAuthMax, failedAuthWindow } = engine.config.api.rateLimit;
    expect(statuses.slice(0, failedAuthMax)).toEqual(Array(failedAuthMax).fill(401));
    expect(statuses.slice(failedAuthMax)).toEqual(Array(200 - failedAuthMax).fill(429));
    const problem = expectProblem(lastRefusal!, 429);
    expect(problem).toMatchObject({ type: PROBLEM_TYPES.rateLimited, title: 'Too many requests' });
    const retryAfter = Number(lastRefusal!.headers['retry-after']);
    expect(Number.isInteger(retryAfter)).toBe(true);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(failedAuthWindow / 1000);
    // A correctly signed event from the refused client is refused too...
    const good = signedWebhook(secret, hire(`RLGOOD${randomBytes(4).toString('hex')}`));
    const refused = await app.inject({ method: 'POST', url: HR_EVENTS, payload: good.payload, headers: good.headers, remoteAddress: attacker });
    expect(refused.statusCode).toBe(429);
    // ...while another client's is accepted.
    const accepted = await app.inject({ method: 'POST', url: HR_EVENTS, payload: good.payload, headers: good.headers, remoteAddress: '198.51.100.8' });
    expect(accepted.statusCode).toBe(202);
    expectHardenedHeaders(accepted);
    // Nothing the refused requests carried was stored.
    const stored = await engine.db.select({ id: hrEvents.id }).from(hrEvents).where(inArray(hrEvents.id, [...ids, good.id]));
    expect(stored.map((r) => r.id)).toEqual([good.id]);
  });

  it('counts unknown bearer tokens as failed authentications', async () => {
    const limited = await appWithLimits({ failedAuthMax: 3 });
    const client = '198.51.100.20';
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) {
      const response = await limited.inject({ method: 'GET', url: IDENTITIES, headers: { authorization: `Bearer jml_${randomBytes(32).toString('base64url')}` }, remoteAddress: client });
      statuses.push(response.statusCode);
    }
    expect(statuses).toEqual([401, 401, 401, 429, 429]);
    // A valid token from that client is refused until the window ends; from another, served.
    expect((await limited.inject({ method: 'GET', url: IDENTITIES, headers: { authorization: `Bearer ${readToken}` }, remoteAddress: client })).statusCode).toBe(429);
    expect((await limited.inject({ method: 'GET', url: IDENTITIES, headers: { authorization: `Bearer ${readToken}` }, remoteAddress: '198.51.100.21' })).statusCode).toBe(200);
  });

  it('limits each client address, with health and metrics in a bucket of their own', async () => {
    const limited = await appWithLimits({ max: 3 });
    const client = '198.51.100.30';
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await limited.inject({ method: 'GET', url: '/api/v1/nope', remoteAddress: client })).statusCode);
    expect(statuses).toEqual([404, 404, 404, 429]);
    // Its probes still answer, and are limited on their own.
    const probes: number[] = [];
    for (let i = 0; i < 4; i++) probes.push((await limited.inject({ method: 'GET', url: i % 2 ? '/metrics' : '/api/health', remoteAddress: client })).statusCode);
    expect(probes).toEqual([200, 200, 200, 429]);
    expect((await limited.inject({ method: 'GET', url: '/api/v1/nope', remoteAddress: '198.51.100.31' })).statusCode).toBe(404);
  });

  it('limits each bearer token, whichever address it comes from', async () => {
    const limited = await appWithLimits({ max: 3 });
    const { token } = await createApiToken(engine.db, { name: uniqueName('spread'), scopes: ['identities:read'] });
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const response = await limited.inject({ method: 'GET', url: IDENTITIES, headers: { authorization: `Bearer ${token}` }, remoteAddress: `198.51.100.${40 + i}` });
      statuses.push(response.statusCode);
      if (response.statusCode === 429) expect(expectProblem(response, 429).detail).toMatch(/token/);
    }
    expect(statuses).toEqual([200, 200, 200, 429]);
    // Another token from a fresh address is counted apart.
    expect((await limited.inject({ method: 'GET', url: IDENTITIES, headers: { authorization: `Bearer ${readToken}` }, remoteAddress: '198.51.100.50' })).statusCode).toBe(200);
  });

  it('refuses a limited client before reading its body', async () => {
    const limited = await appWithLimits({ max: 1 });
    await limited.listen({ host: '127.0.0.1', port: 0 });
    const limitedPort = (limited.server.address() as AddressInfo).port;
    expect((await limited.inject({ method: 'GET', url: '/api/v1/nope', remoteAddress: '127.0.0.1' })).statusCode).toBe(404);
    // A 512 KiB body is announced, only its first bytes are sent and the request never ends:
    // the answer can only come from a check that does not wait for the body.
    const answer = await new Promise<{ status: number; retryAfter: string | undefined }>((resolve, reject) => {
      const req = httpRequest(
        { host: '127.0.0.1', port: limitedPort, path: HR_EVENTS, method: 'POST', headers: { 'content-type': 'application/json', 'content-length': String(512 * 1024) } },
        (res) => {
          res.resume();
          resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] });
          req.destroy();
        },
      );
      req.on('error', (err) => ((err as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(err)));
      // Long enough for any answer on a busy machine; a check that waits for the body never answers.
      req.setTimeout(15_000, () => reject(new Error('no answer while the body was outstanding')));
      req.write('{"type":"hire",');
    });
    expect(answer.status).toBe(429);
    expect(Number(answer.retryAfter)).toBeGreaterThanOrEqual(1);
  });

  it('counts the client a trusted proxy names (api.trustProxy), so one client behind it does not lock out the others', async () => {
    const behindProxy = await appWithLimits({ failedAuthMax: 2 }, {}, ['127.0.0.1']);
    const badSignature = (client: string) => {
      const request = signedWebhook(newWebhookSecret(), hire(uniqueName('P')));
      return behindProxy.inject({ method: 'POST', url: HR_EVENTS, payload: request.payload, headers: { ...request.headers, 'x-forwarded-for': client } });
    };
    expect((await badSignature('203.0.113.7')).statusCode).toBe(401);
    expect((await badSignature('203.0.113.7')).statusCode).toBe(401);
    expect((await badSignature('203.0.113.7')).statusCode).toBe(429);
    // Another client behind the same proxy: its own count.
    expect((await badSignature('203.0.113.8')).statusCode).toBe(401);
    // Without trustProxy, both are the proxy: one count.
    const direct = await appWithLimits({ failedAuthMax: 2 });
    for (const client of ['203.0.113.7', '203.0.113.7']) {
      const request = signedWebhook(newWebhookSecret(), hire(uniqueName('P')));
      await direct.inject({ method: 'POST', url: HR_EVENTS, payload: request.payload, headers: { ...request.headers, 'x-forwarded-for': client } });
    }
    const request = signedWebhook(newWebhookSecret(), hire(uniqueName('P')));
    expect((await direct.inject({ method: 'POST', url: HR_EVENTS, payload: request.payload, headers: { ...request.headers, 'x-forwarded-for': '203.0.113.8' } })).statusCode).toBe(429);
  });

  it('validates the config section, naming each bad key', () => {
    const base = { targets: engine.config.targets, entitlements: engine.config.entitlements };
    expect(parseConfig(base).api.rateLimit).toEqual({ max: 3_000, window: 60_000, failedAuthMax: 20, failedAuthWindow: 900_000 });
    expect(parseConfig(base).api.trustProxy).toBe(false);
    expect(parseConfig({ ...base, api: { rateLimit: { max: 50, window: '10s', failedAuthWindow: '1h' } } }).api.rateLimit).toEqual({ max: 50, window: 10_000, failedAuthMax: 20, failedAuthWindow: 3_600_000 });
    const problemsOf = (rateLimit: unknown) => {
      try {
        parseConfig({ ...base, api: { rateLimit } });
      } catch (err) {
        if (err instanceof ConfigError) return err.problems.join('\n');
        throw err;
      }
      return '';
    };
    expect(problemsOf({ max: 0 })).toMatch(/^api\.rateLimit\.max:/);
    expect(problemsOf({ failedAuthMax: 2.5 })).toMatch(/^api\.rateLimit\.failedAuthMax:/);
    expect(problemsOf({ window: '500ms' })).toMatch(/^api\.rateLimit\.window: must be at least 1s/);
    expect(problemsOf({ failedAuthWindow: 'soon' })).toMatch(/^api\.rateLimit\.failedAuthWindow:/);
    // A misspelt key is an error, not a silent default.
    expect(problemsOf({ maxx: 10 })).toMatch(/maxx/);
  });
});

describe('health', () => {
  /** Health checks that count their calls; the Redis one waits for `release` while it is closed. */
  function countingChecks() {
    const calls = { redis: 0, temporal: 0 };
    let open: () => void = () => undefined;
    let gate: Promise<void> = Promise.resolve();
    return {
      calls,
      close: () => {
        gate = new Promise<void>((resolve) => (open = resolve));
      },
      release: () => open(),
      health: {
        redis: async () => {
          calls.redis += 1;
          await gate;
        },
        temporal: async () => {
          calls.temporal += 1;
        },
      },
    };
  }

  it('shares one round of checks between concurrent calls', async () => {
    const checks = countingChecks();
    // No cache after a round: what is shared here is only the round in flight.
    const probed = await buildTestApp(engine, { secret, health: checks.health, healthCacheMs: 0 });
    apps.push(probed);
    checks.close();
    const answers = Array.from({ length: 5 }, () => probed.inject({ method: 'GET', url: '/api/health' }));
    await eventually(async () => checks.calls.redis === 1);
    checks.release();
    for (const answer of await Promise.all(answers)) {
      expect(answer.statusCode).toBe(200);
      expect(answer.json()).toMatchObject({ status: 'ok', reasons: [], checks: { postgres: 'ok', redis: 'ok', temporal: 'ok' } });
    }
    expect(checks.calls).toEqual({ redis: 1, temporal: 1 });
    // That round is over: the next call checks again.
    expect((await probed.inject({ method: 'GET', url: '/api/health' })).statusCode).toBe(200);
    expect(checks.calls).toEqual({ redis: 2, temporal: 2 });
  });

  it('answers from the last round while it is fresh', async () => {
    const checks = countingChecks();
    const probed = await buildTestApp(engine, { secret, health: checks.health, healthCacheMs: 60_000 });
    apps.push(probed);
    for (let i = 0; i < 10; i++) {
      const answer = await probed.inject({ method: 'GET', url: '/api/health', remoteAddress: `198.51.100.${60 + i}` });
      expect(answer.statusCode).toBe(200);
      expectHardenedHeaders(answer);
    }
    expect(checks.calls).toEqual({ redis: 1, temporal: 1 });
  });

  it('answers a request that arrives while the app closes with a 503 problem', async () => {
    const checks = countingChecks();
    const closing = await buildTestApp(engine, { secret, health: checks.health, healthCacheMs: 0 });
    await closing.listen({ host: '127.0.0.1', port: 0 });
    checks.close();
    // One keep-alive connection: a first request held in its health check while the app
    // begins to close, then a second one on the same connection once the first is answered.
    const socket = connect((closing.server.address() as AddressInfo).port, '127.0.0.1');
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (received += chunk));
    const ended = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.write('GET /api/health HTTP/1.1\r\nHost: jml.test\r\n\r\n');
    await eventually(async () => checks.calls.redis === 1);
    const closed = closing.close();
    // The server stops listening once the app's preClose hooks have run.
    await eventually(async () => !closing.server.listening);
    checks.release();
    await eventually(async () => received.includes('"status":"ok"'));
    socket.write('GET /metrics HTTP/1.1\r\nHost: jml.test\r\n\r\n');
    await ended;
    await closed;
    const answers = received.split(/(?=HTTP\/1\.1 )/);
    expect(answers).toHaveLength(2);
    expect(answers[0]).toMatch(/^HTTP\/1\.1 200 /);
    expect(answers[1]).toMatch(/^HTTP\/1\.1 503 /);
    expect(answers[1]).toMatch(/content-type: application\/problem\+json/i);
    expect(answers[1]).toMatch(/retry-after: \d+/i);
    expect(answers[1]).toMatch(/connection: close/i);
    expect(answers[1]).toMatch(/cache-control: no-store/i);
    expect(answers[1]).toContain(PROBLEM_TYPES.unavailable);
  });

  it('caches a failing round too, and names what is down', async () => {
    let calls = 0;
    const probed = await buildTestApp(engine, {
      secret,
      healthCacheMs: 60_000,
      health: {
        redis: async () => {
          calls += 1;
          throw new Error('down');
        },
        temporal: async () => {},
      },
    });
    apps.push(probed);
    for (let i = 0; i < 3; i++) {
      const answer = await probed.inject({ method: 'GET', url: '/api/health' });
      expect(answer.statusCode).toBe(200);
      expect(answer.json()).toMatchObject({ status: 'degraded', reasons: ['redis unreachable'], checks: { postgres: 'ok', redis: 'failing', temporal: 'ok' } });
    }
    expect(calls).toBe(1);
  });
});

describe('every response', () => {
  it('carries no-store and nosniff, on success and on error', async () => {
    const ok = await app.inject({ method: 'GET', url: IDENTITIES, headers: { authorization: `Bearer ${readToken}` } });
    expect(ok.statusCode).toBe(200);
    expectHardenedHeaders(ok);
    const metrics = await app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.statusCode).toBe(200);
    expectHardenedHeaders(metrics);
    expectProblem(await app.inject({ method: 'GET', url: IDENTITIES, remoteAddress: '198.51.100.90' }), 401);
    expectProblem(await app.inject({ method: 'GET', url: '/api/v1/nope' }), 404);
    expectProblem(await app.inject({ method: 'GET', url: `${IDENTITIES}?limit=0`, headers: { authorization: `Bearer ${readToken}` } }), 400);
    // The webhook's own plugin, and SCIM's (whose errors are SCIM documents).
    const unsigned = await app.inject({ method: 'POST', url: HR_EVENTS, payload: hire('E1'), remoteAddress: '198.51.100.91' });
    expectProblem(unsigned, 401);
    const scim = await app.inject({ method: 'GET', url: '/api/v1/scim/v2/Nope', headers: { authorization: `Bearer ${readToken}` } });
    expect(scim.statusCode).toBe(404);
    expectHardenedHeaders(scim);
  });

  it('does not echo the path of a route that does not exist', async () => {
    const marker = `zz${randomBytes(6).toString('hex')}`;
    const body = expectProblem(await app.inject({ method: 'GET', url: `/api/v1/${marker}` }), 404);
    expect(body.detail).not.toContain(marker);
  });
});

describe('URI and header limits (over a socket)', () => {
  it('answers a path parameter longer than the router takes with a 414 that echoes nothing', async () => {
    const marker = `q${'x'.repeat(1_000)}`;
    const body = expectRawProblem(await raw(`${HR_EVENTS}/${marker}`, { authorization: `Bearer ${readToken}` }), 414, 'xxxxxxxx');
    expect(body).toMatchObject({ type: PROBLEM_TYPES.uriTooLong, title: 'URI too long' });
    expect(body).not.toHaveProperty('instance');
  });

  it('answers a URI longer than the API takes with a 414 that echoes nothing', async () => {
    const body = expectRawProblem(await raw(`${IDENTITIES}?employeeId=${'y'.repeat(5_000)}`, { authorization: `Bearer ${readToken}` }), 414, 'yyyyyyyy');
    expect(body).toMatchObject({ type: PROBLEM_TYPES.uriTooLong });
  });

  it('answers a URL that does not decode with a 400 that echoes nothing', async () => {
    expectRawProblem(await raw(`${HR_EVENTS}/bad%E0%A4%Amarker`, { authorization: `Bearer ${readToken}` }), 400, 'marker');
  });

  it('answers headers larger than Node reads with a 431 problem that echoes nothing', async () => {
    const body = expectRawProblem(await raw(IDENTITIES, { 'x-padding': 'z'.repeat(32 * 1024) }), 431, 'zzzzzzzz');
    expect(body).toMatchObject({ type: PROBLEM_TYPES.headersTooLarge, title: 'Request header fields too large' });
  });

  it('answers a request line larger than Node reads with a 431 problem that echoes nothing', async () => {
    expectRawProblem(await raw(`${IDENTITIES}?q=${'w'.repeat(32 * 1024)}`), 431, 'wwwwwwww');
  });
});

describe('JSON bodies outside the webhook', () => {
  // The discard route reads a JSON body through the app-wide parser (api/json-body.ts).
  const discard = (payload: string | Buffer) =>
    app.inject({ method: 'POST', url: `${BATCHES}/00000000-0000-4000-8000-000000000000/discard`, headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' }, payload });

  it('refuses nesting deeper than the limit with a 400, not a RangeError', async () => {
    const deep = `{"reason":"x","extra":${'['.repeat(10_000)}${']'.repeat(10_000)}}`;
    const body = expectProblem(await discard(deep), 400);
    expect(body).toMatchObject({ type: PROBLEM_TYPES.malformedJson });
    expect(body.detail).toContain(String(MAX_JSON_DEPTH));
  });

  it('refuses a body that is not valid UTF-8', async () => {
    const bytes = Buffer.concat([Buffer.from('{"reason":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]);
    expect(expectProblem(await discard(bytes), 400)).toMatchObject({ type: PROBLEM_TYPES.malformedJson, detail: 'The body is not valid UTF-8.' });
  });

  it('parses a good body as before', async () => {
    // The batch does not exist: the body was read and the route got as far as looking.
    expectProblem(await discard(JSON.stringify({ reason: 'test' })), 404);
  });
});

describe('tampered cursors', () => {
  const get = (url: string) => app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${readToken}` } });
  const b64 = (text: string | Buffer) => Buffer.from(text).toString('base64url');
  const expectCursorProblem = async (url: string) => {
    const body = expectProblem(await get(url), 400);
    expect(body).toMatchObject({ type: PROBLEM_TYPES.validation, errors: [{ field: 'cursor' }] });
  };

  it('answers 400 naming cursor for the identity list', async () => {
    for (const cursor of [
      encodeCursor({ e: 'E1\u0000' }),
      encodeCursor({ e: 12 }),
      encodeCursor({ e: ['E1'] }),
      encodeCursor(['E1']),
      b64(Buffer.from([0x7b, 0xff, 0x7d])),
      'not base64!',
      `${encodeCursor({ e: 'E1' })}=`,
    ]) {
      await expectCursorProblem(`${IDENTITIES}?cursor=${encodeURIComponent(cursor)}`);
    }
  });

  it('answers 400 naming cursor for a timeline position past int8', async () => {
    // The timeline reads its cursor once it has found the person.
    const [identity] = await engine.db
      .insert(identities)
      .values({ employeeId: `CUR${randomBytes(4).toString('hex').toUpperCase()}`, status: 'active', attributes: { givenName: 'Cursor', familyName: 'Test' } })
      .returning({ id: identities.id });
    const base = `${IDENTITIES}/${identity!.id}/timeline`;
    for (const cursor of [
      encodeCursor(['99999999999999999999', 'audit', 'k']),
      encodeCursor(['9223372036854775808', 'audit', 'k']),
      encodeCursor(['-9223372036854775809', 'audit', 'k']),
      encodeCursor([12, 'audit', 'k']),
      encodeCursor(['1', 'other', 'k']),
      encodeCursor(['1', 'audit', 'k\u0000']),
    ]) {
      await expectCursorProblem(`${base}?cursor=${cursor}`);
    }
    // The largest int8 is a position like any other (past every row).
    const edge = await get(`${base}?cursor=${encodeCursor(['9223372036854775807', 'audit', 'k'])}`);
    expect(edge.statusCode).toBe(200);
    expect(edge.json()).toEqual({ items: [], nextCursor: null });
  });

  it('answers 400 naming cursor for the batch list', async () => {
    const get = (cursor: string) => app.inject({ method: 'GET', url: `${BATCHES}?cursor=${cursor}`, headers: { authorization: `Bearer ${adminToken}` } });
    for (const cursor of [encodeCursor(['99999999999999999999', '00000000-0000-4000-8000-000000000000']), encodeCursor(['1', 'not-a-uuid']), encodeCursor({})]) {
      const body = expectProblem(await get(cursor), 400);
      expect(body).toMatchObject({ errors: [{ field: 'cursor' }] });
    }
    expect((await get(encodeCursor(['9223372036854775807', '00000000-0000-4000-8000-000000000000']))).statusCode).toBe(200);
  });
});

describe('bind address', () => {
  it('is loopback unless HOST is set', () => {
    expect(readEnv({}).host).toBe('127.0.0.1');
    expect(readEnv({ HOST: '' }).host).toBe('127.0.0.1');
    expect(readEnv({ HOST: '0.0.0.0' }).host).toBe('0.0.0.0');
  });
});
