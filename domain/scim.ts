// SCIM 2.0 bulk input, the pure half: the BulkRequest envelope as Microsoft Entra API-driven
// inbound provisioning sends it, the mapping from a SCIM User to an HR identity (a default
// map that `scim.attributeMap` in the config overrides and extends), the decision which HR
// event a user becomes given what is known about the person, and the material of the
// event's idempotency key. No I/O and no Node built-ins (the sha256 of the key material is
// taken by the caller), so this stays as safe to import as the rest of domain/.
import { canonicalJson } from './canonical-json.js';
import { z } from 'zod';
import type { ScimConfig } from './config.js';
import { ATTRIBUTE_LIMITS, parseAttributes } from './attributes.js';
import { EMPLOYEE_ID_RULE, parseEmployeeId } from './employee-id.js';
import type { HrEventType, IdentityAttributes, IdentityStatus } from './types.js';

export const SCIM_SCHEMAS = {
  bulkRequest: 'urn:ietf:params:scim:api:messages:2.0:BulkRequest',
  bulkResponse: 'urn:ietf:params:scim:api:messages:2.0:BulkResponse',
  error: 'urn:ietf:params:scim:api:messages:2.0:Error',
  listResponse: 'urn:ietf:params:scim:api:messages:2.0:ListResponse',
  user: 'urn:ietf:params:scim:schemas:core:2.0:User',
  enterpriseUser: 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User',
  serviceProviderConfig: 'urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig',
  resourceType: 'urn:ietf:params:scim:schemas:core:2.0:ResourceType',
  schema: 'urn:ietf:params:scim:schemas:core:2.0:Schema',
} as const;

const ENTERPRISE = SCIM_SCHEMAS.enterpriseUser;

/** What Entra allows per bulkUpload call, and what /ServiceProviderConfig announces. */
export const SCIM_MAX_OPERATIONS = 50;
export const SCIM_MAX_PAYLOAD_BYTES = 1024 * 1024;

/** RFC 7644 section 3.12 scimType values this module produces. */
export type ScimErrorType = 'invalidSyntax' | 'invalidValue' | 'invalidPath' | 'tooMany' | 'uniqueness';

export interface ScimErrorInit {
  /** HTTP status of the operation (or the request). */
  status: number;
  scimType?: ScimErrorType;
  detail: string;
}

/** An RFC 7644 Error body; `status` is a string there. */
export function scimErrorBody(error: ScimErrorInit) {
  return {
    schemas: [SCIM_SCHEMAS.error],
    status: String(error.status),
    ...(error.scimType ? { scimType: error.scimType } : {}),
    detail: error.detail,
  };
}

// --- canonical JSON -------------------------------------------------------------------

export { canonicalJson } from './canonical-json.js';

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** SCIM attribute names are case-insensitive (RFC 7643 section 2.1). */
function getCi(object: Record<string, unknown>, name: string): unknown {
  if (Object.hasOwn(object, name)) return object[name];
  const lower = name.toLowerCase();
  for (const key of Object.keys(object)) if (key.toLowerCase() === lower) return object[key];
  return undefined;
}

/**
 * RFC 7643 section 2.5: null means unassigned, the same as absent. Every null of SCIM input
 * (a member of any object, an item of any list) is dropped before anything reads it, so no
 * rule below ever sees one: null is never an error and never stored. Entra sends
 * `"failOnErrors": null` in every documented bulkUpload request.
 */
export function withoutNulls(input: unknown): unknown {
  // Copied with a stack, not recursion, so no depth of input exhausts the call stack.
  const shell = (value: unknown): unknown => (Array.isArray(value) ? [] : isRecord(value) ? {} : value);
  const root = shell(input);
  const stack: Array<[unknown, unknown]> = [[input, root]];
  while (stack.length) {
    const [from, into] = stack.pop()!;
    const members: Array<[string, unknown]> = Array.isArray(from) ? from.map((item, i) => [String(i), item]) : isRecord(from) ? Object.entries(from) : [];
    for (const [key, member] of members) {
      if (member === null) continue;
      const copy = shell(member);
      if (Array.isArray(into)) into.push(copy);
      // defineProperty, not assignment: a `__proto__` member stays a plain member.
      else Object.defineProperty(into, key, { value: copy, enumerable: true, writable: true, configurable: true });
      stack.push([member, copy]);
    }
  }
  return root;
}

/** The members of an object with their names normalised to the spellings given. */
function normaliseKeys(value: unknown, names: readonly string[]): unknown {
  if (!isRecord(value)) return value;
  const byLower = new Map(names.map((n) => [n.toLowerCase(), n]));
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [byLower.get(k.toLowerCase()) ?? k, v]));
}

