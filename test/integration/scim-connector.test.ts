// The SCIM connector against a real SCIM server over real HTTP: test/support/scim-server.ts,
// node:http in front of the scimmy library. Every test uses its own employee ids and groups;
// tests that need exact counts or a server in a failure mode get a server of their own.
import { randomUUID } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeConnectors, createConnectors } from '../../activities/connectors/index.js';
import { createScimConnector, ENTERPRISE_USER_SCHEMA } from '../../activities/connectors/scim.js';
import { ConnectorError, TargetUnavailableError, type AccountSpec, type Connector, type DirectoryAccount, type DirectoryGroup } from '../../activities/connectors/types.js';
import type { ScimTargetConfig } from '../../domain/config.js';
import { uniqueEmployeeId } from '../support/env.js';
import { startScimServer, type ScimServerOptions, type ScimTestServer } from '../support/scim-server.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let server: ScimTestServer;
const servers: ScimTestServer[] = [];
const opened: Connector[] = [];

beforeAll(async () => {
  server = await startScimServer();
  servers.push(server);
});
afterAll(async () => {
  await Promise.all(opened.map((c) => c.close()));
  await Promise.all(servers.map((s) => s.stop()));
});

async function anotherServer(options: ScimServerOptions = {}): Promise<ScimTestServer> {
  const s = await startScimServer(options);
  servers.push(s);
  return s;
}

function targetOf(s: ScimTestServer, extra: Partial<ScimTargetConfig> = {}): ScimTargetConfig {
  return {
    id: 'saas',
    type: 'scim',
    url: s.url,
    auth: { type: 'bearer', token: s.token },
    userName: 'employeeId',
    concurrency: 4,
    ratePerSecond: 200,
    pageSize: 100,
    timeout: 5_000,
    ...extra,
  };
}

function connector(extra: Partial<ScimTargetConfig> = {}, s: ScimTestServer = server, logger?: Logger): Connector {
  const c = createScimConnector(targetOf(s, extra), { logger });
  opened.push(c);
  return c;
}

async function caught(promise: Promise<unknown>): Promise<ConnectorError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(ConnectorError);
    return err as ConnectorError;
  }
  throw new Error('expected a ConnectorError, and the call succeeded');
}

const person = (prefix = 'SC') => uniqueEmployeeId(prefix);
const emailOf = (id: string) => `${id.toLowerCase()}@example.com`;
const spec = (employeeId: string, attributes: AccountSpec['attributes'] = {}, enabled = true): AccountSpec => ({
  employeeId,
  attributes: { givenName: 'Ada', familyName: 'Lovelace', email: emailOf(employeeId), title: 'Engineer', department: 'Research', ...attributes },
  enabled,
});
const userOf = (employeeId: string, s: ScimTestServer = server) => s.users().find((u) => u.externalId === employeeId);
const memberIds = (groupId: string, s: ScimTestServer = server) => ((s.group(groupId)?.members ?? []) as Array<{ value: string }>).map((m) => m.value);
const callsSince = (from: number, s: ScimTestServer = server) => s.calls.slice(from);

async function collect<T>(pages: AsyncIterable<T[]>): Promise<T[][]> {
  const all: T[][] = [];
  for await (const page of pages) all.push(page);
  return all;
}

