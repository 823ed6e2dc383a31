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
// Idempotency-Key, the shapes, the answers to a submission and to a refused action) are the
// access-request routes' own.
import type { Client } from '@temporalio/client';
import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { employeeIdSchema } from '../../domain/employee-id.js';
import { timeLeftMs, type RequestView } from '../../domain/request-view.js';
import type { Db } from '../../db/client.js';
import { requestView, type RequestSummary } from '../../db/request-views.js';
import { DecisionRefused, extendElevation, ExtensionRefused, withdrawRequest } from '../../services/decisions.js';
import { submitElevation } from '../../services/jit.js';
import { hasScope, requireScope, type Principal } from '../auth.js';
import { bearer } from '../openapi.js';
import { ProblemError, problems } from '../problem.js';
import {
  durationText,
  entitlementIdText,
  idempotencyKeyHeaders,
  idParams,
  isAdmin,
  locationUnder,
  principalOf,
  readerBoundTo,
  recordedView,
  requesterOf,
  requestListQuery,
  requestPage,
  runningWorkflow,
  stateConflict,
  submissionOf,
  submitDepsOf,
  submitted,
  summaryShape,
  viewSchemas,
  withdrawalShape,
  type AccessRequestRoutesOptions,
} from './access-requests.js';

export const JIT_ELEVATIONS_PATH = '/api/v1/jit/elevations';

/** The access-request routes' own: an elevation is an access request, recorded and started alike. */
export type JitRoutesOptions = AccessRequestRoutesOptions;

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

// The access-request list's filters but the kind (always jit here) and the approvers', and `active`.
const listQuery = requestListQuery.omit({ kind: true, approver: true, awaiting: true }).extend({
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
const { one: elevationSchema, page: listSchema } = viewSchemas(elevationShape, 'elevation');
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

/**
 * An elevation the caller may act on (extend, revoke): its subject, its requester, or an
 * admin; with the Temporal client to ask its workflow, which runs by then (runningWorkflow).
 */
async function elevationToActOn(opts: JitRoutesOptions, request: FastifyRequest, id: string, what: string): Promise<{ principal: Principal; view: RequestView; workflows: Client }> {
  const principal = principalOf(request);
  if (!isAdmin(principal) && principal.employeeId === null) throw problems.forbidden(`To ${what} an elevation needs a token bound to its person, or the admin scope.`);
  const view = await visibleElevation(opts.db, principal, id);
  if (!isAdmin(principal) && !ownedBy(view, principal.employeeId ?? '')) throw problems.forbidden(`Only the elevated person, the requester or an admin can ${what} this elevation.`);
  return { principal, view, workflows: await runningWorkflow(opts, request.log, id) };
}

/** A refusal by the JIT policy (domain/jit-policy.ts JIT_RULES), naming its rule and the field it is about. */
function policyProblem(refusal: { rule: string; field: string; detail: string }, title = 'Elevation refused'): ProblemError {
  return new ProblemError({ status: 422, title, type: 'urn:jml:problem:jit-policy', detail: refusal.detail, extensions: { rule: refusal.rule, field: refusal.field } });
}

// --- routes ----------------------------------------------------------------------------

export const jitRoutes: FastifyPluginAsyncZod<JitRoutesOptions> = async (app, opts) => {
  const { db } = opts;
  const locationOf = locationUnder(opts.publicUrl, JIT_ELEVATIONS_PATH);
  const doc = { tags: ['Access'] };

  const elevateSchema = {
    ...doc,
    summary: 'Elevate to a privileged entitlement for a while',
    description:
      "The entitlement's JIT policy decides first (eligibility, duration, ticket, cool-down, separation of duties, break-glass, who approves): a refusal is a 422 naming the rule and the field, and records nothing. A token bound to a person elevates that person; someone else needs `admin`. A repeated `Idempotency-Key` (per token) answers the first elevation (200) and never makes a second; with a different body it is a 422.",
    security: bearer('jit:request'),
    body: elevateBody,
    response: { 200: elevationSchema, 201: elevationSchema },
    documented: { headers: idempotencyKeyHeaders('elevation') },
  };
  app.post(JIT_ELEVATIONS_PATH, { onRequest: requireScope('jit:request'), schema: elevateSchema }, async (request, reply) => {
    const body = request.body;
    const input = {
      ...submissionOf(request, body, 'jit'),
      ...(body.ticket !== undefined ? { ticket: body.ticket } : {}),
      ...(body.breakGlass !== undefined ? { breakGlass: body.breakGlass } : {}),
    };
    const result = await submitted(submitElevation(submitDepsOf(opts, request.log), input), policyProblem);
    const view = await recordedView(db, result.requestId);
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
    const mine = readerBoundTo(principalOf(request), 'Listing elevations needs the identities:read scope, or a token bound to a person (who then sees their own).');
    // The query's names are the filter's; a filter left out (undefined, or active=false) filters nothing.
    const page = await requestPage(db, { ...request.query, kind: 'jit', subjectOrRequester: mine });
    const now = Date.now();
    return { items: page.items.map((item) => withTimeLeft(item, now)), nextCursor: page.nextCursor };
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
    // Refused here, before the lookup, so a token that may read nothing learns nothing; the rest is visibleElevation's.
    readerBoundTo(principal, 'Reading elevations needs the identities:read scope, or a token bound to a person (who then sees their own).');
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
    const { id } = request.params;
    const { principal, view, workflows } = await elevationToActOn(opts, request, id, 'extend');
    let extension;
    try {
      extension = await extendElevation(workflows, id, { by: requesterOf(principal), durationMs: request.body.duration });
    } catch (err) {
      if (!(err instanceof ExtensionRefused)) throw err;
      if (err.rule !== 'not_extendable') throw policyProblem({ rule: err.rule, field: err.field, detail: err.message }, 'Extension refused');
      throw await stateConflict(db, id, view, {
        title: 'Not extendable',
        type: 'urn:jml:problem:not-extendable',
        detail: (statuses) => `Only an active elevation can be extended: the request is ${statuses}.`,
        extensions: { rule: err.rule, field: err.field },
      });
    }
    return { ...withTimeLeft(await recordedView(db, id)), extension };
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
    const { id } = request.params;
    const { principal, view, workflows } = await elevationToActOn(opts, request, id, 'revoke');
    let withdrawal;
    try {
      withdrawal = await withdrawRequest(workflows, id, { by: requesterOf(principal), reason: 'ended early' }, 'jit');
    } catch (err) {
      if (!(err instanceof DecisionRefused)) throw err;
      throw await stateConflict(db, id, view, {
        title: 'Nothing to revoke',
        type: 'urn:jml:problem:not-withdrawable',
        detail: (statuses) => `The elevation is ${statuses}: there is nothing left to end.`,
      });
    }
    return reply.code(202).send({ ...withTimeLeft(await recordedView(db, id)), withdrawal });
  });
};
