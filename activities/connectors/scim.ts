// SCIM 2.0 connector (RFC 7643 resources, RFC 7644 protocol) on Node's global fetch.
//
// Who is whom: a person's SCIM user carries `externalId` = their canonical employee id
// (domain/employee-id.ts), and is found by filtering on it. Only a user whose externalId,
// canonicalised, is the person's id is taken for theirs: a server's filter may be wider or
// ignored, and two users claiming one id are refused rather than guessed between. Groups are
// named by their SCIM `id` (an entitlement's ref).
//
// Every method is idempotent (see ./types.ts): what exists is adopted, what is absent is
// done. Calls to one target go through one queue (concurrency and calls per second from the
// target's config). Each HTTP call sends its own X-Request-Id, and every ConnectorError names
// it with the target's own request id, so a grant's last_error can be traced on both sides.
// Messages and logs carry employee ids and SCIM ids only: never a userName, email, name,
// token or body.
import { randomUUID } from 'node:crypto';
import PQueue from 'p-queue';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { ScimTargetConfig } from '../../domain/config.js';
import { canonicalEmployeeId, parseEmployeeId } from '../../domain/employee-id.js';
import type { IdentityAttributes } from '../../domain/types.js';
import { ConnectorError, TargetUnavailableError, type AccountSpec, type AccountState, type Connector, type DirectoryAccount, type DirectoryGroup, type DirectoryListing } from './types.js';
import { fullName, text } from './attribute-text.js';

export const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
export const ENTERPRISE_USER_SCHEMA = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
export const PATCH_OP_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const SCIM_JSON = 'application/scim+json';

/** The longest wait a target's Retry-After is believed for; a larger one is capped to it. */
export const MAX_RETRY_AFTER_MS = 10 * 60_000;
/** An OAuth token is renewed this long before the authorization server says it expires. */
const TOKEN_RENEWAL_MARGIN_MS = 30_000;
/** ETags remembered per connector (least recently stored dropped first). */
const ETAG_CACHE_SIZE = 10_000;
/** Where providers put their own id of a request (generic, Entra/Azure, GitHub, Okta). */
const TARGET_REQUEST_ID_HEADERS = ['x-request-id', 'request-id', 'x-ms-request-id', 'x-github-request-id', 'x-okta-request-id'];

// ---- what the server sends back ---------------------------------------------------------

/** A string attribute we only compare (to bring it up to date): anything else counts as absent. */
const comparedString = z.string().nullish().catch(undefined);

/** Only `version` is used (an ETag); an odd one is taken for none rather than failing a write that was made. */
const metaSchema = z.object({ version: z.string().nullish().catch(undefined) }).nullish().catch(undefined);

const userSchema = z.object({
  id: z.string().min(1),
  externalId: z.string().nullish(),
  userName: z.string().nullish(),
  active: z.boolean().nullish(),
  displayName: comparedString,
  title: comparedString,
  name: z.object({ givenName: comparedString, familyName: comparedString }).nullish().catch(undefined),
  emails: z
    .array(z.object({ value: comparedString, type: comparedString, primary: z.boolean().nullish().catch(undefined) }))
    .nullish()
    .catch(undefined),
  groups: z.array(z.object({ value: z.string() })).nullish(),
  [ENTERPRISE_USER_SCHEMA]: z.object({ employeeNumber: comparedString, department: comparedString }).nullish().catch(undefined),
  meta: metaSchema,
});
type ScimUser = z.output<typeof userSchema>;

const groupSchema = z.object({
  id: z.string().min(1),
  members: z.array(z.object({ value: z.string(), type: z.string().nullish() })).nullish(),
  meta: metaSchema,
});
type ScimGroup = z.output<typeof groupSchema>;

/** What a write answers (200 with the resource, or 204): only its version is used. */
const writtenSchema = z.object({ meta: metaSchema }).nullish();

const listSchema = <T extends z.ZodType>(item: T) =>
  z.object({
    totalResults: z.number().int().min(0),
    startIndex: z.number().int().nullish(),
    itemsPerPage: z.number().int().nullish(),
    // RFC 7644 §3.4.2: Resources may be absent when nothing matched.
    Resources: z.array(item).nullish(),
  });

const scimErrorSchema = z.object({ scimType: z.string().nullish() });

const serviceProviderConfigSchema = z.object({ schemas: z.array(z.string()).nullish() });

const tokenSchema = z.object({
  access_token: z.string().min(1),
  token_type: z.string(),
  // Some servers send it as a string.
  expires_in: z.union([z.number().positive(), z.string().regex(/^\d+$/).transform(Number)]).nullish(),
});

const oauthErrorSchema = z.object({ error: z.string().regex(/^[\x20-\x7e]{1,64}$/) });

// ---- pure helpers -----------------------------------------------------------------------

/**
 * A Retry-After header (RFC 9110 §10.2.3), delay-seconds or an HTTP-date, in milliseconds
 * from `now`; capped at MAX_RETRY_AFTER_MS. Undefined when absent or unreadable.
 */