describe('accounts', () => {
  it('creates an account with its SCIM attributes, reads it back, and adopts it (without writing) when nothing changed', async () => {
    const c = connector();
    const id = person();
    const created = await c.ensureAccount(spec(id));
    expect(created.created).toBe(true);
    const user = userOf(id)!;
    expect(created.ref).toBe(user.id);
    expect(user).toMatchObject({
      schemas: expect.arrayContaining(['urn:ietf:params:scim:schemas:core:2.0:User', ENTERPRISE_USER_SCHEMA]),
      userName: id,
      externalId: id,
      active: true,
      name: { givenName: 'Ada', familyName: 'Lovelace' },
      displayName: 'Ada Lovelace',
      emails: [{ value: emailOf(id), type: 'work', primary: true }],
      title: 'Engineer',
      [ENTERPRISE_USER_SCHEMA]: { employeeNumber: id, department: 'Research' },
    });
    expect(await c.readAccount(id)).toEqual({ ref: user.id, enabled: true, groups: [] });

    const from = server.calls.length;
    expect(await c.ensureAccount(spec(id))).toEqual({ ref: user.id, created: false });
    expect(callsSince(from).map((call) => call.method)).toEqual(['GET']);
    expect(server.users().filter((u) => u.externalId === id)).toHaveLength(1);
    expect(await c.readAccount(person())).toBeNull();
  });

  it('omits what the spec leaves empty when creating (never sending null)', async () => {
    const c = connector();
    const id = person();
    await c.ensureAccount({ employeeId: id, attributes: { familyName: 'Solo', email: '', title: '  ' }, enabled: true });
    const user = userOf(id)!;
    expect(user.name).toEqual({ familyName: 'Solo' });
    expect(user.displayName).toBe('Solo');
    expect(user).not.toHaveProperty('emails');
    expect(user).not.toHaveProperty('title');
    expect(user[ENTERPRISE_USER_SCHEMA]).toEqual({ employeeNumber: id });
  });

  it('a mover: ensureAccount brings changed attributes up to date, removes what is stated empty, leaves what is not stated', async () => {
    const c = connector();
    const id = person('SM');
    const { ref } = await c.ensureAccount(spec(id));
    const from = server.calls.length;
    expect(await c.ensureAccount({ employeeId: id, attributes: { givenName: 'Grace', title: '', department: 'Sales' }, enabled: true })).toEqual({ ref, created: false });
    const user = userOf(id)!;
    expect(user.name).toEqual({ givenName: 'Grace', familyName: 'Lovelace' });
    expect(user.displayName).toBe('Grace Lovelace');
    expect(user).not.toHaveProperty('title');
    expect(user.emails).toEqual([{ value: emailOf(id), type: 'work', primary: true }]);
    expect(user[ENTERPRISE_USER_SCHEMA]).toEqual({ employeeNumber: id, department: 'Sales' });
    // One PATCH, conditional on the version read just before (ETags are on).
    const patches = callsSince(from).filter((call) => call.method === 'PATCH');
    expect(patches).toHaveLength(1);
    expect(patches[0]).toMatchObject({ path: `/scim/v2/Users/${ref}`, status: 200 });
    expect(patches[0]!.ifMatch).toMatch(/^W\/"\d+"$/);
  });

  it('enabled:false on ensure disables, enabled:true never re-enables; setAccountEnabled does both, idempotently', async () => {
    const c = connector();
    const id = person('SE');
    await c.ensureAccount(spec(id));
    await c.ensureAccount(spec(id, {}, false));
    expect(userOf(id)!.active).toBe(false);
    await c.ensureAccount(spec(id, {}, true));
    expect(userOf(id)!.active).toBe(false);
    expect((await c.readAccount(id))!.enabled).toBe(false);

    await c.setAccountEnabled(id, true);
    await c.setAccountEnabled(id, true);
    expect(userOf(id)!.active).toBe(true);
    await c.setAccountEnabled(id, false);
    await c.setAccountEnabled(id, false);
    expect(userOf(id)!.active).toBe(false);

    // Pre-provisioned: created disabled.
    const early = person('SP');
    expect((await c.ensureAccount(spec(early, {}, false))).created).toBe(true);
    expect(userOf(early)!.active).toBe(false);

    const absent = person('SA');
    await c.setAccountEnabled(absent, false);
    expect(await caught(c.setAccountEnabled(absent, true))).toMatchObject({ retryable: false, code: 'ACCOUNT_NOT_FOUND' });
  });

  it('deletes an account; deleting it again, or someone who never had one, is done', async () => {
    const c = connector();
    const id = person('SX');
    const { ref } = await c.ensureAccount(spec(id));
    const from = server.calls.length;
    await c.deleteAccount(id);
    expect(callsSince(from).find((call) => call.method === 'DELETE')).toMatchObject({ path: `/scim/v2/Users/${ref}`, status: 204, ifMatch: expect.stringMatching(/^W\//) });
    expect(userOf(id)).toBeUndefined();
    expect(await c.readAccount(id)).toBeNull();
    await c.deleteAccount(id);
    await c.deleteAccount(person('SX'));
  });

  it('on 409 adopts the account that holds the userName when it has no externalId (and brings it up to date)', async () => {
    const c = connector({ userName: 'email' });
    const id = person('SH');
    const existing = server.createUser({ userName: emailOf(id), active: true });
    const from = server.calls.length;
    expect(await c.ensureAccount(spec(id))).toEqual({ ref: existing, created: false });
    expect(callsSince(from).some((call) => call.method === 'POST' && call.status === 409)).toBe(true);
    const user = server.users().find((u) => u.id === existing)!;
    expect(user).toMatchObject({ userName: emailOf(id), externalId: id, name: { givenName: 'Ada', familyName: 'Lovelace' }, [ENTERPRISE_USER_SCHEMA]: { employeeNumber: id } });
    expect(server.users().filter((u) => u.userName === emailOf(id))).toHaveLength(1);
    // Found by its externalId from now on.
    expect((await c.readAccount(id))!.ref).toBe(existing);
  });

  it('on 409 refuses, permanently, an account holding the userName that is someone else`s; no personal data in the message', async () => {
    const c = connector({ userName: 'email' });
    const id = person('SR');
    const theirs = server.createUser({ userName: emailOf(id), externalId: 'SOMEONE-ELSE' });
    const err = await caught(c.ensureAccount(spec(id)));
    expect(err).toMatchObject({ retryable: false, code: 'CONFLICT' });
    expect(err.message).toContain(theirs);
    expect(err.message).not.toContain(emailOf(id));
    expect(err.message).not.toMatch(/Ada|Lovelace/);
    expect(server.users().find((u) => u.id === theirs)!.externalId).toBe('SOMEONE-ELSE');
    expect(userOf(id)).toBeUndefined();
  });

  it('refuses a userName attribute without a value, and two accounts claiming one employee id', async () => {
    const c = connector({ userName: 'email' });
    const id = person('SN');
    const err = await caught(c.ensureAccount({ employeeId: id, attributes: { givenName: 'Ada' }, enabled: true }));
    expect(err).toMatchObject({ retryable: false, code: 'MISSING_USERNAME' });
    expect(err.message).toContain('"email"');

    const twice = person('SD');
    server.createUser({ userName: `a-${twice}`, externalId: twice });
    server.createUser({ userName: `b-${twice}`, externalId: twice });
    expect(await caught(c.readAccount(twice))).toMatchObject({ retryable: false, code: 'CONFLICT' });
    expect(await caught(c.ensureAccount(spec(twice)))).toMatchObject({ retryable: false, code: 'CONFLICT' });
  });
});

describe('groups', () => {
  it('add, remove, isGroupMember and listGroupMembers, each idempotent', async () => {
    const c = connector();
    const id = person('SG');
    const group = server.createGroup(`g-${id}`);
    const { ref } = await c.ensureAccount(spec(id));
    expect(await c.isGroupMember(id, group)).toBe(false);

    await c.addToGroup(id, group);
    await c.addToGroup(id, group);
    expect(memberIds(group)).toEqual([ref]);
    expect(await c.isGroupMember(id, group)).toBe(true);
    expect(await c.listGroupMembers(group)).toEqual([id]);
    expect((await c.readAccount(id))!.groups).toEqual([group]);

    // Members that are not accounts of ours are left out of the listing.
    const unmanaged = server.createUser({ userName: `unmanaged-${id}` });
    server.addMember(group, unmanaged);
    server.addMember(group, randomUUID());
    expect(await c.listGroupMembers(group)).toEqual([id]);

    await c.removeFromGroup(id, group);
    await c.removeFromGroup(id, group);
    expect(memberIds(group)).not.toContain(ref);
    expect(await c.isGroupMember(id, group)).toBe(false);
    expect(await c.listGroupMembers(group)).toEqual([]);
  });

  it('an account that does not exist: adding waits for it (retryable), removing and asking are done', async () => {
    const c = connector();
    const id = person('SZ');
    const group = server.createGroup(`g-${id}`);
    expect(await caught(c.addToGroup(id, group))).toMatchObject({ retryable: true, code: 'ACCOUNT_NOT_FOUND' });
    await c.removeFromGroup(id, group);
    expect(await c.isGroupMember(id, group)).toBe(false);
  });

  it('a group that does not exist: adding is permanent, removing is done, it has no members; a malformed ref is refused', async () => {
    const c = connector();
    const id = person('SU');
    await c.ensureAccount(spec(id));
    const missing = randomUUID();
    expect(await caught(c.addToGroup(id, missing))).toMatchObject({ retryable: false, code: 'UNKNOWN_GROUP' });
    await c.removeFromGroup(id, missing);
    expect(await c.isGroupMember(id, missing)).toBe(false);
    expect(await c.listGroupMembers(missing)).toEqual([]);
    expect(await caught(c.addToGroup(id, ''))).toMatchObject({ retryable: false, code: 'INVALID_REF' });
    expect(await caught(c.isGroupMember(id, ' padded'))).toMatchObject({ retryable: false, code: 'INVALID_REF' });
  });

  it('a drop-everything server: addToGroup resolves, and isGroupMember reads the truth (false)', async () => {
    const s = await anotherServer();
    const c = connector({}, s);
    const id = person('SDR');
    const group = s.createGroup('dropped');
    await c.ensureAccount(spec(id));
    s.setMode('drop');
    await c.addToGroup(id, group);
    expect(await c.isGroupMember(id, group)).toBe(false);
    expect(memberIds(group, s)).toEqual([]);
    s.setMode('normal');
    await c.addToGroup(id, group);
    expect(await c.isGroupMember(id, group)).toBe(true);
  });
});

describe('ETags (RFC 7644 §3.14)', () => {
  it('sends If-Match once a version is known; a 412 after a write behind its back is read again and retried once', async () => {
    const c = connector();
    const [a, b] = [person('SEA'), person('SEB')];
    const group = server.createGroup(`g-${a}`);
    const refA = (await c.ensureAccount(spec(a))).ref;
    const refB = (await c.ensureAccount(spec(b))).ref;
    await c.addToGroup(a, group);
    // Someone else changes the group: the version the connector remembers is stale.
    const stranger = server.createUser({ userName: `stranger-${a}` });
    server.addMember(group, stranger);
    const from = server.calls.length;
    await c.addToGroup(b, group);
    const onGroup = callsSince(from).filter((call) => call.path === `/scim/v2/Groups/${group}`);
    expect(onGroup.map((call) => [call.method, call.status])).toEqual([
      ['PATCH', 412],
      ['GET', 200],
      ['PATCH', 200],
    ]);
    expect(onGroup[0]!.ifMatch).toBeDefined();
    expect(onGroup[2]!.ifMatch).toBeDefined();
    expect(onGroup[2]!.ifMatch).not.toBe(onGroup[0]!.ifMatch);
    expect(memberIds(group).sort()).toEqual([refA, refB, stranger].sort());
  });

  it('a resource that keeps changing (412 twice) is a retryable PRECONDITION failure', async () => {
    const c = connector();
    const id = person('SEP');
    await c.ensureAccount(spec(id));
    server.raceConditionalWrites(2);
    const err = await caught(c.setAccountEnabled(id, false));
    expect(err).toMatchObject({ retryable: true, code: 'PRECONDITION' });
    expect(userOf(id)!.active).toBe(true);
    await c.setAccountEnabled(id, false);
    expect(userOf(id)!.active).toBe(false);
  });

  it('a server without ETags is never sent If-Match', async () => {
    const s = await anotherServer({ etags: false });
    const c = connector({}, s);
    const id = person('SNE');
    const group = s.createGroup('plain');
    await c.ensureAccount(spec(id));
    await c.ensureAccount(spec(id, { title: 'Lead' }));
    await c.addToGroup(id, group);
    await c.removeFromGroup(id, group);
    await c.deleteAccount(id);
    const writes = s.calls.filter((call) => call.method !== 'GET' && call.path.startsWith('/scim/v2/'));
    expect(writes.map((call) => call.method)).toEqual(['POST', 'PATCH', 'PATCH', 'PATCH', 'DELETE']);
    expect(writes.every((call) => call.ifMatch === undefined && call.status < 300)).toBe(true);
  });
});

describe('authentication', () => {
  it('bearer: a wrong token is a permanent AUTH failure', async () => {
    const c = connector({ auth: { type: 'bearer', token: 'not-the-token' } });
    expect(await caught(c.ping())).toMatchObject({ retryable: false, code: 'AUTH' });
    expect(await caught(c.readAccount(person()))).toMatchObject({ retryable: false, code: 'AUTH' });
  });

  it('oauth2 client credentials: one token, reused; renewed once on a 401', async () => {
    const s = await anotherServer();
    const c = connector({ auth: { type: 'oauth2', tokenUrl: s.oauth.tokenUrl, clientId: s.oauth.clientId, clientSecret: s.oauth.clientSecret } }, s);
    const id = person('SO');
    await c.ping();
    await c.ensureAccount(spec(id));
    await Promise.all([c.readAccount(id), c.readAccount(id), c.readAccount(id)]);
    const tokenCalls = () => s.calls.filter((call) => call.path === '/oauth/token');
    expect(tokenCalls()).toHaveLength(1);
    expect(tokenCalls()[0]!.status).toBe(200);
    expect(s.calls.filter((call) => call.path.startsWith('/scim/v2/')).every((call) => call.status < 300)).toBe(true);

    s.revokeTokens();
    const from = s.calls.length;
    expect((await c.readAccount(id))!.ref).toBe(userOf(id, s)!.id);
    expect(callsSince(from, s).map((call) => [call.path, call.status])).toEqual([
      ['/scim/v2/Users', 401],
      ['/oauth/token', 200],
      ['/scim/v2/Users', 200],
    ]);
  });

  it('oauth2: a wrong secret is a permanent AUTH failure; an unreachable token endpoint is the target being unavailable', async () => {
    const wrong = connector({ auth: { type: 'oauth2', tokenUrl: server.oauth.tokenUrl, clientId: server.oauth.clientId, clientSecret: 'wrong' } });
    const err = await caught(wrong.ping());
    expect(err).toMatchObject({ retryable: false, code: 'AUTH' });
    expect(err.message).toContain('invalid_client');
    expect(err.message).not.toContain(server.oauth.clientId);

    const gone = await anotherServer();
    await gone.stop();
    const unreachable = connector({ auth: { type: 'oauth2', tokenUrl: gone.oauth.tokenUrl, clientId: 'x', clientSecret: 'y' } });
    const down = await caught(unreachable.ping());
    expect(down).toBeInstanceOf(TargetUnavailableError);
    expect(down.retryable).toBe(true);
  });
});

describe('per-target limits', () => {
  it('never has more calls in flight than the target\'s concurrency', async () => {
    const s = await anotherServer({ latencyMs: 30 });
    const ids = Array.from({ length: 12 }, () => person('SCC'));
    await Promise.all(ids.map((id) => connector({ concurrency: 8 }, s).readAccount(id)));
    // The server does see overlapping calls when the connector allows them...
    expect(s.peakInFlight).toBeGreaterThan(2);
    const limited = await anotherServer({ latencyMs: 30 });
    const c = connector({ concurrency: 2 }, limited);
    expect(await Promise.all(ids.map((id) => c.readAccount(id)))).toEqual(ids.map(() => null));
    // ...and never more than two from a connector limited to two.
    expect(limited.peakInFlight).toBeLessThanOrEqual(2);
  });
});

describe('tracing and failures', () => {
  it('502, 503 and 504 are the target being unavailable (its recovery is waited for); 500 is retried', async () => {
    const s = await anotherServer();
    const c = connector({}, s);
    const id = person('S5X');
    const group = s.createGroup('flaky');
    await c.ensureAccount(spec(id));
    for (const status of [502, 503, 504]) {
      s.setMode('error', { status });
      const err = await caught(c.addToGroup(id, group));
      expect(err).toBeInstanceOf(TargetUnavailableError);
      expect(err).toMatchObject({ retryable: true, code: `HTTP_${status}` });
    }
    s.setMode('error', { status: 500 });
    const err = await caught(c.addToGroup(id, group));
    expect(err).not.toBeInstanceOf(TargetUnavailableError);
    expect(err).toMatchObject({ retryable: true, code: 'HTTP_500' });
    s.setMode('normal');
    await c.addToGroup(id, group);
    expect(await c.isGroupMember(id, group)).toBe(true);
  });

  it('sends its own X-Request-Id on every call and logs both ids at debug, without personal data', async () => {
    const s = await anotherServer();
    const lines: Array<Record<string, unknown>> = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        lines.push(JSON.parse(String(chunk)) as Record<string, unknown>);
        done();
      },
    });
    const c = connector({ auth: { type: 'oauth2', tokenUrl: s.oauth.tokenUrl, clientId: s.oauth.clientId, clientSecret: s.oauth.clientSecret }, userName: 'email' }, s, pino({ level: 'debug' }, sink));
    const id = person('STR');
    const group = s.createGroup('traced');
    await c.ensureAccount(spec(id));
    await c.addToGroup(id, group);
    await c.isGroupMember(id, group);
    const ids = s.calls.map((call) => call.requestId);
    expect(ids.length).toBeGreaterThanOrEqual(5);
    expect(ids.every((rid) => rid !== undefined && UUID.test(rid))).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);

    const logged = lines.filter((line) => line.msg === 'scim call');
    expect(logged.map((line) => line.requestId)).toEqual(s.calls.filter((call) => call.path.startsWith('/scim/v2/')).map((call) => call.requestId));
    expect(logged.every((line) => typeof line.targetRequestId === 'string' && String(line.targetRequestId).startsWith('scim-'))).toBe(true);
    const text = JSON.stringify(lines);
    expect(text).not.toContain(emailOf(id));
    expect(text).not.toContain('Lovelace');
    expect(text).not.toContain(s.oauth.clientSecret);
  });

  it('400 and 403 are permanent, naming the status, the scimType and both request ids', async () => {
    const s = await anotherServer();
    const c = connector({}, s);
    const id = person('SF');
    s.setMode('error', { status: 400, scimType: 'invalidValue' });
    const bad = await caught(c.ensureAccount(spec(id)));
    expect(bad).toMatchObject({ retryable: false, code: 'HTTP_400' });
    expect(bad).not.toBeInstanceOf(TargetUnavailableError);
    const post = s.calls.at(-1)!;
    expect(post).toMatchObject({ method: 'POST', status: 400 });
    expect(bad.message).toContain('HTTP 400 (invalidValue)');
    expect(bad.message).toMatch(new RegExp(`\\(request ${post.requestId}, target request scim-[0-9a-f-]{36}\\)`));
    expect(bad.message).not.toContain('Lovelace');

    s.setMode('error', { status: 403 });
    expect(await caught(c.ensureAccount(spec(id)))).toMatchObject({ retryable: false, code: 'HTTP_403' });
    s.setMode('normal');
    expect((await c.ensureAccount(spec(id))).created).toBe(true);
  });

  it('429 is a retryable THROTTLED failure carrying Retry-After', async () => {
    const s = await anotherServer();
    const c = connector({}, s);
    s.setMode('throttle', { retryAfterSeconds: 7, times: 1 });
    const err = await caught(c.readAccount(person('STH')));
    expect(err).toMatchObject({ retryable: true, code: 'THROTTLED', retryAfterMs: 7_000 });
    expect(err).not.toBeInstanceOf(TargetUnavailableError);
    // Only as many times as it was told to.
    expect(await c.readAccount(person('STH'))).toBeNull();
  });

  it('a server that is down, or that accepts and never answers, is the target being unavailable', async () => {
    const s = await anotherServer();
    const c = connector({}, s);
    await s.down();
    try {
      const err = await caught(c.readAccount(person('SDN')));
      expect(err).toBeInstanceOf(TargetUnavailableError);
      expect(err).toMatchObject({ retryable: true, code: 'ECONNREFUSED' });
      expect(err.message).toMatch(/\(request [0-9a-f-]{36}\)$/);
      await expect(c.ping()).rejects.toBeInstanceOf(TargetUnavailableError);
    } finally {
      await s.up();
    }
    await c.ping();

    // A TCP listener that never answers HTTP: there is no real server that behaves so on purpose.
    const sockets = new Set<Socket>();
    const silent: Server = createServer((socket) => sockets.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const port = (silent.address() as { port: number }).port;
      const slow = createScimConnector({ ...targetOf(s), url: `http://127.0.0.1:${port}/scim/v2`, timeout: 300 });
      opened.push(slow);
      const err = await caught(slow.readAccount(person('STO')));
      expect(err).toBeInstanceOf(TargetUnavailableError);
      expect(err.code).toBe('TIMEOUT');
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });
});