// --- the BulkRequest envelope ---------------------------------------------------------

const OPERATION_KEYS = ['method', 'bulkId', 'path', 'data', 'version'] as const;
const REQUEST_KEYS = ['schemas', 'Operations', 'failOnErrors'] as const;

export const scimBulkOperationSchema = z.preprocess(
  (value) => normaliseKeys(value, OPERATION_KEYS),
  z.object(
    {
      method: z.string('is required').min(1, 'is required').max(16, 'is not an HTTP method'),
      bulkId: z.string('must be a string').min(1, 'must not be empty').max(256, 'must be at most 256 characters').optional(),
      path: z.string('is required').min(1, 'is required').max(1024, 'must be at most 1024 characters'),
      data: z.unknown().optional(),
      version: z.string().optional(),
    },
    'must be an object',
  ),
);

export const scimBulkRequestSchema = z.preprocess(
  (value) => normaliseKeys(value, REQUEST_KEYS),
  z.object(
    {
      schemas: z
        .array(z.string(), 'must be an array of schema URNs')
        .refine((schemas) => schemas.includes(SCIM_SCHEMAS.bulkRequest), `must include ${SCIM_SCHEMAS.bulkRequest}`),
      Operations: z.array(scimBulkOperationSchema, 'must be an array of operations').min(1, 'must have at least one operation'),
      failOnErrors: z.number('must be an integer').int('must be an integer').min(1, 'must be at least 1').optional(),
    },
    'must be a SCIM BulkRequest object',
  ),
);

export type ScimBulkRequest = z.output<typeof scimBulkRequestSchema>;
export type ScimBulkOperation = ScimBulkRequest['Operations'][number];

/** `a.b[0].c` for error details, the way SCIM clients name fields. */
function issuePath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((out, key) => (typeof key === 'number' ? `${out}[${key}]` : out ? `${out}.${String(key)}` : String(key)), '');
}

/**
 * Reads a BulkRequest, its nulls dropped (withoutNulls): more than SCIM_MAX_OPERATIONS
 * operations is a 413 (checked first, before anything else is looked at), a bad envelope a
 * 400 invalidSyntax naming the fields.
 */
export function parseScimBulkRequest(input: unknown): { ok: true; request: ScimBulkRequest } | { ok: false; error: ScimErrorInit } {
  const body = withoutNulls(input);
  const operations = isRecord(body) ? getCi(body, 'Operations') : undefined;
  if (Array.isArray(operations) && operations.length > SCIM_MAX_OPERATIONS) {
    return {
      ok: false,
      error: { status: 413, detail: `The request has ${operations.length} operations; maxOperations is ${SCIM_MAX_OPERATIONS}.` },
    };
  }
  const parsed = scimBulkRequestSchema.safeParse(body);
  if (!parsed.success) {
    const detail = parsed.error.issues.map((issue) => `${issuePath(issue.path) || '(body)'}: ${issue.message}`).join('; ');
    return { ok: false, error: { status: 400, scimType: 'invalidSyntax', detail } };
  }
  return { ok: true, request: parsed.data };
}

/**
 * The data of an operation this service takes, or its error: only `POST /Users` with a
 * bulkId and a User object (what Entra sends); another method is a 405, another path 404.
 */
export function checkScimOperation(op: ScimBulkOperation): { ok: true; data: Record<string, unknown> } | { ok: false; error: ScimErrorInit } {
  const method = op.method.toUpperCase();
  const path = op.path.replace(/\/+$/, '');
  if (method !== 'POST') {
    return { ok: false, error: { status: 405, detail: `Method ${method} is not supported; send POST /Users with the whole user (as Entra inbound provisioning does).` } };
  }
  if (path.toLowerCase() !== '/users') {
    return { ok: false, error: { status: 404, scimType: 'invalidPath', detail: `Path ${JSON.stringify(op.path)} is not supported; only /Users is.` } };
  }
  if (op.bulkId === undefined) return { ok: false, error: { status: 400, scimType: 'invalidSyntax', detail: 'bulkId is required for POST.' } };
  if (!isRecord(op.data)) return { ok: false, error: { status: 400, scimType: 'invalidSyntax', detail: 'data must be a SCIM User object.' } };
  const schemas = getCi(op.data, 'schemas');
  if (schemas !== undefined && (!Array.isArray(schemas) || !schemas.includes(SCIM_SCHEMAS.user))) {
    return { ok: false, error: { status: 400, scimType: 'invalidSyntax', detail: `data.schemas must include ${SCIM_SCHEMAS.user}.` } };
  }
  return { ok: true, data: op.data };
}

// --- SCIM attribute paths -------------------------------------------------------------

