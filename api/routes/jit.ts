// Just-in-time elevation: a person takes a privileged entitlement for a short time, saying
// why; the policy decides whether someone must approve, and the access ends by itself.
//   POST /api/v1/jit/elevations              jit:request   elevate (idempotent by Idempotency-Key)
//   GET  /api/v1/jit/elevations              jit:request bound to a person (theirs), or
//                                            identities:read / admin (everyone's)
//   GET  /api/v1/jit/elevations/:id          as the list
//   POST /api/v1/jit/elevations/:id/extend   jit:request   the subject or requester, or admin
//   POST /api/v1/jit/elevations/:id/revoke   jit:request   the subject or requester, or admin: end it early
// An elevation is an access request of kind `jit` (services/jit.ts), shown through the same
// view as every request (db/request-views.ts: the three statuses side by side), with its time
// left. An id that is not an elevation, or one the caller may not see, is a 404. Tokens are
// checked in onRequest, before any body is read; the shared pieces (who a request is for, the
// Idempotency-Key, the shapes) are the access-request routes' own.
import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { JmlConfig } from '../../domain/config.js';
import { employeeIdSchema } from '../../domain/employee-id.js';
import { timeLeftMs, type RequestView } from '../../domain/request-view.js';
import { REQUEST_STATUSES } from '../../domain/types.js';
import type { Db } from '../../db/client.js';
import { BadRequestCursor, listRequests, requestView, type RequestSummary } from '../../db/request-views.js';
import { ensureRequestWorkflow, IdempotencyKeyReused } from '../../services/access-requests.js';
import { DecisionRefused, extendElevation, ExtensionRefused, withdrawRequest } from '../../services/decisions.js';
import { submitElevation } from '../../services/jit.js';
import { hasScope, requireScope, type Principal } from '../auth.js';
import { bearer } from '../openapi.js';
import { ProblemError, problems } from '../problem.js';
import {
  durationText,
  entitlementIdText,
  idempotencyKeyOf,
  idempotencyKeyReused,
  idParams,
  isAdmin,
  listCursor,
  listLimit,
  noTemporal,
  principalOf,
  subjectFor,
  summaryShape,
  timelineSchema,
  withdrawalShape,
} from './access-requests.js';

export const JIT_ELEVATIONS_PATH = '/api/v1/jit/elevations';

export interface JitRoutesOptions {
  db: Db;
  config: JmlConfig;
  publicUrl: string;
  taskQueue: string;
  /** Absent: elevations are recorded (the sweeper starts their workflows); extend and revoke answer 503. */
  temporal?: Client;
}

// --- input shapes ----------------------------------------------------------------------

const elevateBody = z.strictObject({
  employeeId: employeeIdSchema('must be a string').optional().describe('Who is elevated; absent: the person the token is bound to. Someone else needs `admin`.'),
  entitlementId: entitlementIdText,
  duration: durationText.optional().describe("How long, e.g. 30m or 2h, at most the entitlement's maxDuration; absent: its defaultDuration."),
  // The policy judges both texts (required, length, no control characters; the ticket's pattern): a 422 naming its rule.
  justification: z.string('must be a string').describe('Why the access is needed (1..1000 characters).'),
  ticket: z.string('must be a string').optional().describe('A change or incident reference (at most 200 characters); required, and matching a pattern, when the policy says so.'),
  breakGlass: z.boolean('must be true or false').optional().describe('An emergency: granted at once without approval, where the policy allows it; raises a critical alert and a review by the owner.'),
});

const extendBody = z.strictObject({
  duration: durationText.describe('How much longer than the current expiry, e.g. 30m.'),
});

const listQuery = z.object({
  limit: listLimit,
  cursor: listCursor,
  status: z.enum(REQUEST_STATUSES, `must be one of ${REQUEST_STATUSES.join(', ')}`).optional().describe('The request status.'),
  employeeId: employeeIdSchema('must be a string').optional().describe('The subject.'),
  entitlementId: entitlementIdText.optional(),
  active: z
    .enum(['true', 'false'], 'must be true or false')
    .transform((value) => value === 'true')
    .optional()
    .describe('true: only elevations in force (granted, not removed, not yet expired).'),
});