describe('directory listing (reconcile)', () => {
  it('pages through /Users and /Groups with exact counts, leaving out what is not ours', async () => {
    const s = await anotherServer();
    const setup = connector({}, s);
    const ids = Array.from({ length: 5 }, (_, i) => person(`SL${i}`));
    const refs = new Map<string, string>();
    for (const id of ids) refs.set(id, (await setup.ensureAccount(spec(id))).ref);
    await setup.setAccountEnabled(ids[4]!, false);
    const unmanaged = s.createUser({ userName: 'service-account' });
    const [g1, g2, g3] = [s.createGroup('one'), s.createGroup('two'), s.createGroup('three')];
    for (const id of ids.slice(0, 3)) await setup.addToGroup(id, g1);
    await setup.addToGroup(ids[3]!, g2);
    s.addMember(g2, unmanaged);

    const c = connector({ pageSize: 2 }, s);
    const from = s.calls.length;
    const accountPages = await collect<DirectoryAccount>(c.directory!.listAccounts());
    // Six users, two a page: three pages; the one without an externalId is left out.
    expect(accountPages.map((page) => page.length)).toEqual([2, 2, 1]);
    expect(callsSince(from, s).filter((call) => call.path === '/scim/v2/Users')).toHaveLength(3);
    const accounts = accountPages.flat();
    expect(accounts).toHaveLength(5);
    expect(new Map(accounts.map((a) => [a.employeeId, a]))).toEqual(new Map(ids.map((id, i) => [id, { employeeId: id, ref: refs.get(id), enabled: i !== 4 }])));

    const groupPages = await collect<DirectoryGroup>(c.directory!.listGroups());
    expect(groupPages.map((page) => page.length)).toEqual([2, 1]);
    const groups = new Map(groupPages.flat().map((g) => [g.ref, [...g.members].sort()]));
    expect(groups).toEqual(
      new Map([
        [g1, ids.slice(0, 3).sort()],
        [g2, [ids[3]]],
        [g3, []],
      ]),
    );
    expect(c.directory!.groupKey(g1)).toBe(g1);
  });

  it('refuses a server that ignores startIndex instead of listing its first page forever', async () => {
    const s = await anotherServer({ ignoreStartIndex: true });
    const setup = connector({}, s);
    for (let i = 0; i < 3; i++) await setup.ensureAccount(spec(person(`SI${i}`)));
    const c = connector({ pageSize: 2 }, s);
    const err = await caught(collect(c.directory!.listAccounts()));
    expect(err).toMatchObject({ retryable: false, code: 'BAD_RESPONSE' });
  });
});

