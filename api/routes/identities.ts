// Read-only views of the people the engine manages (scope identities:read).
//   GET /api/v1/identities                 cursor-paginated by employee id; ?employeeId= (any case) ?status=
//   GET /api/v1/identities/:id             one identity by uuid
//   GET /api/v1/identities/:id/grants      each grant with its request and entitlement:
//                                          requestStatus and grantStatus side by side
//   GET /api/v1/identities/:id/timeline    the person's HR events and audit rows, in time order
// Cursors are opaque base64url JSON; a cursor that does not decode is a 400 naming `cursor`.
import { REVOCATION_STATUSES } from '../../domain/request-view.js';
import { and, asc, eq, gt, sql, type SQL } from 'drizzle-orm';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ENTITLEMENT_KINDS, GRANT_STATUSES, IDENTITY_STATUSES, REQUEST_KINDS, REQUEST_STATUSES, type IdentityStatus } from '../../domain/types.js';
import type { Db } from '../../db/client.js';
import { identityGrants } from '../../db/operator-views.js';
import { identities } from '../../db/schema.js';
import { requireScope } from '../auth.js';
import { cursorInt8, cursorText, decodeCursor, encodeCursor } from '../cursor.js';
import { bearer } from '../openapi.js';
import { problems } from '../problem.js';
import { employeeIdSchema } from '../../domain/employee-id.js';

export interface IdentityRoutesOptions {
  db: Db;
}

export const IDENTITIES_PATH = '/api/v1/identities';

// --- query shapes --------------------------------------------------------------------

const limit = z.coerce.number('must be a number').int('must be an integer').min(1, 'must be at least 1').max(200, 'must be at most 200').default(50);
const cursor = z.string().max(512, 'is too long').optional();
const idParams = z.object({ id: z.guid('must be a UUID') });

const listQuery = z.object({
  limit,
  cursor,
  /** Any spelling: folded to the canonical id. */
  employeeId: employeeIdSchema('must be a string').optional(),
  status: z.enum(IDENTITY_STATUSES, `must be one of ${IDENTITY_STATUSES.join(', ')}`).optional(),
});
const employeeCursor = z.object({ e: cursorText(64) });

const pageQuery = z.object({ limit, cursor });
/** Timeline position: event time in microseconds (as text), kind, tie-breaking key. */
const timelineCursor = z.tuple([cursorInt8, z.enum(['audit', 'hr_event']), cursorText(300)]);

// --- answer shapes (Dates are sent as ISO 8601 text) ------------------------------------

const identitySchema = z.object({
  id: z.guid(),
  employeeId: z.string(),
  status: z.enum(IDENTITY_STATUSES),
  attributes: z.record(z.string(), z.unknown()),
  hireDate: z.date().nullable(),
  terminationDate: z.date().nullable(),
  lastEffectiveAt: z.date().nullable(),
  createdAt: z.date(),
  updatedAt: z.date(),
});
const nextCursor = z.string().nullable().describe('Pass as `cursor` for the next page; null on the last page.');

const grantSchema = z.object({
  id: z.guid(),
  entitlementId: z.string(),
  entitlementName: z.string().nullable(),
  kind: z.enum(ENTITLEMENT_KINDS),
  target: z.string(),
  requestId: z.guid(),
  requestKind: z.enum(REQUEST_KINDS),
  requestStatus: z.enum(REQUEST_STATUSES).describe('Did the right person say yes?'),
  grantStatus: z.enum(GRANT_STATUSES).describe('Did the target system really do it (proven by read-back)?'),
  revocationStatus: z.enum(REVOCATION_STATUSES).nullable().describe('Has the requested access really gone? null: its removal was never asked.'),
  attempts: z.number().int(),
  lastError: z.string().nullable(),
  verifiedAt: z.date().nullable(),
  expiresAt: z.date().nullable(),
  revokedAt: z.date().nullable(),
  revokeReason: z.string().nullable(),
  createdAt: z.date(),
  updatedAt: z.date(),
});
type GrantAnswer = z.output<typeof grantSchema>;

const timelineItemSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('hr_event'),
    at: z.iso.datetime(),
    eventId: z.string().nullable(),
    type: z.string().nullable(),
    effectiveAt: z.iso.datetime().nullable(),
    source: z.string().nullable(),
    status: z.string().nullable(),
    reason: z.string().nullable(),
  }),
  z.object({
    kind: z.literal('audit'),
    at: z.iso.datetime(),
    seq: z.number().int(),
    actor: z.string().nullable(),
    action: z.string().nullable(),
    subjectType: z.string().nullable(),
    subjectId: z.string().nullable(),
    before: z.unknown(),
    after: z.unknown(),
    correlationId: z.string().nullable(),
  }),
]);