interface PathSegment {
  name: string;
  /** `emails[type eq "work"]`: pick the element whose sub-attribute equals the value. */
  filter?: { attribute: string; value: string | boolean };
}

export interface ScimPath {
  /** As written, for error details (core URN prefix removed). */
  source: string;
  /** The extension schema URN, or null for core User attributes (top level of the user). */
  urn: string | null;
  segments: PathSegment[];
}

const SEGMENT = /^([A-Za-z$][\w$-]*)(?:\[\s*([A-Za-z$][\w$-]*)\s+eq\s+("(?:[^"\\]|\\.)*"|true|false)\s*\])?$/i;

/** Parses `name.givenName`, `emails[type eq "work"].value`, `urn:...:User:manager.value`. Throws on bad syntax. */
export function parseScimPath(path: string): ScimPath {
  let urn: string | null = null;
  let rest = path.trim();
  if (/^urn:/i.test(rest)) {
    const bracket = rest.indexOf('[');
    const colon = rest.lastIndexOf(':', bracket === -1 ? rest.length : bracket);
    urn = rest.slice(0, colon);
    rest = rest.slice(colon + 1);
    if (urn.toLowerCase() === SCIM_SCHEMAS.user.toLowerCase()) urn = null;
  }
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of rest) {
    if (ch === '[') depth += 1;
    if (ch === ']') depth -= 1;
    if (ch === '.' && depth === 0) {
      parts.push(current);
      current = '';
    } else current += ch;
  }
  parts.push(current);
  const segments = parts.map((part) => {
    const match = SEGMENT.exec(part.trim());
    if (!match) throw new Error(`"${path}" is not a SCIM attribute path (expected e.g. name.givenName, emails[type eq "work"].value or urn:...:User:department)`);
    const [, name, filterAttribute, rawValue] = match;
    if (!filterAttribute || rawValue === undefined) return { name: name! };
    const value = rawValue === 'true' ? true : rawValue === 'false' ? false : (JSON.parse(rawValue) as string);
    return { name: name!, filter: { attribute: filterAttribute, value } };
  });
  return { source: urn ? `${urn}:${rest}` : rest, urn, segments };
}

const matchesFilter = (element: unknown, filter: NonNullable<PathSegment['filter']>) => {
  if (!isRecord(element)) return false;
  const actual = getCi(element, filter.attribute);
  if (typeof filter.value === 'boolean') return actual === filter.value || String(actual).toLowerCase() === String(filter.value);
  return typeof actual === 'string' && actual.toLowerCase() === filter.value.toLowerCase();
};

const isPrimary = (element: unknown) => isRecord(element) && (getCi(element, 'primary') === true || getCi(element, 'primary') === 'true');
const isWork = (element: unknown) => isRecord(element) && String(getCi(element, 'type') ?? '').toLowerCase() === 'work';

/** Of a multi-valued attribute without a filter: the primary value, else a work one, else the first. */
function preferred(values: unknown[]): unknown {
  return values.find(isPrimary) ?? values.find(isWork) ?? values[0];
}

// The shape of core and enterprise User attributes (RFC 7643 sections 4.1 and 4.3), lower case.
/** The multi-valued ones: a list, of which (without a filter) the preferred item is read. */
const MULTI_VALUED = new Set(['emails', 'phonenumbers', 'ims', 'photos', 'addresses', 'groups', 'entitlements', 'roles', 'x509certificates']);
/** The complex single-valued ones: an object, read through its sub-attributes. */
const COMPLEX = new Set(['name', 'manager', 'meta']);
/** The booleans a path may end at; every other core or enterprise attribute a path ends at is a string. */
const BOOLEANS = new Set(['active', 'primary']);

/**
 * The value at a path in a SCIM user (undefined when absent), or what is wrong with it. A
 * complex value at the end means its `value`. Core and enterprise attributes are read by
 * their schema: a list where one value is expected (`title: ["Boss", "Janitor"]`), an object
 * or a number where a string is, a string where an object is, is a problem naming the
 * attribute, never read as its first item or its text. Custom extensions have no schema
 * here, so their values are read as sent, and the attribute schema (domain/attributes.ts)
 * judges them.
 */