export function parseRetryAfter(value: string | null | undefined, now: number = Date.now()): number | undefined {
  if (value === null || value === undefined) return undefined;
  const trimmed = value.trim();
  if (!trimmed) return undefined;
  let ms: number;
  if (/^\d+$/.test(trimmed)) ms = Number(trimmed) * 1000;
  else {
    // HTTP-date is an IMF-fixdate (or an obsolete form), always naming a weekday or month.
    if (!/[a-z]/i.test(trimmed)) return undefined;
    const at = Date.parse(trimmed);
    if (Number.isNaN(at)) return undefined;
    ms = Math.max(0, at - now);
  }
  return Math.min(ms, MAX_RETRY_AFTER_MS);
}

/** A value as a SCIM filter string literal (RFC 7644 §3.4.2.2: a JSON string, `"` and `\` escaped). */
export function scimFilterString(value: string): string {
  return JSON.stringify(value);
}

/** p-queue's interval settings for `ratePerSecond` calls started per second (fractions allowed). */
export function rateLimit(ratePerSecond: number): { intervalCap: number; interval: number } {
  const intervalCap = Math.max(1, Math.floor(ratePerSecond));
  return { intervalCap, interval: Math.max(1, Math.round((1000 * intervalCap) / ratePerSecond)) };
}

function checkId(id: string): string {
  if (typeof id !== 'string' || !id.trim()) throw new ConnectorError('empty employee id', false, 'INVALID_ID');
  return canonicalEmployeeId(id);
}

/** The primary email of a user, else its first. */
function primaryEmail(user: ScimUser): string | null {
  const emails = user.emails ?? [];
  return text((emails.find((e) => e.primary) ?? emails[0])?.value);
}

interface Trace {
  /** Our X-Request-Id. */
  ours: string;
  /** The target's own request id, when it sends one. */
  theirs?: string;
}

function traceText(trace: Trace | undefined): string {
  if (!trace) return '';
  return ` (request ${trace.ours}${trace.theirs ? `, target request ${trace.theirs}` : ''})`;
}

function targetRequestId(headers: Headers): string | undefined {
  for (const name of TARGET_REQUEST_ID_HEADERS) {
    const value = headers.get(name);
    // Only a plausible id goes into messages and logs.
    if (value && /^[\x21-\x7e]{1,128}$/.test(value)) return value;
  }
  return undefined;
}

// ---- the connector ----------------------------------------------------------------------

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';

interface HttpRequest {
  method: Method;
  /** Below the base URL, e.g. `/Users/<id>`; also the key of the resource's remembered ETag. */
  path: string;
  query?: Record<string, string | number>;
  body?: unknown;
  /** Statuses besides 2xx that the caller handles itself; any other is thrown as a ConnectorError. */
  handles?: number[];
  /** Send If-Match with the ETag remembered for `path`, if any. */
  conditional?: boolean;
}

interface Reply {
  status: number;
  body: unknown;
  etag?: string;
  scimType?: string;
  retryAfterMs?: number;
  trace: Trace;
  /** The bearer token this call was sent with (to renew exactly that one on a 401). */
  token: string;
}

/** One connector operation: what it is (for messages) and the last HTTP call it made. */
interface Op {
  what: string;
  last?: Trace;
}

interface PatchOperation {
  op: 'add' | 'remove' | 'replace';
  path: string;
  value?: unknown;
}

export interface ScimConnectorOptions {
  logger?: Logger;
}

export function createScimConnector(target: ScimTargetConfig, options: ScimConnectorOptions = {}): Connector {
  return new ScimConnector(target, options.logger);
}

class ScimConnector implements Connector {
  readonly targetId: string;
  readonly directory: DirectoryListing;
  private readonly base: string;
  private readonly queue: PQueue;
  private readonly etags = new Map<string, string>();
  private token?: { value: string; renewAt: number };
  private tokenInFlight?: Promise<string>;
  private closed = false;

  constructor(
    private readonly target: ScimTargetConfig,
    private readonly logger?: Logger,
  ) {
    this.targetId = target.id;
    this.base = target.url.replace(/\/+$/, '');
    this.queue = new PQueue({ concurrency: target.concurrency, ...rateLimit(target.ratePerSecond) });
    this.directory = {
      listAccounts: () => this.listAccounts(),
      listGroups: () => this.listGroups(),
      groupKey: (ref) => ref,
    };
  }

  // ---- accounts -------------------------------------------------------------------------