function identityView(row: typeof identities.$inferSelect) {
  return {
    id: row.id,
    employeeId: row.employeeId,
    // The column's check constraint allows these statuses only.
    status: row.status as IdentityStatus,
    attributes: row.attributes,
    hireDate: row.hireDate,
    terminationDate: row.terminationDate,
    lastEffectiveAt: row.lastEffectiveAt,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

interface TimelineRow extends Record<string, unknown> {
  kind: 'audit' | 'hr_event';
  at: Date | string;
  at_us: string;
  key: string;
  seq: number | string | null;
  actor: string | null;
  action: string | null;
  subject_type: string | null;
  subject_id: string | null;
  before: unknown;
  after: unknown;
  correlation_id: string | null;
  event_id: string | null;
  event_type: string | null;
  effective_at: Date | string | null;
  source: string | null;
  status: string | null;
  reason: string | null;
}

const iso = (value: Date | string | null) => (value === null ? null : new Date(value).toISOString());

function timelineItem(row: TimelineRow) {
  if (row.kind === 'hr_event') {
    return {
      kind: 'hr_event' as const,
      at: new Date(row.at).toISOString(),
      eventId: row.event_id,
      type: row.event_type,
      effectiveAt: iso(row.effective_at),
      source: row.source,
      status: row.status,
      reason: row.reason,
    };
  }
  return {
    kind: 'audit' as const,
    at: new Date(row.at).toISOString(),
    seq: Number(row.seq),
    actor: row.actor,
    action: row.action,
    subjectType: row.subject_type,
    subjectId: row.subject_id,
    before: row.before,
    after: row.after,
    correlationId: row.correlation_id,
  };
}

export const identityRoutes: FastifyPluginAsyncZod<IdentityRoutesOptions> = async (app, { db }) => {
  // preValidation: the token is checked before the route's schemas look at the input.
  app.addHook('preValidation', requireScope('identities:read'));
  const doc = { tags: ['Identities'], security: bearer('identities:read') };

  async function findIdentity(id: string) {
    const [row] = await db.select().from(identities).where(eq(identities.id, id));
    if (!row) throw problems.notFound(`No identity with id ${id}.`);
    return row;
  }

  const listSchema = { ...doc, summary: 'List identities, by employee id', querystring: listQuery, response: { 200: z.object({ items: z.array(identitySchema), nextCursor }) } };
  app.get(IDENTITIES_PATH, { schema: listSchema }, async (request) => {
    const query = request.query;
    const conditions: SQL[] = [];
    // lower(employee_id) is the expression of the unique index: one indexed row at most.
    if (query.employeeId) conditions.push(sql`lower(${identities.employeeId}) = lower(${query.employeeId})`);
    if (query.status) conditions.push(eq(identities.status, query.status));
    if (query.cursor) conditions.push(gt(identities.employeeId, decodeCursor(query.cursor, employeeCursor).e));
    const rows = await db
      .select()
      .from(identities)
      .where(and(...conditions))
      .orderBy(asc(identities.employeeId))
      .limit(query.limit + 1);
    const page = rows.slice(0, query.limit);
    const last = page.at(-1);
    return { items: page.map(identityView), nextCursor: rows.length > query.limit && last ? encodeCursor({ e: last.employeeId }) : null };
  });

  const oneSchema = { ...doc, summary: 'One identity', params: idParams, response: { 200: identitySchema } };
  app.get(`${IDENTITIES_PATH}/:id`, { schema: oneSchema }, async (request) => identityView(await findIdentity(request.params.id)));

  const grantsSchema = { ...doc, summary: "An identity's grants: request status and grant status side by side", params: idParams, response: { 200: z.object({ items: z.array(grantSchema) }) } };
  app.get(`${IDENTITIES_PATH}/:id/grants`, { schema: grantsSchema }, async (request) => {
    const identity = await findIdentity(request.params.id);
    const rows = await identityGrants(db, identity.id);
    // Kinds and statuses are text columns whose check constraints allow the enums only.
    return { items: rows as GrantAnswer[] };
  });

  const timelineSchema = {
    ...doc,
    summary: "An identity's HR events and audit rows, in time order",
    params: idParams,
    querystring: pageQuery,
    response: { 200: z.object({ items: z.array(timelineItemSchema), nextCursor }) },
  };
  app.get(`${IDENTITIES_PATH}/:id/timeline`, { schema: timelineSchema }, async (request) => {
    const identity = await findIdentity(request.params.id);
    const query = request.query;
    const after = query.cursor ? decodeCursor(query.cursor, timelineCursor) : null;
    // Audit rows belong to the person when their subject is the identity, one of its
    // requests or grants, or when they carry one of its HR events as correlation id.
    // Positions are microseconds since the epoch (int8, which postgres.js returns as text),
    // so no precision is lost in the cursor.
    const result = await db.execute<TimelineRow>(sql`
      with person_events as (
        select id from hr_events where employee_id = ${identity.employeeId}
      ), subjects as (
        select ${identity.id}::text as id
        union all select id::text from access_requests where identity_id = ${identity.id}
        union all select id::text from grants where identity_id = ${identity.id}
      ), timeline as (
        select 'audit'::text as kind, a.at, (extract(epoch from a.at) * 1000000)::bigint as at_us,
               lpad(a.seq::text, 20, '0') as key, a.seq, a.actor, a.action, a.subject_type, a.subject_id,
               a.before, a.after, a.correlation_id,
               null::text as event_id, null::text as event_type, null::timestamptz as effective_at,
               null::text as source, null::text as status, null::text as reason
          from audit_log a
         where a.subject_id in (select id from subjects) or a.correlation_id in (select id from person_events)
        union all
        select 'hr_event'::text, e.received_at, (extract(epoch from e.received_at) * 1000000)::bigint,
               e.id, null, null, null, null, null, null, null, null,
               e.id, e.type, e.effective_at, e.source, e.status, e.reason
          from hr_events e
         where e.employee_id = ${identity.employeeId}
      )
      select * from timeline
       ${after ? sql`where (at_us, kind, key) > (${after[0]}::bigint, ${after[1]}::text, ${after[2]}::text)` : sql``}
       order by at_us, kind, key
       limit ${query.limit + 1}
    `);
    const rows = [...result];
    const page = rows.slice(0, query.limit);
    const last = page.at(-1);
    return {
      items: page.map(timelineItem),
      nextCursor: rows.length > query.limit && last ? encodeCursor([String(last.at_us), last.kind, last.key]) : null,
    };
  });
};