export function readScimPath(user: Record<string, unknown>, path: ScimPath): { value: unknown } | { problem: string } {
  const strict = path.urn === null || path.urn.toLowerCase() === ENTERPRISE.toLowerCase();
  const named = (segments: number) => `${path.urn ? `${path.urn}:` : ''}${path.segments.slice(0, segments).map((s) => s.name).join('.')}`;
  let current: unknown = user;
  if (path.urn) {
    current = getCi(user, path.urn);
    if (current !== undefined && !isRecord(current)) return { problem: `${path.urn} must be an object` };
  }
  for (const [i, segment] of path.segments.entries()) {
    if (!isRecord(current)) return { value: undefined };
    const last = i === path.segments.length - 1;
    const multiValued = MULTI_VALUED.has(segment.name.toLowerCase());
    current = getCi(current, segment.name);
    if (Array.isArray(current)) {
      if (segment.filter) current = current.find((element) => matchesFilter(element, segment.filter!));
      else if (strict && !multiValued) return { problem: `${named(i + 1)} must be a single value, not a list` };
      // A custom extension's list at the end is its value, as sent.
      else if (!strict && last) return { value: current };
      else current = preferred(current);
    } else if (segment.filter && current !== undefined && !matchesFilter(current, segment.filter)) {
      return { value: undefined };
    }
    if (current === undefined) return { value: undefined };
    if (!last && !isRecord(current) && strict) return { problem: `${named(i + 1)} must be ${multiValued ? 'a list of objects' : 'an object'}` };
  }
  const end = path.segments.at(-1)!.name.toLowerCase();
  let where = named(path.segments.length);
  if (isRecord(current) && (!strict || MULTI_VALUED.has(end) || COMPLEX.has(end))) {
    // The enterprise manager, an e-mail address: a complex value read as its `value`.
    const value = getCi(current, 'value');
    if (strict || value !== undefined) {
      current = value;
      where = `${where}.value`;
    }
  }
  if (!strict || current === undefined || typeof current === 'string' || (typeof current === 'boolean' && BOOLEANS.has(end))) return { value: current };
  return { problem: `${where} must be ${Array.isArray(current) ? 'a single value, not a list' : isRecord(current) ? 'a string, not an object' : 'a string'}` };
}

// --- the mapping ----------------------------------------------------------------------

/** Mapping target that sets the HR key rather than an attribute. */
export const EMPLOYEE_ID_TARGET = 'employeeId';

/**
 * The default SCIM path -> identity attribute map. Later entries win when both have a
 * value: externalId is the employee id, the enterprise employeeNumber its fallback.
 */
export const DEFAULT_SCIM_ATTRIBUTE_MAP: Readonly<Record<string, string>> = Object.freeze({
  [`${ENTERPRISE}:employeeNumber`]: EMPLOYEE_ID_TARGET,
  externalId: EMPLOYEE_ID_TARGET,
  userName: 'userName',
  'name.givenName': 'givenName',
  'name.familyName': 'familyName',
  displayName: 'displayName',
  'emails.value': 'email',
  title: 'title',
  [`${ENTERPRISE}:department`]: 'department',
  'addresses.locality': 'location',
  'addresses.country': 'country',
  userType: 'employmentType',
  [`${ENTERPRISE}:manager.value`]: 'managerId',
  [`${ENTERPRISE}:costCenter`]: 'costCenter',
  [`${ENTERPRISE}:division`]: 'division',
  [`${ENTERPRISE}:organization`]: 'organization',
});

export const DEFAULT_SCIM_CONFIG: ScimConfig = { attributeMap: {}, required: ['givenName', 'familyName'] };

export interface CompiledScimMapping {
  entries: Array<{ path: ScimPath; target: string }>;
  required: string[];
}

const pathKey = (path: ScimPath) => path.source.toLowerCase();

/**
 * The effective mapping: the default map, minus the paths the config maps itself, then the
 * config's entries (so they win when they have a value). A config value of "" drops a
 * default mapping. Throws one error naming every bad path.
 */
export function compileScimMapping(config: ScimConfig = DEFAULT_SCIM_CONFIG): CompiledScimMapping {
  const problems: string[] = [];
  const compile = (entries: Array<[string, string]>) =>
    entries.flatMap(([source, target]) => {
      try {
        return [{ path: parseScimPath(source), target }];
      } catch (err) {
        problems.push(`scim.attributeMap: ${(err as Error).message}`);
        return [];
      }
    });
  const configured = compile(Object.entries(config.attributeMap));
  const overridden = new Set(configured.map((e) => pathKey(e.path)));
  const defaults = compile(Object.entries(DEFAULT_SCIM_ATTRIBUTE_MAP)).filter((e) => !overridden.has(pathKey(e.path)));
  if (problems.length) throw new Error(problems.join('\n'));
  return { entries: [...defaults, ...configured].filter((e) => e.target.trim() !== ''), required: config.required };
}

const compiledCache = new WeakMap<ScimConfig, CompiledScimMapping>();
function compiled(config: ScimConfig): CompiledScimMapping {
  let mapping = compiledCache.get(config);
  if (!mapping) {
    mapping = compileScimMapping(config);
    compiledCache.set(config, mapping);
  }
  return mapping;
}