  async ensureAccount(spec: AccountSpec): Promise<{ ref: string; created: boolean }> {
    const op: Op = { what: `ensureAccount ${spec.employeeId}` };
    const id = checkId(spec.employeeId);
    const found = await this.findUser(op, id);
    if (found) {
      await this.adopt(op, id, spec, found);
      return { ref: found.id, created: false };
    }
    const userName = this.userNameOf(op, id, spec.attributes);
    const reply = await this.send(op, { method: 'POST', path: '/Users', body: this.newUser(id, userName, spec), handles: [409] });
    if (reply.status !== 409) {
      const user = this.parse(op, 'a User', userSchema, reply.body);
      this.remember(this.userPath(user.id), reply.etag ?? user.meta?.version);
      return { ref: user.id, created: true };
    }
    // 409 (uniqueness, RFC 7644 §3.3): the userName is taken. Adopt the account that holds
    // it if it is nobody's yet or already this person's, never anyone else's.
    const holder = await this.findByUserName(op, userName);
    if (!holder) {
      // Not by userName: perhaps a concurrent attempt created this person's account meanwhile.
      const created = await this.findUser(op, id);
      if (!created) throw this.error(op, 'the target reports a uniqueness conflict, but no account holds the userName or the external id', true, 'CONFLICT');
      await this.adopt(op, id, spec, created);
      return { ref: created.id, created: false };
    }
    if (holder.externalId && canonicalEmployeeId(holder.externalId) !== id) {
      throw this.error(op, `the account ${holder.id} that holds the requested userName belongs to another external id`, false, 'CONFLICT');
    }
    await this.adopt(op, id, spec, holder);
    return { ref: holder.id, created: false };
  }

  async readAccount(employeeId: string): Promise<AccountState | null> {
    const op: Op = { what: `readAccount ${employeeId}` };
    const user = await this.findUser(op, checkId(employeeId));
    if (!user) return null;
    return { ref: user.id, enabled: user.active ?? true, groups: (user.groups ?? []).map((g) => g.value) };
  }

  async setAccountEnabled(employeeId: string, enabled: boolean): Promise<void> {
    const op: Op = { what: `setAccountEnabled ${employeeId} ${enabled}` };
    const id = checkId(employeeId);
    const user = await this.findUser(op, id);
    // Disabling what does not exist is done; enabling it cannot be.
    if (!user) {
      if (!enabled) return;
      throw this.error(op, `account ${id} does not exist`, false, 'ACCOUNT_NOT_FOUND');
    }
    if ((user.active ?? true) === enabled) return;
    const path = this.userPath(user.id);
    const reply = await this.write(op, { method: 'PATCH', path, body: patchOp([{ op: 'replace', path: 'active', value: enabled }]), handles: [404] });
    if (reply.status === 404) {
      if (!enabled) return;
      throw this.error(op, `account ${id} (${user.id}) disappeared`, false, 'ACCOUNT_NOT_FOUND');
    }
    this.rememberWritten(op, path, reply);
  }

  async deleteAccount(employeeId: string): Promise<void> {
    const op: Op = { what: `deleteAccount ${employeeId}` };
    const user = await this.findUser(op, checkId(employeeId));
    if (!user) return;
    const path = this.userPath(user.id);
    // 404: deleted meanwhile, which is what was asked.
    await this.write(op, { method: 'DELETE', path, handles: [404] });
    this.etags.delete(path);
  }

  // ---- groups ---------------------------------------------------------------------------

  async addToGroup(employeeId: string, groupRef: string): Promise<void> {
    const op: Op = { what: `addToGroup ${employeeId} ${String(groupRef)}` };
    const id = checkId(employeeId);
    const path = this.groupPath(op, groupRef);
    const user = await this.findUser(op, id);
    // Retryable: the account may be being created by a parallel activity.
    if (!user) throw this.error(op, `account ${id} does not exist`, true, 'ACCOUNT_NOT_FOUND');
    const request: HttpRequest = { method: 'PATCH', path, body: patchOp([{ op: 'add', path: 'members', value: [{ value: user.id }] }]), handles: [400, 404, 409] };
    const reply = await this.write(op, request);
    if (reply.status === 404) throw this.error(op, `group ${groupRef} does not exist (HTTP 404)`, false, 'UNKNOWN_GROUP');
    if (reply.status === 400 || reply.status === 409) {
      // Some providers refuse to add a member that is already there: then it is done.
      if (await this.groupHasMember(op, path, user.id)) return;
      throw this.httpError(op, request, reply);
    }
    this.rememberWritten(op, path, reply);
  }

  async removeFromGroup(employeeId: string, groupRef: string): Promise<void> {
    const op: Op = { what: `removeFromGroup ${employeeId} ${String(groupRef)}` };
    const id = checkId(employeeId);
    const path = this.groupPath(op, groupRef);
    const user = await this.findUser(op, id);
    if (!user) return;
    const request: HttpRequest = {
      method: 'PATCH',
      path,
      body: patchOp([{ op: 'remove', path: `members[value eq ${scimFilterString(user.id)}]` }]),
      handles: [400, 404, 409],
    };
    const reply = await this.write(op, request);
    // No such group: no membership in it.
    if (reply.status === 404) return;
    if (reply.status === 400 || reply.status === 409) {
      // Some providers answer noTarget for a member that is not there: then it is done.
      if (!(await this.groupHasMember(op, path, user.id))) return;
      throw this.httpError(op, request, reply);
    }
    this.rememberWritten(op, path, reply);
  }

