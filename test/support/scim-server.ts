// A real SCIM 2.0 service provider for tests: node:http in front of the `scimmy` library,
// which does all of the SCIM protocol (schemas and their coercion, filters, attribute
// selection, paging, PatchOp, error bodies). What is left here is what scimmy leaves to its
// users: the HTTP routes, an in-memory store behind its ingress/egress/degress handlers,
// authentication (a static bearer token and OAuth 2.0 client-credentials tokens), ETags with
// If-Match (RFC 7644 §3.14), and the failure modes tests switch on.
//
// scimmy's resource declarations are global to the process, so they are made once, and every
// call passes the server it belongs to as scimmy's `ctx`: the handlers work on that server's
// store. Any number of servers can run in one process.
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import SCIMMY from 'scimmy';

/**
 * A SCIM resource as JSON. Its attributes are whatever the schema and the client made them,
 * so tests read them freely (`user.name.givenName`), as they would a parsed response.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type ScimJson = Record<string, any>;

export type ScimServerMode = 'normal' | 'throttle' | 'drop' | 'error';

export interface ScimCall {
  method: string;
  /** The URL path, without the query. */
  path: string;
  /** The status answered. */
  status: number;
  /** The client's X-Request-Id. */
  requestId?: string;
  /** The client's If-Match, if it sent one. */
  ifMatch?: string;
  /** When the server received the call (its own clock, ms since the epoch). */
  at: number;
}

export interface ScimTestServer {
  /** http://127.0.0.1:<port>/scim/v2 */
  url: string;
  port: number;
  /** The static bearer token the API accepts. */
  token: string;
  oauth: { tokenUrl: string; clientId: string; clientSecret: string };
  /**
   * 'normal'; 'throttle': every request answers 429 with Retry-After: retryAfterSeconds,
   * `times` times (then normal); 'drop': writes answer success (201/200/204 as normal) but
   * change nothing; 'error': writes answer `status` (e.g. 400 with a scimType, 403).
   */
  setMode(mode: ScimServerMode, options?: { retryAfterSeconds?: number; times?: number; status?: number; scimType?: string }): void;
  /** Stops listening (connections refused) until up() listens again on the same port. */
  down(): Promise<void>;
  up(): Promise<void>;
  /** Every call received, in order. */
  calls: ScimCall[];
  /** Direct store access for tests (behind the engine's back): */
  createGroup(displayName: string): string;
  users(): Array<ScimJson>;
  group(id: string): ScimJson | undefined;
  addMember(groupId: string, userId: string): void;
  removeMember(groupId: string, userId: string): void;
  setActive(userId: string, active: boolean): void;
  createUser(user: { userName: string; externalId?: string; active?: boolean }): string;
  /** Issued OAuth tokens stop being accepted (as when they expire early or are revoked). */
  revokeTokens(): void;
  /**
   * The next `times` writes that carry If-Match find their resource changed by someone else
   * just before (its version moves on), as under a concurrent writer: they answer 412.
   */
  raceConditionalWrites(times: number): void;
  /** The most calls the server was answering at once since it started. */
  readonly peakInFlight: number;
  stop(): Promise<void>;
}

export const SCIM_BASE_PATH = '/scim/v2';
const TOKEN_PATH = '/oauth/token';
const SCIM_JSON = 'application/scim+json';
const ERROR_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:Error';
const MAX_BODY_BYTES = 1024 * 1024;

type Resource = ScimJson & { id: string; meta: { resourceType: string; created: string; lastModified: string; version?: string } };

/** One server's data, handed to scimmy's handlers as their `ctx`. */
class Store {
  readonly users = new Map<string, Resource>();
  readonly groups = new Map<string, Resource>();
  private version = 0;
  constructor(readonly etags: boolean) {}

  /** Meta for a resource written now: a new version on every write. */
  meta(resourceType: string, previous?: Resource['meta']): Resource['meta'] {
    const now = new Date().toISOString();
    return { resourceType, created: previous?.created ?? now, lastModified: now, ...(this.etags ? { version: `W/"${++this.version}"` } : {}) };
  }

