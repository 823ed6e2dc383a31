// SCIM 2.0 bulk input, as Microsoft Entra API-driven inbound provisioning sends it:
//   POST /api/v1/scim/v2/Bulk                 a BulkRequest of `POST /Users` operations
//                                            (scope events:write) -> 200 BulkResponse
//   GET  /api/v1/scim/v2/ServiceProviderConfig, /ResourceTypes[/{id}], /Schemas[/{id}]
//                                            (any valid token)
// Each operation's user is mapped (domain/scim.ts, `scim` in the config), compared with
// what is known about the person, and becomes at most one HR event with a stable
// idempotency key; all events of one request are submitted as ONE feed (services/feeds.ts), so
// the mass-leaver brake judges the request as a whole. A bad user gets its own SCIM error
// and the others still go through. The answer is always a BulkResponse with a status per
// operation, never a bare 202. Errors of this plugin are SCIM Error bodies
// (application/scim+json), not problem details: SCIM clients read those.
import { createHash } from 'node:crypto';
import type { Queue } from 'bullmq';
import { inArray, sql } from 'drizzle-orm';
import type { FastifyError, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { JmlConfig } from '../../domain/config.js';
import { canonicalEmployeeId } from '../../domain/employee-id.js';
import {
  checkScimOperation,
  compileScimMapping,
  decideScimChange,
  mapScimUser,
  parseScimBulkRequest,
  planScimBulk,
  SCIM_MAX_OPERATIONS,
  SCIM_MAX_PAYLOAD_BYTES,
  SCIM_SCHEMAS,
  scimBulkRequestSchema,
  scimEffectiveAt,
  scimErrorBody,
  scimBulkIdResolver,
  scimEventKeyMaterial,
  scimUserLinks,
  type ScimBulkLink,
  type ScimBulkOutcome,
  type ScimErrorInit,
  type ScimEventType,
  type ScimKnownIdentity,
} from '../../domain/scim.js';
import { SCOPES, type HrEventStatus, type IdentityStatus } from '../../domain/types.js';
import type { Db } from '../../db/client.js';
import { submitFeed } from '../../services/feeds.js';
import { fieldsOfText, reportRejectedInput, type RefusedField } from '../../services/input-rejections.js';
import type { NewHrEvent } from '../../db/inbox.js';
import { identities } from '../../db/schema.js';
import type { HrEventJob } from '../../services/hr-event-queue.js';
import { requireScope } from '../auth.js';
import { jsonBodyParser } from '../json-body.js';
import type { ApiMetrics } from '../metrics.js';
import { anyBearer, bearer } from '../openapi.js';
import { isDatabaseUnavailable, PROBLEM_TYPES, ProblemError, safeErrorInfo } from '../problem.js';

export const SCIM_PATH = '/api/v1/scim/v2';
export const SCIM_CONTENT_TYPE = 'application/scim+json';
/**
 * Non-standard members of our answers live under this URN, so SCIM clients ignore them:
 * per operation the HR event it became; on the BulkResponse the feed (batch) it went in.
 */
export const JML_SCIM_EXTENSION = 'urn:jml:params:scim:api:messages:1.0:BulkResult';

export interface ScimRoutesOptions {
  db: Db;
  queue: Queue<HrEventJob>;
  config: JmlConfig;
  /** Base of the `location` URLs, e.g. https://jml.example.com. */
  publicUrl: string;
  metrics?: ApiMetrics;
}

/** `scim:` + sha256 of the key material (domain/scim.ts scimEventKeyMaterial): the hr_events id. */
export function scimEventId(input: Parameters<typeof scimEventKeyMaterial>[0]): string {
  return `scim:${createHash('sha256').update(scimEventKeyMaterial(input)).digest('hex')}`;
}

class ScimError extends Error {
  constructor(
    readonly init: ScimErrorInit,
    readonly headers: Record<string, string> = {},
    options?: { cause?: unknown },
  ) {
    super(init.detail, options);
    this.name = 'ScimError';
  }
}

function sendScimError(reply: FastifyReply, init: ScimErrorInit, headers: Record<string, string> = {}): FastifyReply {
  return reply.code(init.status).headers(headers).type(SCIM_CONTENT_TYPE).send(scimErrorBody(init));
}

/** Everything this plugin throws, answered as a SCIM Error (RFC 7644 section 3.12). */
function scimErrorHandler(error: FastifyError | Error, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (error instanceof ScimError) {
    if (error.init.status >= 500) request.log.warn({ err: safeErrorInfo(error.cause), status: error.init.status }, error.init.detail);
    return sendScimError(reply, error.init, error.headers);
  }
  if (error instanceof ProblemError) {
    // requireScope's 401 / 403, the body parser's 400 (not UTF-8, nested too deep, not JSON):
    // same status and headers, SCIM body.
    const scimType = error.problem.type === PROBLEM_TYPES.malformedJson ? 'invalidSyntax' : undefined;
    return sendScimError(reply, { status: error.problem.status, ...(scimType ? { scimType } : {}), detail: error.problem.detail ?? error.problem.title }, error.problem.headers);
  }
  if (isDatabaseUnavailable(error)) {
    request.log.warn({ err: safeErrorInfo(error) }, 'database unavailable');
    return sendScimError(reply, { status: 503, detail: 'The database is unavailable; retry later.' }, { 'retry-after': '5' });
  }
  const code = (error as FastifyError).code;
  const status = (error as FastifyError).statusCode;
  if (code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return sendScimError(reply, { status: 413, detail: `The request body exceeds maxPayloadSize ${SCIM_MAX_PAYLOAD_BYTES} bytes.` });
  }
  if (code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    return sendScimError(reply, { status: 415, detail: `Send ${SCIM_CONTENT_TYPE} (or application/json).` });
  }
  if (code === 'FST_ERR_CTP_EMPTY_JSON_BODY') return sendScimError(reply, { status: 400, scimType: 'invalidSyntax', detail: 'The body is empty.' });
  if (error instanceof SyntaxError || code === 'FST_ERR_CTP_INVALID_JSON_BODY') {
    return sendScimError(reply, { status: 400, scimType: 'invalidSyntax', detail: 'The body is not valid JSON.' });
  }
  if (typeof status === 'number' && status >= 400 && status < 500) return sendScimError(reply, { status, detail: error.message });
  request.log.error({ err: safeErrorInfo(error) }, 'unhandled error');
  return sendScimError(reply, { status: 500, detail: 'An unexpected error occurred; it has been logged.' });
}

// --- discovery documents (RFC 7643 sections 5-7) --------------------------------------

interface AttributeInit {
  type?: 'string' | 'boolean' | 'complex' | 'reference' | 'dateTime' | 'integer';
  multiValued?: boolean;
  required?: boolean;
  description: string;
  subAttributes?: Array<Record<string, unknown>>;
  referenceTypes?: string[];
  canonicalValues?: string[];
  mutability?: 'readOnly' | 'readWrite' | 'immutable' | 'writeOnly';
}

function attribute(name: string, init: AttributeInit): Record<string, unknown> {
  const type = init.type ?? 'string';
  return {
    name,
    type,
    multiValued: init.multiValued ?? false,
    description: init.description,
    required: init.required ?? false,
    ...(type === 'string' || type === 'reference' ? { caseExact: false } : {}),
    ...(init.canonicalValues ? { canonicalValues: init.canonicalValues } : {}),
    ...(init.referenceTypes ? { referenceTypes: init.referenceTypes } : {}),
    ...(init.subAttributes ? { subAttributes: init.subAttributes } : {}),
    mutability: init.mutability ?? 'readWrite',
    returned: 'default',
    uniqueness: 'none',
  };
}

const multiValuedParts = (what: string) => [
  attribute('type', { description: `A label for the ${what}: work, home, other.`, canonicalValues: ['work', 'home', 'other'] }),
  attribute('primary', { type: 'boolean', description: `The preferred ${what}; read when there are several.` }),
];

const USER_SCHEMA_ATTRIBUTES = [
  attribute('userName', { description: 'Unique identifier of the user, often the sign-in name; kept as the userName attribute.' }),
  attribute('name', {
    type: 'complex',
    description: "The user's name.",
    subAttributes: [
      attribute('givenName', { description: 'Given name; the identity attribute givenName (required by default to hire someone new).' }),
      attribute('familyName', { description: 'Family name; the identity attribute familyName (required by default to hire someone new).' }),
    ],
  }),
  attribute('displayName', { description: 'Name shown to people; the identity attribute displayName.' }),
  attribute('title', { description: 'Job title; the identity attribute title.' }),
  attribute('userType', { description: 'Employment type (employee, contractor, ...); the identity attribute employmentType.' }),
  attribute('active', { type: 'boolean', description: 'false makes an active person a leaver; true brings a leaver back (rehire); absent leaves the status as it is.' }),
  attribute('emails', {
    type: 'complex',
    multiValued: true,
    description: 'E-mail addresses; the primary one (else a work one, else the first) is the identity attribute email.',
    subAttributes: [attribute('value', { description: 'The e-mail address.' }), ...multiValuedParts('e-mail address')],
  }),
  attribute('addresses', {
    type: 'complex',
    multiValued: true,
    description: 'Addresses; of the primary one (else a work one, else the first) locality is location and country is country.',
    subAttributes: [attribute('locality', { description: 'City or locality.' }), attribute('country', { description: 'Country (ISO 3166-1 alpha-2).' }), ...multiValuedParts('address')],
  }),
];

const ENTERPRISE_SCHEMA_ATTRIBUTES = [
  attribute('employeeNumber', { description: 'The HR employee id, used when externalId is absent.' }),
  attribute('department', { description: 'Department; the identity attribute department.' }),
  attribute('costCenter', { description: 'Cost center.' }),
  attribute('division', { description: 'Division.' }),
  attribute('organization', { description: 'Organization.' }),
  attribute('manager', {
    type: 'complex',
    description: "The user's manager; value is the manager's externalId (employee id), the identity attribute managerId.",
    subAttributes: [
      attribute('value', { description: "The manager's externalId, or bulkId:<id> for the user another operation of the same request sends." }),
      attribute('$ref', { type: 'reference', referenceTypes: ['User'], description: "URI of the manager's resource." }),
      attribute('displayName', { description: "The manager's display name.", mutability: 'readOnly' }),
    ],
  }),
];

export const SCIM_BULK_PATH = '/Bulk';

// --- documents, as the OpenAPI document shows them ---------------------------------------

const scimErrorSchema = z.object({ schemas: z.array(z.string()), status: z.string(), scimType: z.string().optional(), detail: z.string() });
/** Every SCIM endpoint's error answer (scimErrorHandler): a SCIM Error, never a problem. */
const scimErrors = { default: scimErrorSchema.describe('A SCIM Error (RFC 7644 section 3.12).') };
/** A SCIM resource (RFC 7643): its `schemas` say what it is; the rest is as that schema describes. */
const scimResource = z.looseObject({ schemas: z.array(z.string()) });
const scimListResponse = z.looseObject({
  schemas: z.array(z.literal(SCIM_SCHEMAS.listResponse)),
  totalResults: z.number().int(),
  itemsPerPage: z.number().int(),
  startIndex: z.number().int(),
  Resources: z.array(scimResource),
});
const bulkResponseSchema = z.object({
  schemas: z.array(z.literal(SCIM_SCHEMAS.bulkResponse)),
  Operations: z.array(
    z.object({
      method: z.string(),
      bulkId: z.string().optional(),
      location: z.string().optional(),
      status: z.string().describe('The HTTP status of the operation, as a string: 201 a hire, 200 another change or none, 4xx refused.'),
      response: scimErrorSchema.optional().describe('Why the operation was refused.'),
      [JML_SCIM_EXTENSION]: z.record(z.string(), z.unknown()).optional().describe('The HR event the operation became (eventId, eventType, created, eventStatus, batchId), or why none.'),
    }),
  ),
  [JML_SCIM_EXTENSION]: z
    .object({ batchId: z.guid().nullable(), batchStatus: z.enum(['accepted', 'held']).nullable(), events: z.number().int(), errors: z.number().int() })
    .describe('The feed (batch) the request went in as, behind the mass-leaver brake.'),
});
const idParams = z.object({ id: z.string() });

// --- the plugin -----------------------------------------------------------------------

/** What we remember about a person while walking one request's operations in order. */
interface WorkingIdentity extends ScimKnownIdentity {
  /** The state the key of the next event is decided against. */
  basis: string;
}

/** A person's status for the rest of the request after an event: an update leaves it (a leaver stays one). */
function statusAfter(type: ScimEventType, current: WorkingIdentity | undefined): IdentityStatus {
  if (type === 'terminate') return 'terminated';
  if (type === 'update' && current) return current.status;
  return 'active';
}

interface OperationResponse {
  method: string;
  bulkId?: string;
  location?: string;
  status: string;
  response?: ReturnType<typeof scimErrorBody>;
  [JML_SCIM_EXTENSION]?: Record<string, unknown>;
}

const scimApi: FastifyPluginAsyncZod<ScimRoutesOptions> = async (app, opts) => {
  const { db, queue, config } = opts;
  const scimConfig = config.scim;
  // A bad attributeMap stops start-up here, naming the path, rather than failing per user.
  compileScimMapping(scimConfig);
  const publicUrl = opts.publicUrl.replace(/\/+$/, '');
  const base = `${publicUrl}${SCIM_PATH}`;
  const userLocation = (employeeId: string) => `${base}/Users/${encodeURIComponent(employeeId)}`;

  app.setErrorHandler(scimErrorHandler);
  app.setNotFoundHandler((request, reply) => sendScimError(reply, { status: 404, detail: `No SCIM endpoint ${request.method} ${request.url.split('?')[0]}.` }));
  // SCIM's own media type, in this plugin only, through the API's one JSON body parser
  // (api/json-body.ts), which the app also uses for application/json: invalid UTF-8 or deep
  // nesting is a SCIM 400 (invalidSyntax, scimErrorHandler), never a lossy decode or a
  // RangeError further on.
  app.addContentTypeParser(SCIM_CONTENT_TYPE, { parseAs: 'buffer', bodyLimit: SCIM_MAX_PAYLOAD_BYTES }, jsonBodyParser);
  app.addHook('onSend', async (_request, reply, payload) => {
    // Discovery and bulk answers are SCIM documents.
    if (String(reply.getHeader('content-type') ?? '').startsWith('application/json')) reply.type(SCIM_CONTENT_TYPE);
    return payload;
  });

  // A bulk request from an authenticated sender whose body cannot be read at all (not JSON,
  // not UTF-8, nested too deep): refused as invalid, so an event_rejected alert. Its 400 is
  // answered by scimErrorHandler as ever; an unauthenticated request never gets here with a principal.
  app.addHook('onError', async (request, _reply, error) => {
    if (!request.principal || request.routeOptions.url !== `${SCIM_PATH}${SCIM_BULK_PATH}`) return;
    const code = (error as FastifyError).code;
    const malformed = error instanceof ProblemError ? error.problem.status === 400 : error instanceof SyntaxError || code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || code === 'FST_ERR_CTP_INVALID_JSON_BODY';
    if (malformed) void reportRejectedInput(db, request.log, 'scim', [{ field: '(body)', reason: error instanceof ProblemError ? (error.problem.detail ?? error.problem.title) : 'The body is not valid JSON.' }]);
  });

  const anyToken = requireScope(...SCOPES);

  // --- discovery ------------------------------------------------------------------------

  const meta = (resourceType: string, path: string) => ({ resourceType, location: `${base}${path}` });
  const listResponse = (resources: unknown[]) => ({
    schemas: [SCIM_SCHEMAS.listResponse],
    totalResults: resources.length,
    itemsPerPage: resources.length,
    startIndex: 1,
    Resources: resources,
  });

  const serviceProviderConfig = {
    schemas: [SCIM_SCHEMAS.serviceProviderConfig],
    documentationUri: `${publicUrl}/`,
    patch: { supported: false },
    bulk: { supported: true, maxOperations: SCIM_MAX_OPERATIONS, maxPayloadSize: SCIM_MAX_PAYLOAD_BYTES },
    filter: { supported: false, maxResults: 0 },
    changePassword: { supported: false },
    sort: { supported: false },
    etag: { supported: false },
    authenticationSchemes: [
      {
        type: 'oauthbearertoken',
        name: 'OAuth Bearer Token',
        description: 'A jml API token (jml token create --scopes events:write) in the Authorization: Bearer header.',
        specUri: 'https://www.rfc-editor.org/info/rfc6750',
        primary: true,
      },
    ],
    meta: meta('ServiceProviderConfig', '/ServiceProviderConfig'),
  };
  const userResourceType = {
    schemas: [SCIM_SCHEMAS.resourceType],
    id: 'User',
    name: 'User',
    endpoint: '/Users',
    description: 'A person from HR; only written through /Bulk (POST /Users operations).',
    schema: SCIM_SCHEMAS.user,
    schemaExtensions: [{ schema: SCIM_SCHEMAS.enterpriseUser, required: false }],
    meta: meta('ResourceType', '/ResourceTypes/User'),
  };
  const schemas = [
    {
      schemas: [SCIM_SCHEMAS.schema],
      id: SCIM_SCHEMAS.user,
      name: 'User',
      description: 'User account (the attributes this service reads; externalId is the employee id).',
      attributes: USER_SCHEMA_ATTRIBUTES,
      meta: meta('Schema', `/Schemas/${SCIM_SCHEMAS.user}`),
    },
    {
      schemas: [SCIM_SCHEMAS.schema],
      id: SCIM_SCHEMAS.enterpriseUser,
      name: 'EnterpriseUser',
      description: 'Enterprise User extension.',
      attributes: ENTERPRISE_SCHEMA_ATTRIBUTES,
      meta: meta('Schema', `/Schemas/${SCIM_SCHEMAS.enterpriseUser}`),
    },
  ];

  const discovery = (summary: string, response: z.ZodType) => ({
    tags: ['SCIM'],
    summary,
    security: anyBearer,
    produces: [SCIM_CONTENT_TYPE],
    response: { 200: response },
    documented: { response: scimErrors },
  });
  app.get('/ServiceProviderConfig', { onRequest: anyToken, schema: discovery('SCIM service provider configuration', scimResource) }, async () => serviceProviderConfig);
  app.get('/ResourceTypes', { onRequest: anyToken, schema: discovery('SCIM resource types', scimListResponse) }, async () => listResponse([userResourceType]));
  app.get('/ResourceTypes/:id', { onRequest: anyToken, schema: { ...discovery('One SCIM resource type', scimResource), params: idParams } }, async (request) => {
    if (request.params.id !== 'User') throw new ScimError({ status: 404, detail: `No resource type ${JSON.stringify(request.params.id)}.` });
    return userResourceType;
  });
  app.get('/Schemas', { onRequest: anyToken, schema: discovery('SCIM schemas: the attributes this service reads', scimListResponse) }, async () => listResponse(schemas));
  app.get('/Schemas/:id', { onRequest: anyToken, schema: { ...discovery('One SCIM schema', scimResource), params: idParams } }, async (request) => {
    const schema = schemas.find((s) => s.id === request.params.id);
    if (!schema) throw new ScimError({ status: 404, detail: `No schema ${JSON.stringify(request.params.id)}.` });
    return schema;
  });

  // --- bulk -----------------------------------------------------------------------------

  const bulkSchema = {
    tags: ['SCIM'],
    summary: 'SCIM 2.0 bulk: POST /Users operations become HR events',
    description:
      `At most ${SCIM_MAX_OPERATIONS} operations (413) and ${SCIM_MAX_PAYLOAD_BYTES} bytes. Each operation gets a status of its own; ` +
      'the events of one request are one feed behind the mass-leaver brake. Errors are SCIM Error bodies.',
    security: bearer('events:write'),
    consumes: [SCIM_CONTENT_TYPE, 'application/json'],
    produces: [SCIM_CONTENT_TYPE],
    // Read by the handler (domain/scim.ts parseScimBulkRequest): its errors are SCIM errors, the operation count is checked first.
    documented: { body: scimBulkRequestSchema, response: scimErrors },
    response: { 200: bulkResponseSchema },
  };
  app.post(SCIM_BULK_PATH, { onRequest: requireScope('events:write'), bodyLimit: SCIM_MAX_PAYLOAD_BYTES, schema: bulkSchema }, async (request, reply) => {
    const parsed = parseScimBulkRequest(request.body);
    if (!parsed.ok) {
      if (parsed.error.status === 400) void reportRejectedInput(db, request.log, 'scim', fieldsOfText(parsed.error.detail));
      throw new ScimError(parsed.error);
    }
    const { Operations: operations, failOnErrors } = parsed.request;

    // 1. Each operation checked, and what its user names: the person, and the bulkIds of
    //    other operations it refers to (`manager.value: "bulkId:c2"`).
    const read = operations.map((op) => {
      const checked = checkScimOperation(op);
      return checked.ok ? { op, ok: true as const, data: checked.data, ...scimUserLinks(checked.data, scimConfig) } : { op, ...checked };
    });
    const links: ScimBulkLink[] = read.map((r) => ({ bulkId: r.op.bulkId, references: r.ok ? r.references : [] }));

    // 2. What is known about the people named. Ids are canonical (scimUserLinks), so `e1001`
    //    and `E1001` are one person here; the lookup goes by lower(employee_id), the
    //    expression of the unique index.
    const ids = [...new Set(read.flatMap((r) => (r.ok && r.employeeId ? [r.employeeId] : [])))];
    const known = new Map<string, WorkingIdentity>();
    if (ids.length) {
      const rows = await db
        .select({ employeeId: identities.employeeId, status: identities.status, attributes: identities.attributes, updatedAt: identities.updatedAt })
        .from(identities)
        .where(inArray(sql`lower(${identities.employeeId})`, ids.map((id) => sql`lower(${id})`)));
      for (const row of rows) {
        known.set(canonicalEmployeeId(row.employeeId), { status: row.status as IdentityStatus, attributes: row.attributes, basis: `${row.status}@${row.updatedAt.toISOString()}` });
      }
    }

    // 3. What each user becomes, against what is known and what earlier operations of this
    //    request already decided for the same person, until failOnErrors errors (RFC 7644
    //    section 3.7.3: the operations after that get no entry in the answer). In request
    //    order, except that an operation comes after those whose bulkId it refers to
    //    (planScimBulk), so that each reference resolves to the employee id of the person
    //    the referenced operation was about, or fails with it. A user is refused when it is
    //    malformed, when a reference cannot be resolved, or when it would hire someone
    //    without a required attribute, which only the decision knows. The answer lists the
    //    operations in request order.
    const plan = planScimBulk(links);
    const outcomes = new Map<number, ScimBulkOutcome>();
    const responses: Array<OperationResponse | undefined> = [];
    const now = new Date();
    const events: NewHrEvent[] = [];
    const eventOf = new Map<number, { id: string; type: ScimEventType }>();
    let errors = 0;
    /** Users refused as invalid (400), for one event_rejected per field. */
    const refused: RefusedField[] = [];
    for (const index of plan.order) {
      if (failOnErrors !== undefined && errors >= failOnErrors) break;
      const r = read[index]!;
      const entry = { method: r.op.method, ...(r.op.bulkId !== undefined ? { bulkId: r.op.bulkId } : {}) };
      const fail = (error: ScimErrorInit) => {
        errors += 1;
        if (error.status === 400) refused.push(...fieldsOfText(error.detail, 'data'));
        outcomes.set(index, { ok: false });
        responses[index] = { ...entry, status: String(error.status), response: scimErrorBody(error) };
      };
      if (!r.ok) {
        fail(r.error);
        continue;
      }
      const m = mapScimUser(r.data, scimConfig, scimBulkIdResolver(links, plan, outcomes, index));
      if ('error' in m) {
        fail(m.error);
        continue;
      }
      const current = known.get(m.employeeId);
      const decision = decideScimChange(current, m, scimConfig);
      if (decision.action === 'refuse') {
        fail(decision.error);
        continue;
      }
      outcomes.set(index, { ok: true, employeeId: m.employeeId });
      const location = userLocation(m.employeeId);
      if (decision.action === 'none') {
        responses[index] = { ...entry, location, status: '200', [JML_SCIM_EXTENSION]: { outcome: decision.outcome, detail: decision.detail } };
        continue;
      }
      const id = scimEventId({ employeeId: m.employeeId, type: decision.type, attributes: m.attributes, active: m.active, basis: current?.basis ?? 'new' });
      const effectiveAt = scimEffectiveAt(decision.type, m.attributes, now);
      events.push({
        id,
        employeeId: m.employeeId,
        type: decision.type,
        effectiveAt,
        payload: { type: decision.type, employeeId: m.employeeId, effectiveAt: effectiveAt.toISOString(), attributes: decision.attributes, scim: { bulkId: r.op.bulkId } },
        source: 'scim',
      });
      eventOf.set(index, { id, type: decision.type });
      responses[index] = { ...entry, location, status: decision.type === 'hire' ? '201' : '200' };
      known.set(m.employeeId, { status: statusAfter(decision.type, current), attributes: { ...(current?.attributes ?? {}), ...decision.attributes }, basis: `after:${id}` });
    }

    if (refused.length) void reportRejectedInput(db, request.log, 'scim', refused);

    // 4. One feed for the whole request, behind the mass-leaver brake.
    let batch: { batchId: string; status: 'accepted' | 'held' } | null = null;
    if (events.length) {
      const actor = `scim:${request.principal?.name ?? 'unknown'}`;
      let feed: Awaited<ReturnType<typeof submitFeed>>;
      try {
        feed = await submitFeed({ db, queue, config }, { source: 'scim', actor, events });
      } catch (err) {
        // Nothing of the feed was stored (one transaction): Entra retries the request.
        throw new ScimError({ status: 503, detail: 'The operations could not be stored; retry later.' }, { 'retry-after': '5' }, { cause: err });
      }
      batch = { batchId: feed.batchId, status: feed.status };
      const stored = new Map<string, { created: boolean; status: HrEventStatus }>(feed.results.map((r) => [r.id, r]));
      let created = 0;
      for (const [index, event] of eventOf) {
        const result = stored.get(event.id);
        const response = responses[index]!;
        response[JML_SCIM_EXTENSION] = {
          eventId: event.id,
          eventType: event.type,
          // A repeat of an earlier request: the event it made then, nothing new.
          created: result?.created ?? false,
          eventStatus: result?.status ?? null,
          batchId: feed.batchId,
        };
        if (result?.created) created += 1;
      }
      if (created) opts.metrics?.hrEventsAccepted.inc({ source: 'scim' }, created);
    }

    return reply
      .code(200)
      .type(SCIM_CONTENT_TYPE)
      .send({
        schemas: [SCIM_SCHEMAS.bulkResponse],
        Operations: responses.filter((response) => response !== undefined),
        [JML_SCIM_EXTENSION]: { batchId: batch?.batchId ?? null, batchStatus: batch?.status ?? null, events: events.length, errors },
      });
  });
};

/** Mounts the SCIM endpoints under /api/v1/scim/v2 (its own error and 404 handlers, parser). */
export const scimRoutes: FastifyPluginAsync<ScimRoutesOptions> = async (app, opts) => {
  await app.register(scimApi, { ...opts, prefix: SCIM_PATH });
};