  async isGroupMember(employeeId: string, groupRef: string): Promise<boolean> {
    const op: Op = { what: `isGroupMember ${employeeId} ${String(groupRef)}` };
    const id = checkId(employeeId);
    const path = this.groupPath(op, groupRef);
    // Refuses two accounts claiming the id; none means no member value can name the person.
    const user = await this.findUser(op, id);
    if (!user) return false;
    return this.groupHasMember(op, path, user.id);
  }

  async listGroupMembers(groupRef: string): Promise<string[]> {
    const op: Op = { what: `listGroupMembers ${String(groupRef)}` };
    const group = await this.readGroup(op, this.groupPath(op, groupRef));
    if (!group) return [];
    const userIds = [...new Set(userMembers(group))];
    let employeeIds: Array<string | null>;
    if (userIds.length > this.target.pageSize) {
      // A big group: one listing of every user costs fewer calls than one read per member.
      const byUserId = await this.employeeIdsByUserId(op);
      employeeIds = userIds.map((userId) => byUserId.get(userId) ?? null);
    } else {
      employeeIds = await Promise.all(userIds.map((userId) => this.employeeIdOfUser(op, userId)));
    }
    return [...new Set(employeeIds.filter((e): e is string => e !== null))];
  }

  async ping(): Promise<void> {
    const op: Op = { what: 'ping' };
    const reply = await this.send(op, { method: 'GET', path: '/ServiceProviderConfig' });
    this.parse(op, 'a ServiceProviderConfig', serviceProviderConfigSchema, reply.body);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.token = undefined;
    await this.queue.onIdle();
  }

  // ---- reconcile listings ---------------------------------------------------------------

  private async *listAccounts(): AsyncGenerator<DirectoryAccount[]> {
    const op: Op = { what: 'list accounts' };
    for await (const users of this.pages(op, '/Users', userSchema, 'externalId,active')) {
      const page: DirectoryAccount[] = [];
      for (const user of users) {
        const employeeId = user.externalId ? parseEmployeeId(user.externalId) : null;
        if (employeeId) page.push({ employeeId, ref: user.id, enabled: user.active ?? true });
      }
      yield page;
    }
  }

  private async *listGroups(): AsyncGenerator<DirectoryGroup[]> {
    const op: Op = { what: 'list groups' };
    const byUserId = await this.employeeIdsByUserId(op);
    for await (const groups of this.pages(op, '/Groups', groupSchema, 'members')) {
      yield groups.map((group) => {
        const members = new Set<string>();
        for (const userId of userMembers(group)) {
          const employeeId = byUserId.get(userId);
          if (employeeId) members.add(employeeId);
        }
        return { ref: group.id, members: [...members] };
      });
    }
  }

  /** userId -> canonical employee id, for every user that carries a valid externalId. */
  private async employeeIdsByUserId(op: Op): Promise<Map<string, string>> {
    const byUserId = new Map<string, string>();
    for await (const users of this.pages(op, '/Users', userSchema, 'externalId')) {
      for (const user of users) {
        const employeeId = user.externalId ? parseEmployeeId(user.externalId) : null;
        if (employeeId) byUserId.set(user.id, employeeId);
      }
    }
    return byUserId;
  }

  /**
   * A resource listing, page by page (RFC 7644 §3.4.2.4). Stops at totalResults or an empty
   * page. A server that does not honour startIndex would hand out its first page forever, or
   * a listing with holes; it is refused rather than read as complete.
   */
  private async *pages<T extends z.ZodType<{ id: string }>>(op: Op, path: string, item: T, attributes: string): AsyncGenerator<Array<z.output<T>>> {
    let startIndex = 1;
    let previousFirst: string | undefined;
    for (;;) {
      const reply = await this.send(op, { method: 'GET', path, query: { startIndex, count: this.target.pageSize, attributes } });
      const list = this.parse(op, 'a ListResponse', listSchema(item), reply.body);
      const resources = list.Resources ?? [];
      if (resources.length === 0) return;
      const first = resources[0]!.id;
      if ((list.startIndex !== null && list.startIndex !== undefined && list.startIndex !== startIndex) || (startIndex > 1 && first === previousFirst)) {
        throw this.error(op, `GET ${path} does not honour startIndex (asked from ${startIndex})`, false, 'BAD_RESPONSE');
      }
      previousFirst = first;
      yield resources;
      startIndex += resources.length;
      if (startIndex > list.totalResults) return;
    }
  }

  // ---- reading --------------------------------------------------------------------------

