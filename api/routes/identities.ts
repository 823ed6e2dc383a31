// Read-only views of the people the engine manages (scope identities:read).
//   GET /api/v1/identities                 cursor-paginated by employee id; ?employeeId= (any case) ?status=
//   GET /api/v1/identities/:id             one identity by uuid
//   GET /api/v1/identities/:id/grants      each grant with its request and entitlement:
//                                          requestStatus and grantStatus side by side
//   GET /api/v1/identities/:id/timeline    the person's HR events and audit rows, in time order
// Cursors are opaque base64url JSON; a cursor that does not decode is a 400 naming `cursor`.
import { and, asc, eq, gt, sql, type SQL } from 'drizzle-orm';
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { IDENTITY_STATUSES } from '../../domain/types.js';
import type { Db } from '../../db/client.js';
import { accessRequests, entitlements, grants, identities } from '../../db/schema.js';
import { requireScope } from '../auth.js';
import { cursorInt8, cursorText, decodeCursor, encodeCursor } from '../cursor.js';
import { parseOrThrow, problems } from '../problem.js';
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

function identityView(row: typeof identities.$inferSelect) {
  return {
    id: row.id,
    employeeId: row.employeeId,
    status: row.status,
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
      at: iso(row.at),
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
    at: iso(row.at),
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

export const identityRoutes: FastifyPluginAsync<IdentityRoutesOptions> = async (app, { db }) => {
  app.addHook('preHandler', requireScope('identities:read'));

  async function findIdentity(params: unknown) {
    const { id } = parseOrThrow(idParams, params);
    const [row] = await db.select().from(identities).where(eq(identities.id, id));
    if (!row) throw problems.notFound(`No identity with id ${id}.`);
    return row;
  }

  app.get(IDENTITIES_PATH, async (request) => {
    const query = parseOrThrow(listQuery, request.query);
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

  app.get(`${IDENTITIES_PATH}/:id`, async (request) => identityView(await findIdentity(request.params)));

  app.get(`${IDENTITIES_PATH}/:id/grants`, async (request) => {
    const identity = await findIdentity(request.params);
    const rows = await db
      .select({
        id: grants.id,
        entitlementId: grants.entitlementId,
        entitlementName: entitlements.name,
        kind: entitlements.kind,
        target: entitlements.target,
        requestId: grants.requestId,
        requestKind: accessRequests.kind,
        requestStatus: accessRequests.status,
        grantStatus: grants.status,
        attempts: grants.attempts,
        lastError: grants.lastError,
        verifiedAt: grants.verifiedAt,
        expiresAt: grants.expiresAt,
        revokedAt: grants.revokedAt,
        revokeReason: grants.revokeReason,
        createdAt: grants.createdAt,
        updatedAt: grants.updatedAt,
      })
      .from(grants)
      .innerJoin(accessRequests, eq(accessRequests.id, grants.requestId))
      .innerJoin(entitlements, eq(entitlements.id, grants.entitlementId))
      .where(eq(grants.identityId, identity.id))
      .orderBy(asc(grants.createdAt), asc(grants.id));
    return { items: rows };
  });

  app.get(`${IDENTITIES_PATH}/:id/timeline`, async (request) => {
    const identity = await findIdentity(request.params);
    const query = parseOrThrow(pageQuery, request.query);
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