// --- answer shapes ---------------------------------------------------------------------

const elevationShape = {
  ...summaryShape,
  timeLeftMs: z.number().int().nullable().describe('Until expiresAt, in ms; 0 once ended; null before the grant (the clock starts then).'),
};
const elevationSchema = z.object({ ...elevationShape, timeline: z.array(timelineSchema).describe('What happened, from the audit log, oldest first (at most 200 entries).') });
const listSchema = z.object({
  items: z.array(z.object({ ...elevationShape, timeline: z.array(timelineSchema).optional().describe('Not sent in lists: read one elevation for it.') })),
  nextCursor: z.string().nullable().describe('Pass as `cursor` for the next page; null on the last page.'),
});
const extensionSchema = elevationSchema.extend({
  extension: z
    .union([
      z.object({ status: z.literal('extended'), expiresAt: z.iso.datetime(), extensions: z.number().int() }),
      z.object({ status: z.literal('pending_approval'), stage: z.number().int().describe('The approval stage that decides it.') }),
    ])
    .describe('What the extension did: the new expiry, or the approval it waits for.'),
});
const revocationSchema = elevationSchema.extend(withdrawalShape);

// --- helpers ---------------------------------------------------------------------------

type Elevation<V extends RequestSummary> = V & { timeLeftMs: number | null };
const withTimeLeft = <V extends RequestSummary>(view: V, now = Date.now()): Elevation<V> => ({ ...view, timeLeftMs: timeLeftMs(view, now) });

/** Whether the elevation is `who`'s own: they are elevated, or they asked for it. */
const ownedBy = (view: RequestSummary, who: string) => view.employeeId === who || view.requestedBy === who;

/** The elevation as the caller may see it: readers see every one, a bound person their own; anything else is a 404. */
async function visibleElevation(db: Db, principal: Principal, id: string): Promise<RequestView> {
  const view = await requestView(db, id);
  const readsAll = hasScope(principal.scopes, ['identities:read']);
  if (!view || view.kind !== 'jit' || (!readsAll && (principal.employeeId === null || !ownedBy(view, principal.employeeId)))) throw problems.notFound(`No elevation with id ${id}.`);
  return view;
}

/** An elevation the caller may act on (extend, revoke): its subject, its requester, or an admin. */
async function ownElevation(db: Db, principal: Principal, id: string, what: string): Promise<RequestView> {
  if (!isAdmin(principal) && principal.employeeId === null) throw problems.forbidden(`To ${what} an elevation needs a token bound to its person, or the admin scope.`);
  const view = await visibleElevation(db, principal, id);
  if (!isAdmin(principal) && !ownedBy(view, principal.employeeId ?? '')) throw problems.forbidden(`Only the elevated person, the requester or an admin can ${what} this elevation.`);
  return view;
}

/** A refusal by the JIT policy (domain/jit-policy.ts JIT_RULES), naming its rule and the field it is about. */
function policyProblem(refusal: { rule: string; field: string; detail: string }, title = 'Elevation refused'): ProblemError {
  return new ProblemError({ status: 422, title, type: 'urn:jml:problem:jit-policy', detail: refusal.detail, extensions: { rule: refusal.rule, field: refusal.field } });
}

// --- routes ----------------------------------------------------------------------------