describe('createConnectors', () => {
  it('builds a scim target, paused and instrumented like any other', async () => {
    const s = await anotherServer();
    let paused = false;
    const registry = new Registry();
    const connectors = createConnectors([targetOf(s, { id: 'saas-wrapped' })], {}, { metrics: registry, paused: async () => paused });
    try {
      const c = connectors.get('saas-wrapped')!;
      expect(c.targetId).toBe('saas-wrapped');
      const id = person('SW');
      expect((await c.ensureAccount(spec(id))).created).toBe(true);
      expect(await collect(c.directory!.listAccounts())).toEqual([[expect.objectContaining({ employeeId: id })]]);

      paused = true;
      const from = s.calls.length;
      const err = await caught(c.readAccount(id));
      expect(err).toBeInstanceOf(TargetUnavailableError);
      expect(err.code).toBe('PAUSED');
      expect(s.calls.length).toBe(from);

      const metrics = await registry.getMetricsAsJSON();
      const calls = metrics.find((m) => m.name === 'jml_connector_calls_total')!.values;
      expect(calls).toEqual(expect.arrayContaining([expect.objectContaining({ labels: { target: 'saas-wrapped', operation: 'ensureAccount' }, value: 1 })]));
    } finally {
      await closeConnectors(connectors);
    }
  });

  it('ping reads the ServiceProviderConfig', async () => {
    const c = connector();
    const from = server.calls.length;
    await c.ping();
    expect(callsSince(from)).toEqual([expect.objectContaining({ method: 'GET', path: '/scim/v2/ServiceProviderConfig', status: 200 })]);
  });
});
