// SCIM 2.0 bulk input, the pure half: the BulkRequest envelope as Microsoft Entra API-driven
// inbound provisioning sends it, the mapping from a SCIM User to an HR identity (a default
// map that `scim.attributeMap` in the config overrides and extends), the decision which HR
// event a user becomes given what is known about the person, and the material of the
// event's idempotency key. No I/O and no Node built-ins (the sha256 of the key material is
// taken by the caller), so this stays as safe to import as the rest of domain/.
import { canonicalJson } from './canonical-json.js';
import { z } from 'zod';
import type { ScimConfig } from './config.js';
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
export function withoutNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.filter((item) => item !== null).map(withoutNulls);
  if (isRecord(value)) return Object.fromEntries(Object.entries(value).flatMap(([key, member]) => (member === null ? [] : [[key, withoutNulls(member)]])));
  return value;
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

/** The value at a path in a SCIM user, or undefined. A complex value at the end means its `value`. */
export function readScimPath(user: Record<string, unknown>, path: ScimPath): unknown {
  let current: unknown = user;
  if (path.urn) {
    current = getCi(user, path.urn);
  }
  for (const segment of path.segments) {
    if (!isRecord(current)) return undefined;
    current = getCi(current, segment.name);
    if (Array.isArray(current)) {
      current = segment.filter ? current.find((element) => matchesFilter(element, segment.filter!)) : preferred(current);
    } else if (segment.filter && !matchesFilter(current, segment.filter)) {
      return undefined;
    }
  }
  if (isRecord(current) && getCi(current, 'value') !== undefined) return getCi(current, 'value');
  return current;
}

// --- the mapping ----------------------------------------------------------------------

const ENTERPRISE = SCIM_SCHEMAS.enterpriseUser;
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

const isBlank = (value: unknown) => value === undefined || (typeof value === 'string' && value.trim() === '');
/** The identity attribute that holds the manager's employee id (enterprise manager.value). */
const MANAGER_ID = 'managerId';
/** An attribute value as kept: text trimmed, except an employee id, which is refused padded (parseEmployeeId). */
const kept = (target: string, value: unknown) => (typeof value === 'string' && target !== MANAGER_ID ? value.trim() : value);
/** An employee id in canonical spelling, or null; Entra may send a numeric id as a JSON number. */
const employeeIdOf = (value: unknown) => parseEmployeeId(typeof value === 'number' && Number.isInteger(value) ? String(value) : value);

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
 * A SCIM User (the `data` of a bulk operation) as an HR identity. Nulls (at any depth) and
 * empty strings count as absent. The employee id and the manager's are folded to their
 * canonical spelling (domain/employee-id.ts), so `e1001` and `E1001` are one person.
 * Attributes of custom extension schemas (any `urn:` member other than the core and
 * enterprise User) are kept under their own names unless the config maps them. Required
 * attributes are not checked here: Entra sends partial users, and only a hire needs them
 * (decideScimChange).
 */
export function mapScimUser(input: Record<string, unknown>, config: ScimConfig = DEFAULT_SCIM_CONFIG): ScimMappingResult {
  const data = withoutNulls(input) as Record<string, unknown>;
  const mapping = compiled(config);
  const attributes: IdentityAttributes = {};
  let employeeId: unknown;
  for (const { path, target } of mapping.entries) {
    const value = readScimPath(data, path);
    if (isBlank(value)) continue;
    if (target === EMPLOYEE_ID_TARGET) employeeId = value;
    else if (!UNSAFE_NAMES.has(target)) attributes[target] = kept(target, value);
  }

  // Custom extensions: copied under their own names, unless a mapping reads them.
  const mappedTops = new Set(mapping.entries.filter((e) => e.path.urn).map((e) => `${e.path.urn!.toLowerCase()}:${e.path.segments[0]!.name.toLowerCase()}`));
  for (const [key, extension] of Object.entries(data)) {
    const urn = key.toLowerCase();
    if (!urn.startsWith('urn:') || urn === SCIM_SCHEMAS.user.toLowerCase() || urn === ENTERPRISE.toLowerCase() || !isRecord(extension)) continue;
    for (const [name, value] of Object.entries(extension)) {
      const target = ownName(name);
      if (isBlank(value) || mappedTops.has(`${urn}:${name.toLowerCase()}`) || target === EMPLOYEE_ID_TARGET || UNSAFE_NAMES.has(target) || Object.hasOwn(attributes, target)) continue;
      attributes[target] = kept(target, value);
    }
  }

  const rawActive = getCi(data, 'active');
  let active: boolean | undefined;
  if (typeof rawActive === 'boolean') active = rawActive;
  else if (typeof rawActive === 'string' && /^(true|false)$/i.test(rawActive.trim())) active = rawActive.trim().toLowerCase() === 'true';
  else if (rawActive !== undefined) return invalid('active must be a boolean.');

  const idPath = scimPathOf(EMPLOYEE_ID_TARGET, config);
  if (isBlank(employeeId)) return invalid(`${idPath} is required (the employee id).`);
  const id = employeeIdOf(employeeId);
  if (!id) return invalid(`${idPath} ${EMPLOYEE_ID_RULE}`);
  if (attributes[MANAGER_ID] !== undefined) {
    const managerId = employeeIdOf(attributes[MANAGER_ID]);
    if (!managerId) return invalid(`${scimPathOf(MANAGER_ID, config)} ${EMPLOYEE_ID_RULE}`);
    attributes[MANAGER_ID] = managerId;
  }
  return { employeeId: id, attributes, ...(active === undefined ? {} : { active }) };
}

/** The error naming the SCIM paths of the `scim.required` attributes a new person lacks, or null. */
function missingRequired(attributes: IdentityAttributes, config: ScimConfig): ScimMappingError['error'] | null {
  const missing = compiled(config)
    .required.filter((attribute) => isBlank(attributes[attribute]))
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