  touch(resource: Resource): void {
    resource.meta = this.meta(resource.meta.resourceType, resource.meta);
  }

  /** A user as the API shows it: `groups` (read-only, RFC 7643 §4.1.2) from the groups' own members. */
  userView(user: Resource): ScimJson {
    const groups = [...this.groups.values()]
      .filter((g) => (g.members ?? []).some((m: { value: string }) => m.value === user.id))
      .map((g) => ({ value: g.id, display: g.displayName, type: 'direct' }));
    return { ...structuredClone(user), ...(groups.length ? { groups } : {}) };
  }
}

interface Ctx {
  store: Store;
  /** 'drop' mode: the write is answered as if made, and nothing is stored. */
  dryRun: boolean;
}

/** The resource's data as scimmy hands it over, without what the server owns. */
function incoming(instance: unknown): ScimJson {
  const data = JSON.parse(JSON.stringify(instance)) as ScimJson;
  for (const owned of ['id', 'meta', 'schemas', 'groups']) delete data[owned];
  return data;
}

function notFound(id: string | undefined): never {
  throw new SCIMMY.Types.Error(404, null as unknown as string, `Resource ${String(id)} not found`);
}

let declared = false;
/**
 * The handlers return plain JSON (`as never`): scimmy coerces it through the schema itself,
 * and its typings would have each handler return an instance of the schema class.
 */
function declareResources(): void {
  if (declared) return;
  declared = true;
  SCIMMY.Config.set({
    patch: true,
    filter: { supported: true, maxResults: 200 },
    sort: true,
    etag: true,
    authenticationSchemes: [{ type: 'oauthbearertoken', name: 'OAuth Bearer Token', description: 'A static bearer token, or one from the client credentials grant' }],
  });
  SCIMMY.Resources.declare(SCIMMY.Resources.User)
    .extend(SCIMMY.Schemas.EnterpriseUser, false)
    .ingress((resource, instance, ctx: Ctx) => {
      const { store } = ctx;
      const data = incoming(instance);
      const previous = resource.id ? store.users.get(resource.id) : undefined;
      if (resource.id && !previous) notFound(resource.id);
      const userName = String(data.userName ?? '').toLowerCase();
      for (const other of store.users.values()) {
        if (other.id !== resource.id && String(other.userName).toLowerCase() === userName) {
          throw new SCIMMY.Types.Error(409, 'uniqueness', 'userName is already in use');
        }
      }
      const id = resource.id ?? randomUUID();
      if (ctx.dryRun) return store.userView({ ...data, id, meta: previous?.meta ?? { resourceType: 'User', created: new Date().toISOString(), lastModified: new Date().toISOString() } }) as never;
      const user: Resource = { ...data, id, meta: store.meta('User', previous?.meta) };
      store.users.set(id, user);
      return store.userView(user) as never;
    })
    .egress((resource, ctx: Ctx) => {
      const { store } = ctx;
      if (resource.id) {
        const user = store.users.get(resource.id);
        if (!user) notFound(resource.id);
        return store.userView(user) as never;
      }
      const all = [...store.users.values()].map((u) => store.userView(u));
      return (resource.filter ? resource.filter.match(all) : all) as never;
    })
    .degress((resource, ctx: Ctx) => {
      const { store } = ctx;
      if (!resource.id || !store.users.has(resource.id)) notFound(resource.id);
      if (ctx.dryRun) return;
      store.users.delete(resource.id);
      // Referential integrity, as providers keep it: a deleted user is no group's member.
      for (const group of store.groups.values()) {
        const members = (group.members ?? []) as Array<{ value: string }>;
        if (members.some((m) => m.value === resource.id)) {
          group.members = members.filter((m) => m.value !== resource.id);
          store.touch(group);
        }
      }
    });
  SCIMMY.Resources.declare(SCIMMY.Resources.Group)
    .ingress((resource, instance, ctx: Ctx) => {
      const { store } = ctx;
      const data = incoming(instance);
      const previous = resource.id ? store.groups.get(resource.id) : undefined;
      if (resource.id && !previous) notFound(resource.id);
      // A member added twice is one member.
      const seen = new Set<string>();
      const members = ((data.members ?? []) as Array<{ value: string }>).filter((m) => !seen.has(m.value) && seen.add(m.value));
      if (members.length) data.members = members;
      else delete data.members;
      const id = resource.id ?? randomUUID();
      if (ctx.dryRun) return { ...data, id, meta: previous?.meta } as never;
      const group: Resource = { ...data, id, meta: store.meta('Group', previous?.meta) };
      store.groups.set(id, group);
      return structuredClone(group) as never;
    })
    .egress((resource, ctx: Ctx) => {
      const { store } = ctx;
      if (resource.id) {
        const group = store.groups.get(resource.id);
        if (!group) notFound(resource.id);
        return structuredClone(group) as never;
      }
      const all = [...store.groups.values()].map((g) => structuredClone(g));
      return (resource.filter ? resource.filter.match(all) : all) as never;
    })
    .degress((resource, ctx: Ctx) => {
      const { store } = ctx;
      if (!resource.id || !store.groups.has(resource.id)) notFound(resource.id);
      if (!ctx.dryRun) store.groups.delete(resource.id);
    });
}