/** The SCIM path that feeds an identity attribute, for error details (`name.familyName`). */
export function scimPathOf(attribute: string, config: ScimConfig = DEFAULT_SCIM_CONFIG): string {
  const entries = compiled(config).entries.filter((e) => e.target === attribute);
  return entries.at(-1)?.path.source ?? attribute;
}

/** `HireDate` -> `hireDate`: custom extension attributes keep their own name, lower camel case. */
function ownName(name: string): string {
  return name.charAt(0).toLowerCase() + name.slice(1);
}

/** Names that must never become object keys set by input. */
const UNSAFE_NAMES = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Absent: undefined (nulls are dropped first, RFC 7643 section 2.5), or an empty string,
 * which HR systems send for an empty field. Nothing else: a value of spaces is padding, and
 * refused as such (domain/attributes.ts), never read as absent.
 */
const isAbsent = (value: unknown) => value === undefined || value === '';

// --- bulkId references (RFC 7644 section 3.7.2) ---------------------------------------

/** A value `bulkId:<id>` refers to the resource the operation with that bulkId creates. */
export const BULK_ID_PREFIX = 'bulkId:';

const bulkIdOf = (value: unknown) => (typeof value === 'string' && value.startsWith(BULK_ID_PREFIX) ? value.slice(BULK_ID_PREFIX.length) : null);

/** Every bulkId a value refers to, at any depth; walked with a stack, so no input exhausts the call stack. */
function referencesIn(value: unknown): string[] {
  const found: string[] = [];
  const stack: unknown[] = [value];
  while (stack.length) {
    const current = stack.pop();
    const bulkId = bulkIdOf(current);
    if (bulkId !== null) found.push(bulkId);
    else if (Array.isArray(current)) for (const item of current) stack.push(item);
    else if (isRecord(current)) for (const item of Object.values(current)) stack.push(item);
  }
  return found;
}

/**
 * What a `bulkId:` reference of one operation stands for: the employee id of the person the
 * referenced operation is about (for us the resource id), or why it stands for nothing.
 */
export type ScimBulkIdResolver = (bulkId: string) => { employeeId: string } | { problem: string };

const UNKNOWN_BULK_ID = 'refers to a bulkId that no operation of this request has';
/** Outside a bulk request, no bulkId refers to anything. */
const noBulkIds: ScimBulkIdResolver = () => ({ problem: UNKNOWN_BULK_ID });

/**
 * A value with each `bulkId:` reference in it replaced by what it stands for, or the problems
 * of those that stand for nothing. Values nested deeper than the attribute schema takes are
 * left as they are: that schema refuses them, so no reference is ever stored literally.
 */
function resolveReferences(value: unknown, resolve: ScimBulkIdResolver, problems: Set<string>, depth = 0): unknown {
  const bulkId = bulkIdOf(value);
  if (bulkId !== null) {
    const resolved = resolve(bulkId);
    if ('problem' in resolved) problems.add(resolved.problem);
    return 'employeeId' in resolved ? resolved.employeeId : value;
  }
  if (depth > ATTRIBUTE_LIMITS.unknownDepth) return value;
  if (Array.isArray(value)) return value.map((item) => resolveReferences(item, resolve, problems, depth + 1));
  if (isRecord(value)) return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, resolveReferences(item, resolve, problems, depth + 1)]));
  return value;
}

export interface ScimBulkLink {
  /** The operation's own bulkId. */
  bulkId?: string;
  /** The bulkIds its user refers to. */
  references: readonly string[];
}

export interface ScimBulkPlan {
  /** Indexes of the operations, in the order to process them. */
  order: number[];
  /** The operations on a cycle of references (their own bulkId included): these cannot be resolved. */
  cyclic: ReadonlySet<number>;
}

/**
 * The order to process a request's operations in: request order, except that an operation
 * comes after the operations it refers to (RFC 7644 section 3.7 lets the service provider
 * reorder). An operation on a cycle of references fails; it still comes after the operations
 * off the cycle it refers to, so its answer names only the cycle. A bulkId no operation has,
 * or several have, orders nothing: resolving it fails (scimBulkIdResolver). At most
 * SCIM_MAX_OPERATIONS operations, so plain quadratic walks are fine.
 */