  /**
   * The person's user, found by externalId. Refuses (permanently) two users that both claim
   * the id, and an answer from which absence cannot be concluded (a filter not applied).
   */
  private async findUser(op: Op, id: string): Promise<ScimUser | null> {
    const reply = await this.send(op, { method: 'GET', path: '/Users', query: { filter: `externalId eq ${scimFilterString(id)}` } });
    const list = this.parse(op, 'a ListResponse', listSchema(userSchema), reply.body);
    const resources = list.Resources ?? [];
    for (const user of resources) this.remember(this.userPath(user.id), user.meta?.version);
    const mine = resources.filter((user) => typeof user.externalId === 'string' && canonicalEmployeeId(user.externalId) === id);
    if (mine.length > 1) {
      throw this.error(op, `${mine.length} accounts (${mine.map((u) => u.id).join(', ')}) claim external id ${id}`, false, 'CONFLICT');
    }
    if (mine.length === 0 && list.totalResults > resources.length) {
      throw this.error(op, `the target did not apply the externalId filter (${resources.length} of ${list.totalResults} results, none of them ${id})`, false, 'BAD_RESPONSE');
    }
    return mine[0] ?? null;
  }

  /** The user holding `userName` (compared without regard to case, as RFC 7643 §4.1.1 has it). */
  private async findByUserName(op: Op, userName: string): Promise<ScimUser | null> {
    const reply = await this.send(op, { method: 'GET', path: '/Users', query: { filter: `userName eq ${scimFilterString(userName)}` } });
    const list = this.parse(op, 'a ListResponse', listSchema(userSchema), reply.body);
    const wanted = userName.toLowerCase();
    const holders = (list.Resources ?? []).filter((user) => user.userName?.toLowerCase() === wanted);
    if (holders.length > 1) throw this.error(op, `${holders.length} accounts (${holders.map((u) => u.id).join(', ')}) hold the requested userName`, false, 'CONFLICT');
    const [holder] = holders;
    if (holder) this.remember(this.userPath(holder.id), holder.meta?.version);
    return holder ?? null;
  }

  /** The employee id a user carries, or null (no such user, or no valid externalId). */
  private async employeeIdOfUser(op: Op, userId: string): Promise<string | null> {
    const reply = await this.send(op, { method: 'GET', path: this.userPath(userId), query: { attributes: 'externalId' }, handles: [404] });
    if (reply.status === 404) return null;
    const user = this.parse(op, 'a User', userSchema, reply.body);
    return user.externalId ? parseEmployeeId(user.externalId) : null;
  }

  private async readGroup(op: Op, path: string): Promise<ScimGroup | null> {
    const reply = await this.send(op, { method: 'GET', path, query: { attributes: 'members' }, handles: [404] });
    if (reply.status === 404) return null;
    const group = this.parse(op, 'a Group', groupSchema, reply.body);
    this.remember(path, reply.etag ?? group.meta?.version);
    return group;
  }

  /** Whether the group's own members name the user: read from the group, never from the user. */
  private async groupHasMember(op: Op, path: string, userId: string): Promise<boolean> {
    const group = await this.readGroup(op, path);
    // A group that does not exist has no members.
    return group ? (group.members ?? []).some((member) => member.value === userId) : false;
  }

  // ---- writing --------------------------------------------------------------------------

  /** Brings an account found for the person up to date with the spec, in one PATCH (none when nothing differs). */
  private async adopt(op: Op, id: string, spec: AccountSpec, user: ScimUser): Promise<void> {
    const operations = this.adoptOperations(id, spec, user);
    if (operations.length === 0) return;
    const path = this.userPath(user.id);
    const reply = await this.write(op, { method: 'PATCH', path, body: patchOp(operations), handles: [404] });
    // Deleted between reading and writing: the next attempt creates it.
    if (reply.status === 404) throw this.error(op, `account ${id} (${user.id}) disappeared while being updated`, true, 'ACCOUNT_NOT_FOUND');
    this.rememberWritten(op, path, reply);
  }

  /**
   * What differs between the account and the spec, as PATCH operations (RFC 7644 §3.5.2).
   * An attribute the spec does not state is left alone; one it states empty is removed.
   * Adoption only ever moves towards safety: enabled:false disables an enabled account, but
   * enabled:true never re-enables one (setAccountEnabled's job), so a leave is never undone.
   */
  private adoptOperations(id: string, spec: AccountSpec, user: ScimUser): PatchOperation[] {
    const a = spec.attributes;
    const operations: PatchOperation[] = [];
    const bring = (path: string, current: unknown, desired: string | null, stated: boolean) => {
      if (!stated) return;
      const now = text(current);
      if (desired === null) {
        if (now !== null) operations.push({ op: 'remove', path });
      } else if (now !== desired) {
        operations.push({ op: 'replace', path, value: desired });
      }
    };
    if (user.externalId !== id) operations.push({ op: 'replace', path: 'externalId', value: id });
    const userName = this.target.userName === 'employeeId' ? id : text(a[this.target.userName]);
    // userName is compared without regard to case; it is never removed.
    if (userName && userName.toLowerCase() !== user.userName?.toLowerCase()) operations.push({ op: 'replace', path: 'userName', value: userName });
    bring('name.givenName', user.name?.givenName, text(a.givenName), a.givenName !== undefined);
    bring('name.familyName', user.name?.familyName, text(a.familyName), a.familyName !== undefined);
    const given = a.givenName !== undefined ? text(a.givenName) : text(user.name?.givenName);
    const family = a.familyName !== undefined ? text(a.familyName) : text(user.name?.familyName);
    bring('displayName', user.displayName, fullName(given, family), a.givenName !== undefined || a.familyName !== undefined);
    bring('title', user.title, text(a.title), a.title !== undefined);
    if (a.email !== undefined) {
      const email = text(a.email);
      const current = primaryEmail(user);
      if (email === null && (user.emails ?? []).length > 0) operations.push({ op: 'remove', path: 'emails' });
      else if (email !== null && email !== current) operations.push({ op: 'replace', path: 'emails', value: [{ value: email, type: 'work', primary: true }] });
    }
    const enterprise = user[ENTERPRISE_USER_SCHEMA];
    bring(`${ENTERPRISE_USER_SCHEMA}:employeeNumber`, enterprise?.employeeNumber, id, true);
    bring(`${ENTERPRISE_USER_SCHEMA}:department`, enterprise?.department, text(a.department), a.department !== undefined);
    if (!spec.enabled && (user.active ?? true)) operations.push({ op: 'replace', path: 'active', value: false });
    return operations;
  }