/** A SCIM Error body (RFC 7644 §3.12): scimmy's where it knows the status, the same shape otherwise (429, 503). */
function errorBody(status: number, scimType: string | undefined, detail: string): Record<string, unknown> {
  try {
    return { ...new SCIMMY.Messages.Error({ status: status as 400, scimType: scimType as 'invalidValue' | undefined, detail }) };
  } catch {
    return { schemas: [ERROR_SCHEMA], status: String(status), ...(scimType ? { scimType } : {}), detail };
  }
}

/** A resource as the API would send it (scimmy's outbound form), as plain JSON. */
function asJson(resource: unknown): ScimJson {
  return JSON.parse(JSON.stringify(resource)) as ScimJson;
}

function sha256(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/** Constant-time equality of two secrets (hashed first, so lengths do not leak either). */
function sameSecret(a: string, b: string): boolean {
  return timingSafeEqual(sha256(a), sha256(b));
}

/** If-Match (RFC 9110 §13.1.1) against a resource's version; weak tags compare by their opaque part, as SCIM's examples use them. */
function ifMatchHolds(header: string, version: string | undefined): boolean {
  if (header.trim() === '*') return true;
  if (!version) return false;
  const opaque = (tag: string) => tag.trim().replace(/^W\//, '');
  return header.split(',').some((tag) => opaque(tag) === opaque(version));
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly scimType: string | undefined,
    detail: string,
  ) {
    super(detail);
  }
}

export interface ScimServerOptions {
  /** 0 (default): any free port. */
  port?: number;
  /** ETags on resources and If-Match enforced (default true). */
  etags?: boolean;
  /** Lifetime of issued OAuth tokens (default 300 s). */
  tokenTtlSeconds?: number;
  /** Answer every listing from its first resource whatever startIndex asks, as some broken providers do. */
  ignoreStartIndex?: boolean;
  /** How long each call takes to answer (default 0), so that calls from one client overlap. */
  latencyMs?: number;
}

export async function startScimServer(options: ScimServerOptions = {}): Promise<ScimTestServer> {
  declareResources();
  const store = new Store(options.etags ?? true);
  const token = `static-${randomBytes(16).toString('hex')}`;
  const clientId = `client-${randomBytes(4).toString('hex')}`;
  const clientSecret = randomBytes(16).toString('hex');
  const tokenTtlSeconds = options.tokenTtlSeconds ?? 300;
  /** Issued OAuth tokens and when they expire. */
  const issued = new Map<string, number>();
  const calls: ScimCall[] = [];
  let mode: ScimServerMode = 'normal';
  let modeOptions: { retryAfterSeconds?: number; times?: number; status?: number; scimType?: string } = {};
  let throttlesLeft = 0;
  let racesLeft = 0;
  let inFlight = 0;
  let peakInFlight = 0;

  const authorized = (header: string | undefined): boolean => {
    const match = /^Bearer\s+(\S+)$/i.exec(header ?? '');
    if (!match) return false;
    const presented = match[1]!;
    if (sameSecret(presented, token)) return true;
    const now = Date.now();
    let ok = false;
    // Every issued token is compared (no early exit), so timing says nothing about which.
    for (const [value, expiresAt] of issued) if (sameSecret(presented, value) && expiresAt > now) ok = true;
    return ok;
  };

  const readBody = (req: IncomingMessage): Promise<string> =>
    new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_BODY_BYTES) reject(new HttpError(413, undefined, 'request body too large'));
        else chunks.push(chunk);
      });
      req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      req.on('error', reject);
    });

  const issueToken = (req: IncomingMessage, raw: string): { status: number; body: Record<string, unknown> } => {
    const basic = /^Basic\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    const decoded = basic ? Buffer.from(basic[1]!, 'base64').toString('utf8') : '';
    const colon = decoded.indexOf(':');
    // RFC 6749 §2.3.1: both parts are form-encoded.
    const formDecode = (value: string) => new URLSearchParams(`v=${value}`).get('v') ?? '';
    const id = colon >= 0 ? formDecode(decoded.slice(0, colon)) : '';
    const secret = colon >= 0 ? formDecode(decoded.slice(colon + 1)) : '';
    // Both compared, always: no early exit on the id.
    const idOk = sameSecret(id, clientId);
    const secretOk = sameSecret(secret, clientSecret);
    if (!idOk || !secretOk) return { status: 401, body: { error: 'invalid_client' } };
    const form = new URLSearchParams(raw);
    if (form.get('grant_type') !== 'client_credentials') return { status: 400, body: { error: 'unsupported_grant_type' } };
    const accessToken = `oauth-${randomBytes(16).toString('hex')}`;
    issued.set(accessToken, Date.now() + tokenTtlSeconds * 1000);
    return { status: 200, body: { access_token: accessToken, token_type: 'Bearer', expires_in: tokenTtlSeconds } };
  };

  /** The SCIM API: route, check, and hand the request to scimmy. Returns status, body, headers. */
  const api = async (req: IncomingMessage, route: string, url: URL, raw: string): Promise<{ status: number; body?: unknown; headers?: Record<string, string> }> => {
    const method = req.method ?? 'GET';
    const ctx: Ctx = { store, dryRun: false };
    if (method === 'GET' && route === '/ServiceProviderConfig') {
      const config = JSON.parse(JSON.stringify(await new SCIMMY.Resources.ServiceProviderConfig().read())) as ScimJson;
      config.etag = { supported: store.etags };
      return { status: 200, body: config };
    }
    const meta = /^\/(ResourceTypes|Schemas)(?:\/([^/]+))?$/.exec(route);
    if (method === 'GET' && meta) {
      const Type = meta[1] === 'Schemas' ? SCIMMY.Resources.Schema : SCIMMY.Resources.ResourceType;
      const id = meta[2] ? decodeURIComponent(meta[2]) : undefined;
      return { status: 200, body: await (id ? new Type(id) : new Type()).read() };
    }
    const match = /^\/(Users|Groups)(?:\/([^/]+))?$/.exec(route);
    if (!match) throw new HttpError(404, undefined, `no such endpoint ${route}`);
    const Type = match[1] === 'Users' ? SCIMMY.Resources.User : SCIMMY.Resources.Group;
    const records = match[1] === 'Users' ? store.users : store.groups;
    const id = match[2] ? decodeURIComponent(match[2]) : undefined;
    const write = method !== 'GET';

    if (write && mode === 'error') {
      throw new HttpError(modeOptions.status ?? 400, modeOptions.scimType, 'the server refuses writes (test mode)');
    }
    ctx.dryRun = write && mode === 'drop';

    let body: unknown;
    if (raw.trim()) {
      try {
        body = JSON.parse(raw);
      } catch {
        throw new HttpError(400, 'invalidSyntax', 'the request body is not JSON');
      }
    }
    const ifMatch = req.headers['if-match'];
    if (id && write && ifMatch && store.etags) {
      const current = records.get(id);
      if (current && racesLeft > 0) {
        racesLeft--;
        store.touch(current);
      }
      if (current && !ifMatchHolds(ifMatch, current.meta.version)) throw new HttpError(412, undefined, 'the resource has changed (If-Match)');
    }
    const etagOf = (resourceId: string | undefined): Record<string, string> => {
      const version = resourceId ? records.get(resourceId)?.meta.version : undefined;
      return store.etags && version ? { etag: version } : {};
    };
    const query: Record<string, string | number> = {};
    for (const key of ['filter', 'attributes', 'excludedAttributes', 'sortBy', 'sortOrder']) {
      const value = url.searchParams.get(key);
      if (value !== null) query[key] = value;
    }
    for (const key of ['startIndex', 'count']) {
      const value = url.searchParams.get(key);
      if (value !== null) {
        if (!/^-?\d+$/.test(value)) throw new HttpError(400, 'invalidValue', `${key} must be an integer`);
        query[key] = Number(value);
      }
    }

    if (!id) {
      if (options.ignoreStartIndex) delete query.startIndex;
      if (method === 'GET') return { status: 200, body: await new Type(undefined, query).read(ctx) };
      if (method === 'POST') {
        const created = (await new Type(undefined, query).write(body, ctx)) as { id: string };
        return { status: 201, body: created, headers: { location: `${baseUrl()}/${match[1]}/${created.id}`, ...etagOf(created.id) } };
      }
      throw new HttpError(405, undefined, `${method} is not allowed on /${match[1]}`);
    }
    switch (method) {
      case 'GET':
        return { status: 200, body: await new Type(id, query).read(ctx), headers: etagOf(id) };
      case 'PUT':
        return { status: 200, body: await new Type(id, query).write(body, ctx), headers: etagOf(id) };
      case 'PATCH': {
        const patched = await new Type(id, query).patch(body as Parameters<InstanceType<typeof Type>['patch']>[0], ctx);
        // scimmy answers nothing when the operations changed nothing.
        return patched ? { status: 200, body: patched, headers: etagOf(id) } : { status: 204, headers: etagOf(id) };
      }
      case 'DELETE':
        await new Type(id).dispose(ctx);
        return { status: 204 };
      default:
        throw new HttpError(405, undefined, `${method} is not allowed on /${match[1]}/{id}`);
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const header = (name: string) => {
      const value = req.headers[name];
      return Array.isArray(value) ? value[0] : value;
    };
    const call: ScimCall = { method: req.method ?? 'GET', path: url.pathname, status: 0, requestId: header('x-request-id'), ifMatch: header('if-match'), at: Date.now() };
    calls.push(call);
    inFlight += 1;
    peakInFlight = Math.max(peakInFlight, inFlight);
    res.once('close', () => (inFlight -= 1));
    if (options.latencyMs) await new Promise((resolve) => setTimeout(resolve, options.latencyMs));
    // The server's own request id, never the client's.
    res.setHeader('x-request-id', `scim-${randomUUID()}`);
    const answer = (status: number, body?: unknown, headers: Record<string, string> = {}, contentType = SCIM_JSON) => {
      call.status = status;
      for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
      if (body === undefined || status === 204) {
        res.writeHead(status).end();
        return;
      }
      res.writeHead(status, { 'content-type': contentType }).end(JSON.stringify(body));
    };
    try {
      const raw = await readBody(req);
      if (mode === 'throttle' && throttlesLeft > 0) {
        throttlesLeft--;
        if (throttlesLeft === 0) mode = 'normal';
        answer(429, errorBody(429, undefined, 'too many requests'), { 'retry-after': String(modeOptions.retryAfterSeconds ?? 1) });
        return;
      }
      if (url.pathname === TOKEN_PATH) {
        if (req.method !== 'POST') throw new HttpError(405, undefined, 'POST only');
        const { status, body } = issueToken(req, raw);
        answer(status, body, { 'cache-control': 'no-store' }, 'application/json');
        return;
      }
      if (!url.pathname.startsWith(`${SCIM_BASE_PATH}/`)) throw new HttpError(404, undefined, 'not found');
      if (!authorized(header('authorization'))) {
        answer(401, errorBody(401, undefined, 'authentication required'), { 'www-authenticate': 'Bearer realm="scim"' });
        return;
      }
      const { status, body, headers } = await api(req, url.pathname.slice(SCIM_BASE_PATH.length), url, raw);
      answer(status, body, headers);
    } catch (err) {
      if (err instanceof HttpError) answer(err.status, errorBody(err.status, err.scimType, err.message));
      else if (err instanceof SCIMMY.Types.Error) answer(err.status, errorBody(err.status, err.scimType, err.message));
      else answer(500, errorBody(500, undefined, err instanceof Error ? err.message : String(err)));
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve((server.address() as AddressInfo).port);
      });
    });
  const port = await listen(options.port ?? 0);
  const baseUrl = () => `http://127.0.0.1:${port}${SCIM_BASE_PATH}`;
  let listening = true;
  const close = async () => {
    if (!listening) return;
    listening = false;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  };

  const groupOrThrow = (groupId: string): Resource => {
    const group = store.groups.get(groupId);
    if (!group) throw new Error(`no group ${groupId}`);
    return group;
  };

  return {
    url: baseUrl(),
    port,
    token,
    oauth: { tokenUrl: `http://127.0.0.1:${port}${TOKEN_PATH}`, clientId, clientSecret },
    calls,
    setMode(next, opts = {}) {
      mode = next;
      modeOptions = opts;
      throttlesLeft = next === 'throttle' ? (opts.times ?? 1) : 0;
    },
    async down() {
      await close();
    },
    async up() {
      if (listening) return;
      await listen(port);
      listening = true;
    },
    createGroup(displayName) {
      const id = randomUUID();
      store.groups.set(id, { id, displayName, meta: store.meta('Group') });
      return id;
    },
    users() {
      return [...store.users.values()].map((u) => asJson(new SCIMMY.Schemas.User(store.userView(u), 'out')));
    },
    group(id) {
      const group = store.groups.get(id);
      return group ? asJson(new SCIMMY.Schemas.Group(group, 'out')) : undefined;
    },
    addMember(groupId, userId) {
      const group = groupOrThrow(groupId);
      const members = (group.members ?? []) as Array<{ value: string }>;
      if (!members.some((m) => m.value === userId)) group.members = [...members, { value: userId }];
      store.touch(group);
    },
    removeMember(groupId, userId) {
      const group = groupOrThrow(groupId);
      const members = ((group.members ?? []) as Array<{ value: string }>).filter((m) => m.value !== userId);
      if (members.length) group.members = members;
      else delete group.members;
      store.touch(group);
    },
    setActive(userId, active) {
      const user = store.users.get(userId);
      if (!user) throw new Error(`no user ${userId}`);
      user.active = active;
      store.touch(user);
    },
    createUser(user) {
      const id = randomUUID();
      store.users.set(id, { id, userName: user.userName, ...(user.externalId !== undefined ? { externalId: user.externalId } : {}), active: user.active ?? true, meta: store.meta('User') });
      return id;
    },
    revokeTokens() {
      issued.clear();
    },
    raceConditionalWrites(times) {
      racesLeft = times;
    },
    get peakInFlight() {
      return peakInFlight;
    },
    async stop() {
      await close();
    },
  };
}