export function planScimBulk(links: readonly ScimBulkLink[]): ScimBulkPlan {
  const having = new Map<string, number[]>();
  links.forEach((link, index) => {
    if (link.bulkId !== undefined) having.set(link.bulkId, [...(having.get(link.bulkId) ?? []), index]);
  });
  const targets = links.map((link) => [...new Set(link.references.flatMap((bulkId) => (having.get(bulkId)?.length === 1 ? having.get(bulkId)! : [])))]);
  const reaches = (from: number, to: number) => {
    const seen = new Set([from]);
    const queue = [from];
    while (queue.length) {
      const at = queue.shift()!;
      if (at === to) return true;
      for (const next of targets[at]!) {
        if (seen.has(next)) continue;
        seen.add(next);
        queue.push(next);
      }
    }
    return false;
  };
  const cyclic = new Set(links.flatMap((_, index) => (targets[index]!.some((target) => reaches(target, index)) ? [index] : [])));
  // Always one to place: following unplaced targets (a cyclic operation's only off the cycle)
  // from an operation that cannot be placed would otherwise loop, i.e. find a cycle.
  const order: number[] = [];
  const placed = new Set<number>();
  while (order.length < links.length) {
    const next = links.findIndex((_, index) => !placed.has(index) && targets[index]!.every((target) => placed.has(target) || (cyclic.has(index) && cyclic.has(target))));
    placed.add(next);
    order.push(next);
  }
  return { order, cyclic };
}

/** What became of an operation processed: the person it was about, or a failure. */
export type ScimBulkOutcome = { ok: true; employeeId: string } | { ok: false };

/** The resolver of the bulkId references of operation `from`, given the plan and what became of the operations processed so far. */
export function scimBulkIdResolver(links: readonly ScimBulkLink[], plan: ScimBulkPlan, outcomes: ReadonlyMap<number, ScimBulkOutcome>, from: number): ScimBulkIdResolver {
  return (bulkId) => {
    const having = links.flatMap((link, index) => (link.bulkId === bulkId ? [index] : []));
    if (having.length === 0) return { problem: UNKNOWN_BULK_ID };
    const named = `bulkId ${JSON.stringify(bulkId)}`;
    if (having.length > 1) return { problem: `refers to ${named}, which more than one operation of this request has` };
    const target = having[0]!;
    if (plan.cyclic.has(from) && plan.cyclic.has(target)) return { problem: `refers to ${named} on a cycle of bulkId references` };
    const outcome = outcomes.get(target);
    if (!outcome?.ok) return { problem: `refers to ${named}, whose operation failed` };
    return { employeeId: outcome.employeeId };
  };
}

// --- reading a user -------------------------------------------------------------------

interface ReadUser {
  /** The employee id as sent, and the SCIM path it came from. */
  employeeId?: { value: unknown; source: string };
  /** The id's path had a problem (already among `problems`). */
  employeeIdRefused?: boolean;
  /** Each attribute as sent, with the SCIM path it came from (for error details). */
  attributes: Map<string, { value: unknown; source: string }>;
  problems: string[];
}

/** A user's attributes as sent, per the mapping and the custom extensions, with what is wrong with their shape. */
function readUser(data: Record<string, unknown>, config: ScimConfig): ReadUser {
  const mapping = compiled(config);
  const read: ReadUser = { attributes: new Map(), problems: [] };
  for (const { path, target } of mapping.entries) {
    const value = readScimPath(data, path);
    if ('problem' in value) {
      read.problems.push(value.problem);
      if (target === EMPLOYEE_ID_TARGET) read.employeeIdRefused = true;
    } else if (isAbsent(value.value)) continue;
    // Later entries win: externalId over the enterprise employeeNumber.
    else if (target === EMPLOYEE_ID_TARGET) read.employeeId = { value: value.value, source: path.source };
    else if (!UNSAFE_NAMES.has(target)) read.attributes.set(target, { value: value.value, source: path.source });
  }

  // Custom extensions: copied under their own names, unless a mapping reads them.
  const mappedTops = new Set(mapping.entries.filter((e) => e.path.urn).map((e) => `${e.path.urn!.toLowerCase()}:${e.path.segments[0]!.name.toLowerCase()}`));
  for (const [key, extension] of Object.entries(data)) {
    const urn = key.toLowerCase();
    if (!urn.startsWith('urn:') || urn === SCIM_SCHEMAS.user.toLowerCase() || urn === ENTERPRISE.toLowerCase()) continue;
    if (!isRecord(extension)) {
      read.problems.push(`${key} must be an object`);
      continue;
    }
    for (const [name, value] of Object.entries(extension)) {
      const target = ownName(name);
      if (isAbsent(value) || mappedTops.has(`${urn}:${name.toLowerCase()}`) || target === EMPLOYEE_ID_TARGET || UNSAFE_NAMES.has(target) || read.attributes.has(target)) continue;
      read.attributes.set(target, { value, source: `${key}:${name}` });
    }
  }
  return read;
}

/**
 * What the user of a bulk operation names before it is mapped: the person (canonical
 * employee id, or null) and the bulkIds its attributes refer to, so that the operations can
 * be looked up and put in an order that resolves them (planScimBulk).
 */