export const jitRoutes: FastifyPluginAsyncZod<JitRoutesOptions> = async (app, opts) => {
  const { db, config, taskQueue, temporal } = opts;
  const publicUrl = opts.publicUrl.replace(/\/+$/, '');
  const locationOf = (id: string) => `${publicUrl}${JIT_ELEVATIONS_PATH}/${id}`;
  const doc = { tags: ['Access'] };
  const readView = async (id: string) => {
    const view = await requestView(db, id);
    if (!view) throw new Error('a recorded elevation could not be read back');
    return view;
  };

  const elevateSchema = {
    ...doc,
    summary: 'Elevate to a privileged entitlement for a while',
    description:
      "The entitlement's JIT policy decides first (eligibility, duration, ticket, cool-down, separation of duties, break-glass, who approves): a refusal is a 422 naming the rule and the field, and records nothing. A token bound to a person elevates that person; someone else needs `admin`. A repeated `Idempotency-Key` (per token) answers the first elevation (200) and never makes a second; with a different body it is a 422.",
    security: bearer('jit:request'),
    body: elevateBody,
    response: { 200: elevationSchema, 201: elevationSchema },
    documented: { headers: z.object({ 'idempotency-key': z.string().optional().describe('1..255 visible ASCII characters; a retry with the same key never makes a second elevation.') }) },
  };
  app.post(JIT_ELEVATIONS_PATH, { onRequest: requireScope('jit:request'), schema: elevateSchema }, async (request, reply) => {
    const principal = principalOf(request);
    const body = request.body;
    const key = idempotencyKeyOf(request);
    const subject = subjectFor(principal, body.employeeId);
    let result;
    try {
      result = await submitElevation(
        { db, config, taskQueue, logger: request.log, ...(temporal ? { temporal } : {}) },
        {
          employeeId: subject,
          entitlementId: body.entitlementId,
          justification: body.justification,
          ...(body.duration !== undefined ? { durationMs: body.duration } : {}),
          ...(body.ticket !== undefined ? { ticket: body.ticket } : {}),
          ...(body.breakGlass !== undefined ? { breakGlass: body.breakGlass } : {}),
          requestedBy: principal.employeeId ?? `api:${principal.name}`,
          requestedByEmployeeId: principal.employeeId,
          // Per token and apart from access requests, so one caller's key never finds another's request.
          idempotencyKey: `jit:${principal.tokenId}:${key ?? randomUUID()}`,
        },
      );
    } catch (err) {
      if (err instanceof IdempotencyKeyReused) throw idempotencyKeyReused();
      throw err;
    }
    if ('refused' in result) throw policyProblem(result.refused);
    const view = await readView(result.requestId);
    return reply
      .code(result.created ? 201 : 200)
      .header('location', locationOf(view.id))
      .send(withTimeLeft(view));
  });

  const listRouteSchema = {
    ...doc,
    summary: 'List elevations with their time left, newest first',
    description:
      'With `identities:read` (or `admin`) everyone\'s; with `jit:request` on a token bound to a person, only the elevations that person is the subject or the requester of.',
    security: bearer('jit:request', 'identities:read'),
    querystring: listQuery,
    response: { 200: listSchema },
  };
  app.get(JIT_ELEVATIONS_PATH, { onRequest: requireScope('jit:request', 'identities:read'), schema: listRouteSchema }, async (request) => {
    const principal = principalOf(request);
    const query = request.query;
    let mine: string | undefined;
    if (!hasScope(principal.scopes, ['identities:read'])) {
      if (principal.employeeId === null) throw problems.forbidden('Listing elevations needs the identities:read scope, or a token bound to a person (who then sees their own).');
      mine = principal.employeeId;
    }
    try {
      const page = await listRequests(db, {
        kind: 'jit',
        limit: query.limit,
        ...(query.cursor !== undefined ? { cursor: query.cursor } : {}),
        ...(query.status ? { status: query.status } : {}),
        ...(query.employeeId ? { employeeId: query.employeeId } : {}),
        ...(query.entitlementId ? { entitlementId: query.entitlementId } : {}),
        ...(query.active ? { active: true } : {}),
        ...(mine ? { subjectOrRequester: mine } : {}),
      });
      const now = Date.now();
      return { items: page.items.map((item) => withTimeLeft(item, now)), nextCursor: page.nextCursor };
    } catch (err) {
      if (err instanceof BadRequestCursor) throw problems.validation([{ field: 'cursor', message: err.message }]);
      throw err;
    }
  });

  const oneSchema = {
    ...doc,
    summary: 'One elevation: its three statuses, expiry, time left, revocation lag, approvals and timeline',
    security: bearer('jit:request', 'identities:read'),
    params: idParams,
    response: { 200: elevationSchema },
  };
  app.get(`${JIT_ELEVATIONS_PATH}/:id`, { onRequest: requireScope('jit:request', 'identities:read'), schema: oneSchema }, async (request) => {
    const principal = principalOf(request);
    if (!hasScope(principal.scopes, ['identities:read']) && principal.employeeId === null) {
      throw problems.forbidden('Reading elevations needs the identities:read scope, or a token bound to a person (who then sees their own).');
    }
    return withTimeLeft(await visibleElevation(db, principal, request.params.id));
  });

  const extendSchema = {
    ...doc,
    summary: 'Extend an active elevation',
    description:
      'The subject, the requester or an admin. Goes through the policy again (at most maxExtensions, never further than maxDuration from now): a refusal is a 422 naming the rule and the field. When the policy needs approval, the extension waits for it (`extension.status: pending_approval`). 409 when the elevation is not active.',
    security: bearer('jit:request'),
    params: idParams,
    body: extendBody,
    response: { 200: extensionSchema },
  };
  app.post(`${JIT_ELEVATIONS_PATH}/:id/extend`, { onRequest: requireScope('jit:request'), schema: extendSchema }, async (request) => {
    const principal = principalOf(request);
    const { id } = request.params;
    const view = await ownElevation(db, principal, id, 'extend');
    if (!temporal) throw noTemporal();
    await ensureRequestWorkflow({ db, temporal, taskQueue, logger: request.log }, id);
    let extension;
    try {
      extension = await extendElevation(temporal, id, { by: principal.employeeId ?? `api:${principal.name}`, durationMs: request.body.duration });
    } catch (err) {
      if (!(err instanceof ExtensionRefused)) throw err;
      if (err.rule !== 'not_extendable') throw policyProblem({ rule: err.rule, field: err.field, detail: err.message }, 'Extension refused');
      const now = (await requestView(db, id)) ?? view;
      throw new ProblemError({
        status: 409,
        title: 'Not extendable',
        type: 'urn:jml:problem:not-extendable',
        detail: `Only an active elevation can be extended: the request is ${now.requestStatus}, its grant ${now.grantStatus ?? 'not made'}, its revocation ${now.revocationStatus ?? 'not asked'}.`,
        extensions: { rule: err.rule, field: err.field, requestStatus: now.requestStatus, grantStatus: now.grantStatus, revocationStatus: now.revocationStatus },
      });
    }
    return { ...withTimeLeft(await readView(id)), extension };
  });

  const revokeSchema = {
    ...doc,
    summary: 'End an elevation early',
    description:
      'The subject, the requester or an admin. A pending elevation is withdrawn; a granted one is removed, reference-counted: access still due for another reason (birthright, an approved request, an overlapping elevation) stays, and `withdrawal.retainedBy` says why. 202: the removal is asked, and `revocationStatus` says when it is proven. 409 when it has ended.',
    security: bearer('jit:request'),
    params: idParams,
    response: { 202: revocationSchema },
  };
  app.post(`${JIT_ELEVATIONS_PATH}/:id/revoke`, { onRequest: requireScope('jit:request'), schema: revokeSchema }, async (request, reply) => {
    const principal = principalOf(request);
    const { id } = request.params;
    const view = await ownElevation(db, principal, id, 'revoke');
    if (!temporal) throw noTemporal();
    // An elevation the sweeper has not started yet has no workflow to ask.
    await ensureRequestWorkflow({ db, temporal, taskQueue, logger: request.log }, id);
    let withdrawal;
    try {
      withdrawal = await withdrawRequest(temporal, id, { by: principal.employeeId ?? `api:${principal.name}`, reason: 'ended early' }, 'jit');
    } catch (err) {
      if (!(err instanceof DecisionRefused)) throw err;
      const now = (await requestView(db, id)) ?? view;
      throw new ProblemError({
        status: 409,
        title: 'Nothing to revoke',
        type: 'urn:jml:problem:not-withdrawable',
        detail: `The elevation is ${now.requestStatus}, its grant ${now.grantStatus ?? 'not made'}, its revocation ${now.revocationStatus ?? 'not asked'}: there is nothing left to end.`,
        extensions: { requestStatus: now.requestStatus, grantStatus: now.grantStatus, revocationStatus: now.revocationStatus },
      });
    }
    return reply.code(202).send({ ...withTimeLeft(await readView(id)), withdrawal });
  });
};