  private newUser(id: string, userName: string, spec: AccountSpec): Record<string, unknown> {
    const a = spec.attributes;
    const given = text(a.givenName);
    const family = text(a.familyName);
    const email = text(a.email);
    const title = text(a.title);
    const department = text(a.department);
    const displayName = fullName(given, family);
    return {
      schemas: [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
      userName,
      externalId: id,
      ...(given || family ? { name: { ...(given ? { givenName: given } : {}), ...(family ? { familyName: family } : {}) } } : {}),
      ...(displayName ? { displayName } : {}),
      ...(email ? { emails: [{ value: email, type: 'work', primary: true }] } : {}),
      ...(title ? { title } : {}),
      active: spec.enabled,
      [ENTERPRISE_USER_SCHEMA]: { employeeNumber: id, ...(department ? { department } : {}) },
    };
  }

  /** The userName a new account gets: the employee id, or the configured identity attribute's value. */
  private userNameOf(op: Op, id: string, attributes: IdentityAttributes): string {
    if (this.target.userName === 'employeeId') return id;
    const value = text(attributes[this.target.userName]);
    if (!value) throw this.error(op, `the identity attribute "${this.target.userName}" (the userName on this target) has no value for ${id}`, false, 'MISSING_USERNAME');
    return value;
  }

  /**
   * A write to one resource, conditional on its remembered ETag (RFC 7644 §3.14). On 412 the
   * resource changed since: its version is read again and the write retried once; a second
   * 412 is left to the caller's retry policy.
   */
  private async write(op: Op, request: HttpRequest): Promise<Reply> {
    const conditional: HttpRequest = { ...request, conditional: true, handles: [...(request.handles ?? []), 412] };
    const reply = await this.send(op, conditional);
    if (reply.status !== 412) return reply;
    await this.reread(op, request.path);
    const again = await this.send(op, conditional);
    if (again.status === 412) throw this.error(op, `${request.method} ${request.path} failed twice on a changed version (HTTP 412)`, true, 'PRECONDITION');
    return again;
  }

  /** Refreshes the remembered ETag of a resource (forgets it when the target gives none). */
  private async reread(op: Op, path: string): Promise<void> {
    this.etags.delete(path);
    const reply = await this.send(op, { method: 'GET', path, query: { attributes: 'id' }, handles: [404] });
    if (reply.status === 404) return;
    const written = writtenSchema.safeParse(reply.body);
    this.remember(path, reply.etag ?? (written.success ? written.data?.meta?.version : undefined));
  }

  private rememberWritten(op: Op, path: string, reply: Reply): void {
    const body = reply.body === undefined ? undefined : this.parse(op, 'a SCIM resource', writtenSchema, reply.body);
    this.remember(path, reply.etag ?? body?.meta?.version);
  }

  private remember(path: string, etag: string | null | undefined): void {
    if (!etag) return;
    this.etags.delete(path);
    this.etags.set(path, etag);
    if (this.etags.size > ETAG_CACHE_SIZE) this.etags.delete(this.etags.keys().next().value!);
  }

  // ---- HTTP -----------------------------------------------------------------------------

  /**
   * One SCIM call through the target's queue. A 401 with OAuth renews the token once and
   * tries again. Statuses other than 2xx and `request.handles` become a ConnectorError.
   */
  private async send(op: Op, request: HttpRequest): Promise<Reply> {
    let renewed = false;
    for (;;) {
      const reply = await this.queue.add(() => this.fetchOnce(op, request));
      if (reply.status === 401 && this.target.auth.type === 'oauth2' && !renewed) {
        renewed = true;
        if (this.token?.value === reply.token) this.token = undefined;
        continue;
      }
      if ((reply.status >= 200 && reply.status < 300) || request.handles?.includes(reply.status)) return reply;
      throw this.httpError(op, request, reply);
    }
  }

  private async fetchOnce(op: Op, request: HttpRequest): Promise<Reply> {
    if (this.closed) throw this.error(op, 'the connector is closed', false, 'CLOSED');
    const token = await this.accessToken(op);
    const ours = randomUUID();
    const headers: Record<string, string> = { accept: `${SCIM_JSON}, application/json`, authorization: `Bearer ${token}`, 'x-request-id': ours };
    if (request.body !== undefined) headers['content-type'] = SCIM_JSON;
    const etag = request.conditional ? this.etags.get(request.path) : undefined;
    if (etag) headers['if-match'] = etag;
    const url = new URL(this.base + request.path);
    for (const [key, value] of Object.entries(request.query ?? {})) url.searchParams.set(key, String(value));
    const started = performance.now();
    let response: Response;
    let raw: string;
    try {
      response = await fetch(url, {
        method: request.method,
        headers,
        body: request.body === undefined ? undefined : JSON.stringify(request.body),
        redirect: 'manual',
        signal: AbortSignal.timeout(this.target.timeout),
      });
      raw = await response.text();
    } catch (err) {
      op.last = { ours };
      this.logger?.debug({ target: this.targetId, method: request.method, path: request.path, requestId: ours, error: errorCode(err) }, 'scim call failed');
      throw this.networkError(op, request, err);
    }
    const trace: Trace = { ours, theirs: targetRequestId(response.headers) };
    op.last = trace;
    this.logger?.debug(
      { target: this.targetId, method: request.method, path: request.path, status: response.status, requestId: ours, targetRequestId: trace.theirs, ms: Math.round(performance.now() - started) },
      'scim call',
    );
    let body: unknown;
    if (raw.trim()) {
      try {
        body = JSON.parse(raw);
      } catch {
        // Not JSON: `body` stays undefined, which no resource schema accepts.
        body = undefined;
      }
    }
    const ok = response.status >= 200 && response.status < 300;
    const scimType = ok ? undefined : scimErrorSchema.safeParse(body).data?.scimType;
    return {
      status: response.status,
      body,
      etag: response.headers.get('etag') ?? undefined,
      scimType: scimType && /^[A-Za-z]{1,32}$/.test(scimType) ? scimType : undefined,
      retryAfterMs: ok ? undefined : parseRetryAfter(response.headers.get('retry-after')),
      trace,
      token,
    };
  }

  /** A bearer token: the configured one, or an OAuth 2.0 client-credentials token (RFC 6749 §4.4), cached until shortly before it expires. */
  private async accessToken(op: Op): Promise<string> {
    const auth = this.target.auth;
    if (auth.type === 'bearer') return auth.token;
    if (this.token && Date.now() < this.token.renewAt) return this.token.value;
    this.tokenInFlight ??= this.fetchToken(op, auth).finally(() => {
      this.tokenInFlight = undefined;
    });
    return this.tokenInFlight;
  }

  private async fetchToken(op: Op, auth: Extract<ScimTargetConfig['auth'], { type: 'oauth2' }>): Promise<string> {
    const ours = randomUUID();
    const form = new URLSearchParams({ grant_type: 'client_credentials' });
    if (auth.scope) form.set('scope', auth.scope);
    // RFC 6749 §2.3.1: client id and secret are form-encoded before they are joined.
    const formEncoded = (value: string) => new URLSearchParams({ v: value }).toString().slice(2);
    const basic = Buffer.from(`${formEncoded(auth.clientId)}:${formEncoded(auth.clientSecret)}`).toString('base64');
    let response: Response;
    let raw: string;
    try {
      response = await fetch(auth.tokenUrl, {
        method: 'POST',
        headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', 'x-request-id': ours },
        body: form.toString(),
        redirect: 'manual',
        signal: AbortSignal.timeout(this.target.timeout),
      });
      raw = await response.text();
    } catch (err) {
      op.last = { ours };
      const timedOut = isTimeout(err);
      throw new TargetUnavailableError(
        this.message(op, timedOut ? `the token endpoint did not answer within ${this.target.timeout} ms` : `the token endpoint cannot be reached (${errorCode(err) ?? 'network error'})`),
        timedOut ? 'TIMEOUT' : 'TOKEN_UNREACHABLE',
      );
    }
    const trace: Trace = { ours, theirs: targetRequestId(response.headers) };
    op.last = trace;
    this.logger?.debug({ target: this.targetId, method: 'POST', path: 'token endpoint', status: response.status, requestId: ours, targetRequestId: trace.theirs }, 'scim oauth token');
    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch {
      body = undefined;
    }
    const status = response.status;
    if (status >= 500) throw new TargetUnavailableError(this.message(op, `the token endpoint answered HTTP ${status}`), `HTTP_${status}`, parseRetryAfter(response.headers.get('retry-after')));
    if (status === 429) throw new ConnectorError(this.message(op, 'the token endpoint answered HTTP 429'), true, 'THROTTLED', parseRetryAfter(response.headers.get('retry-after')));
    if (status !== 200) {
      const error = oauthErrorSchema.safeParse(body).data?.error;
      throw this.error(op, `the token endpoint refused the client credentials (HTTP ${status}${error ? ` ${error}` : ''})`, false, 'AUTH');
    }
    const parsed = tokenSchema.safeParse(body);
    if (!parsed.success) throw this.error(op, 'the token endpoint answered without a usable access token', false, 'BAD_RESPONSE');
    if (parsed.data.token_type.toLowerCase() !== 'bearer') throw this.error(op, `the token endpoint issued a "${parsed.data.token_type.slice(0, 32)}" token, not a bearer token`, false, 'AUTH');
    const lifetime = parsed.data.expires_in ? parsed.data.expires_in * 1000 : Number.POSITIVE_INFINITY;
    // A token without a lifetime is used until the API refuses it (401 renews it).
    this.token = { value: parsed.data.access_token, renewAt: Date.now() + lifetime - Math.min(TOKEN_RENEWAL_MARGIN_MS, lifetime / 2) };
    return parsed.data.access_token;
  }

  /** Classifies a status the caller did not handle (RFC 7644 §3.12, RFC 9110 §15). */
  private httpError(op: Op, request: HttpRequest, reply: Reply): ConnectorError {
    const status = reply.status;
    const what = `${request.method} ${request.path} answered HTTP ${status}${reply.scimType ? ` (${reply.scimType})` : ''}`;
    const message = this.message(op, what);
    if (status === 401) return new ConnectorError(this.message(op, `${what}: the credentials are not accepted`), false, 'AUTH');
    if (status === 429) return new ConnectorError(message, true, 'THROTTLED', reply.retryAfterMs);
    if (status === 502 || status === 503 || status === 504) return new TargetUnavailableError(message, `HTTP_${status}`, reply.retryAfterMs);
    if (status >= 500 || status === 408) return new ConnectorError(message, true, `HTTP_${status}`, reply.retryAfterMs);
    if (status === 412) return new ConnectorError(message, true, 'PRECONDITION');
    // 3xx (redirects are not followed: credentials stay with the configured URL), 400, 403,
    // 404, 405, 409, 413, 415 ...: the same request cannot succeed by being sent again.
    return new ConnectorError(message, false, `HTTP_${status}`);
  }

  private networkError(op: Op, request: HttpRequest, err: unknown): TargetUnavailableError {
    if (isTimeout(err)) return new TargetUnavailableError(this.message(op, `${request.method} ${request.path}: no answer within ${this.target.timeout} ms`), 'TIMEOUT');
    const code = errorCode(err);
    return new TargetUnavailableError(this.message(op, `${request.method} ${request.path}: the target cannot be reached (${code ?? 'network error'})`), code ?? 'NETWORK');
  }

  /** A body that is not what SCIM says it is: retrying the same request will not change it. */
  private parse<T extends z.ZodType>(op: Op, what: string, schema: T, body: unknown): z.output<T> {
    const parsed = schema.safeParse(body);
    if (parsed.success) return parsed.data;
    const issue = parsed.error.issues[0];
    const where = issue?.path.length ? ` at ${issue.path.map(String).join('.')}` : '';
    throw this.error(op, `the target's answer is not ${what}${where}: ${issue?.message ?? 'invalid'}`, false, 'BAD_RESPONSE');
  }

  private error(op: Op, detail: string, retryable: boolean, code: string): ConnectorError {
    return new ConnectorError(this.message(op, detail), retryable, code);
  }

  private message(op: Op, detail: string): string {
    return `scim ${this.targetId}: ${op.what}: ${detail}${traceText(op.last)}`;
  }

  private userPath(userId: string): string {
    return `/Users/${encodeURIComponent(userId)}`;
  }

  /** A group reference is a SCIM group id: any other shape is refused rather than sent. */
  private groupPath(op: Op, ref: string): string {
    if (typeof ref !== 'string' || !ref.trim() || ref !== ref.trim() || ref.length > 256 || CONTROL_CHARACTER.test(ref)) {
      throw this.error(op, `group reference "${String(ref).slice(0, 64)}" is not a SCIM group id`, false, 'INVALID_REF');
    }
    return `/Groups/${encodeURIComponent(ref)}`;
  }
}

// eslint-disable-next-line no-control-regex -- the characters refused
const CONTROL_CHARACTER = /[\x00-\x1f\x7f]/;

function patchOp(operations: PatchOperation[]): Record<string, unknown> {
  return { schemas: [PATCH_OP_SCHEMA], Operations: operations };
}

/** The member values of a group that name users (a nested group's value is skipped). */
function userMembers(group: ScimGroup): string[] {
  return (group.members ?? []).filter((m) => !m.type || m.type.toLowerCase() === 'user').map((m) => m.value);
}

function isTimeout(err: unknown): boolean {
  const name = (err as { name?: unknown } | null)?.name;
  return name === 'TimeoutError' || name === 'AbortError';
}

/** A system error code (ECONNREFUSED ...) from fetch's error or its cause. */
function errorCode(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^[A-Z][A-Z0-9_]{1,40}$/.test(code)) return code;
  }
  return undefined;
}