export function scimUserLinks(input: Record<string, unknown>, config: ScimConfig = DEFAULT_SCIM_CONFIG): { employeeId: string | null; references: string[] } {
  const read = readUser(withoutNulls(input) as Record<string, unknown>, config);
  const references = [...read.attributes.values()].flatMap(({ value }) => referencesIn(value));
  return { employeeId: read.employeeIdRefused ? null : parseEmployeeId(read.employeeId?.value), references: [...new Set(references)] };
}

export interface ScimMappedUser {
  employeeId: string;
  attributes: IdentityAttributes;
  /**
   * SCIM `active`: false is a leaver, true a joiner or returner. Absent (or null) when the
   * user does not say: the person's status stays as it is (decideScimChange).
   */
  active?: boolean;
}

export interface ScimMappingError {
  error: { status: 400; scimType: ScimErrorType; detail: string };
}

export type ScimMappingResult = ScimMappedUser | ScimMappingError;

const invalid = (detail: string, scimType: ScimErrorType = 'invalidValue'): ScimMappingError => ({ error: { status: 400, scimType, detail } });

/**
 * A SCIM User (the `data` of a bulk operation) as an HR identity, or one error naming every
 * bad attribute by its SCIM path. Nulls (at any depth) and empty strings count as absent.
 * Every attribute goes through the one attribute schema (domain/attributes.ts): nothing is
 * trimmed or coerced, and a list where one value is expected is refused (readScimPath). The
 * employee id and the manager's are folded to their canonical spelling
 * (domain/employee-id.ts), so `e1001` and `E1001` are one person. A `bulkId:` reference is
 * replaced by what `resolveBulkId` says it stands for (the referenced person's employee id),
 * never kept. Attributes of custom extension schemas (any `urn:` member other than the core
 * and enterprise User) are kept under their own names unless the config maps them. Required
 * attributes are not checked here: Entra sends partial users, and only a hire needs them
 * (decideScimChange).
 */
export function mapScimUser(input: Record<string, unknown>, config: ScimConfig = DEFAULT_SCIM_CONFIG, resolveBulkId: ScimBulkIdResolver = noBulkIds): ScimMappingResult {
  const data = withoutNulls(input) as Record<string, unknown>;
  const read = readUser(data, config);
  const problems = new Set(read.problems);

  const rawActive = getCi(data, 'active');
  let active: boolean | undefined;
  if (typeof rawActive === 'boolean') active = rawActive;
  // Some SCIM clients send "True" / "False"; the words only, never padded.
  else if (typeof rawActive === 'string' && /^(true|false)$/i.test(rawActive)) active = rawActive.toLowerCase() === 'true';
  else if (rawActive !== undefined) problems.add('active must be a boolean.');

  const employeeId = read.employeeId && parseEmployeeId(read.employeeId.value);
  // An id whose shape was refused is named once, by that problem.
  if (!read.employeeId && !read.employeeIdRefused) problems.add(`${scimPathOf(EMPLOYEE_ID_TARGET, config)} is required (the employee id).`);
  else if (read.employeeId && !employeeId) problems.add(`${read.employeeId.source} ${EMPLOYEE_ID_RULE}`);

  const attributes: Record<string, unknown> = {};
  const sources = new Map<string, string>();
  for (const [target, { value, source }] of read.attributes) {
    const unresolved = new Set<string>();
    const resolved = resolveReferences(value, resolveBulkId, unresolved);
    for (const problem of unresolved) problems.add(`${source} ${problem}`);
    if (unresolved.size === 0) attributes[target] = resolved;
    sources.set(target, source);
  }
  const parsed = parseAttributes(attributes);
  if (!parsed.ok) {
    for (const { attribute, message } of parsed.issues) {
      const source = sources.get(attribute) ?? sources.get(attribute.split('.')[0]!) ?? (attribute || 'the user');
      problems.add(`${source} ${message}`);
    }
  }

  if (problems.size || !parsed.ok || !employeeId) return invalid([...problems].join('; '));
  return { employeeId, attributes: parsed.attributes as IdentityAttributes, ...(active === undefined ? {} : { active }) };
}

/** The error naming the SCIM paths of the `scim.required` attributes a new person lacks, or null. */
function missingRequired(attributes: IdentityAttributes, config: ScimConfig): ScimMappingError['error'] | null {
  const missing = compiled(config)
    .required.filter((attribute) => isAbsent(attributes[attribute]))
    .map((attribute) => scimPathOf(attribute, config));
  if (missing.length === 0) return null;
  return invalid(missing.length === 1 ? `${missing[0]} is required` : `${missing.slice(0, -1).join(', ')} and ${missing.at(-1)} are required`).error;
}

// --- what a user becomes --------------------------------------------------------------

export interface ScimKnownIdentity {
  status: IdentityStatus;
  attributes: IdentityAttributes;
}

export type ScimEventType = Extract<HrEventType, 'hire' | 'update' | 'terminate' | 'rehire'>;

export type ScimDecision =
  | { action: 'event'; type: ScimEventType; attributes: IdentityAttributes }
  | { action: 'none'; outcome: 'unchanged' | 'ignored'; detail: string }
  | { action: 'refuse'; error: ScimMappingError['error'] };

/**
 * The attributes whose value differs from what is stored. None is removed: an attribute
 * that is absent, or null (the same thing, RFC 7643 section 2.5), leaves the stored value.
 * That is what Entra means by it: its documented update sends only the attributes that
 * change (externalId, active, department), and it clears a target attribute only for
 * tenants that opt in to "null flow"; a missing attribute must not wipe a person's name.
 */
export function changedAttributes(stored: IdentityAttributes, incoming: IdentityAttributes): IdentityAttributes {
  return Object.fromEntries(Object.entries(incoming).filter(([key, value]) => canonicalJson(value) !== canonicalJson(stored[key])));
}

/**
 * The HR event a user becomes, given what is known about the person. Entra sends whole
 * users or partial ones (its documented update carries only externalId, active and the
 * attribute that changed; a request that clears an attribute not even active), so an
 * absent `active` leaves the person's status as it is:
 *   unknown:               true or absent -> hire; false -> nothing (ignored);
 *   terminated/rescinded:  true -> rehire; false -> nothing; absent -> update;
 *   active/on_leave/pre_hire: false -> terminate; true or absent -> update;
 * where an update carries only what changed, and is nothing when nothing did. Only a hire
 * makes a new person, so only a hire is refused for a missing `scim.required` attribute: an
 * update or a terminate keeps the stored names, and a rehire reopens the same record (the
 * lifecycle folds its attributes over the stored ones, as the webhook's rehire does).
 */
export function decideScimChange(current: ScimKnownIdentity | undefined, user: ScimMappedUser, config: ScimConfig = DEFAULT_SCIM_CONFIG): ScimDecision {
  if (!current) {
    if (user.active === false) return { action: 'none', outcome: 'ignored', detail: 'Unknown person sent as inactive: nothing to do.' };
    const refused = missingRequired(user.attributes, config);
    return refused ? { action: 'refuse', error: refused } : { action: 'event', type: 'hire', attributes: user.attributes };
  }
  const ended = current.status === 'terminated' || current.status === 'rescinded';
  if (ended && user.active === true) return { action: 'event', type: 'rehire', attributes: user.attributes };
  const changed = changedAttributes(current.attributes, user.attributes);
  // Still inactive: HR may be correcting a leaver's data, which changes attributes only.
  if (ended && user.active === false) {
    return Object.keys(changed).length === 0 ? { action: 'none', outcome: 'unchanged', detail: `Already ${current.status}.` } : { action: 'event', type: 'update', attributes: changed };
  }
  if (user.active === false) return { action: 'event', type: 'terminate', attributes: changed };
  if (Object.keys(changed).length === 0) return { action: 'none', outcome: 'unchanged', detail: 'No attribute changed.' };
  return { action: 'event', type: 'update', attributes: changed };
}

/** A hire takes effect at a future `hireDate` / `startDate` when the user carries one; everything else now. */
export function scimEffectiveAt(type: ScimEventType, attributes: IdentityAttributes, now: Date): Date {
  if (type !== 'hire') return now;
  for (const name of ['hireDate', 'startDate']) {
    const value = attributes[name];
    if (typeof value !== 'string' && typeof value !== 'number') continue;
    const at = new Date(value);
    if (!Number.isNaN(at.getTime()) && at.getTime() > now.getTime()) return at;
  }
  return now;
}

/**
 * What the idempotency key of a SCIM event hashes: the person, the whole mapped user
 * (not just the changed attributes), active (left out when absent), the event type, and
 * the state it was decided against (`basis`: the identity's status and updatedAt, or
 * "new"). A retry of the same request against the same state gives the same key and so
 * creates nothing; a real change, or the same content after the person moved on (rehired
 * with the attributes of the first hire, say), gives a new one.
 */
export function scimEventKeyMaterial(input: { employeeId: string; type: ScimEventType; attributes: IdentityAttributes; active?: boolean; basis: string }): string {
  return canonicalJson({ v: 1, employeeId: input.employeeId, type: input.type, active: input.active, attributes: input.attributes, basis: input.basis });
}
