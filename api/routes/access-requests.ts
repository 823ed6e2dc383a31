// Access requests: people ask for access beyond their birthright, an approver decides.
//   POST   /api/v1/access-requests                requests:write   ask (idempotent by Idempotency-Key)
//   GET    /api/v1/access-requests                identities:read (all), or requests:write /
//                                                 requests:approve bound to a person (theirs)
//   GET    /api/v1/access-requests/:id            as the list
//   DELETE /api/v1/access-requests/:id            requests:write   the requester, or admin: withdraw / remove
//   POST   /api/v1/access-requests/:id/decision   requests:approve bound to the approver
// Every answer shows the three statuses side by side (domain/request-view.ts). Tokens are
// checked in onRequest, before any body is read. A token bound to a person (api_tokens.
// employee_id) requests for that person and decides as them; a request the caller may not
// see is a 404, as if it did not exist.
import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import type { FastifyBaseLogger, FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { AccessRefusal, AccessRule } from '../../domain/access-policy.js';
import { textSchema } from '../../domain/attributes.js';
import type { JmlConfig } from '../../domain/config.js';
import { parseDuration } from '../../domain/duration.js';
import { employeeIdSchema } from '../../domain/employee-id.js';
import { APPROVAL_DECISIONS, APPROVAL_ROLES, REVOCATION_STATUSES, type RequestView } from '../../domain/request-view.js';
import { GRANT_STATUSES, REQUEST_KINDS, REQUEST_STATUSES } from '../../domain/types.js';
import type { Db } from '../../db/client.js';
import { BadRequestCursor, listRequests, openStage, requestView, type RequestFilter, type RequestSummary } from '../../db/request-views.js';
import { ensureRequestWorkflow, IdempotencyKeyReused, submitAccessRequest, type SubmitDeps, type SubmitInput, type WorkflowKind } from '../../services/access-requests.js';
import { decideStage, DecisionRefused, withdrawRequest } from '../../services/decisions.js';
import { hasScope, requireScope, type Principal } from '../auth.js';
import { bearer } from '../openapi.js';
import { PROBLEM_TYPES, ProblemError, problems } from '../problem.js';

export const ACCESS_REQUESTS_PATH = '/api/v1/access-requests';

/** What the access-request routes need; the JIT routes need the same. */
export interface AccessRequestRoutesOptions {
  db: Db;
  config: JmlConfig;
  publicUrl: string;
  taskQueue: string;
  /** Absent: requests (and elevations) are recorded, the sweeper starts their workflows; what asks a workflow (decide, withdraw, extend, revoke) answers 503. */
  temporal?: Client;
}

/** The body field each policy rule is about, so a client can show the refusal beside it. */
const RULE_FIELDS: Record<AccessRule, 'justification' | 'duration' | 'entitlementId' | 'employeeId'> = {
  justification_required: 'justification',
  justification_invalid: 'justification',
  duration_invalid: 'duration',
  duration_required: 'duration',
  duration_too_long: 'duration',
  unknown_entitlement: 'entitlementId',
  not_requestable: 'entitlementId',
  already_held: 'entitlementId',
  already_pending: 'entitlementId',
  sod_conflict: 'entitlementId',
  no_approver: 'entitlementId',
  self_approval: 'entitlementId',
  unknown_subject: 'employeeId',
  subject_not_active: 'employeeId',
};

// --- input shapes ----------------------------------------------------------------------

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;
const DURATION_TEXT_MAX = 32;

/** A duration as text (`30m`, `8h`, `7d`), as milliseconds. Shared with the JIT routes. */
export const durationText = z
  .string('must be a string')
  .max(DURATION_TEXT_MAX, `must be at most ${DURATION_TEXT_MAX} characters`)
  .transform((text, ctx) => {
    try {
      if (text !== text.trim()) throw new Error('padded');
      return parseDuration(text);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'must be a duration such as 30m, 8h or 7d' });
      return z.NEVER;
    }
  });
export const entitlementIdText = z.string('must be a string').min(1, 'must not be empty').max(200, 'must be at most 200 characters');

const submitBody = z.strictObject({
  employeeId: employeeIdSchema('must be a string').optional().describe('Who the access is for; absent: the person the token is bound to.'),
  entitlementId: entitlementIdText,
  // The policy judges the text (required, at most 1000 characters, no control characters): a 422 naming its rule.
  justification: z.string('must be a string').describe('Why the access is needed (1..1000 characters).'),
  duration: durationText.optional().describe('How long the grant lasts once made, e.g. 8h or 7d; absent: until removed (if the entitlement allows that).'),
});

export const idParams = z.object({ id: z.guid('must be a UUID') });

export const listLimit = z.coerce.number('must be a number').int('must be an integer').min(1, 'must be at least 1').max(200, 'must be at most 200').default(50);
export const listCursor = z.string().max(512, 'is too long').optional();
const personQuery = () => employeeIdSchema('must be a string').optional();
/** The list's filters; the JIT list takes those that are not about the kind or the approvers. */
export const requestListQuery = z.object({
  limit: listLimit,
  cursor: listCursor,
  status: z.enum(REQUEST_STATUSES, `must be one of ${REQUEST_STATUSES.join(', ')}`).optional().describe('The request status.'),
  kind: z.enum(REQUEST_KINDS, `must be one of ${REQUEST_KINDS.join(', ')}`).optional().describe('Absent: requested access only (birthright and jit when asked for).'),
  employeeId: personQuery().describe('The subject.'),
  entitlementId: entitlementIdText.optional(),
  approver: personQuery().describe('A person who is or was an approver of one of its stages.'),
  awaiting: personQuery().describe('A person with an undecided approval on it.'),
});

const decisionBody = z.strictObject({
  decision: z.enum(['approve', 'deny'], 'must be approve or deny'),
  comment: textSchema(1_000).optional().describe('At most 1000 characters; shown to the requester.'),
});

// --- answer shapes ---------------------------------------------------------------------

const at = z.iso.datetime();
const approvalSchema = z.object({
  id: z.guid(),
  stage: z.number().int(),
  role: z.enum(APPROVAL_ROLES),
  approver: z.string().describe('The employee id of who decides.'),
  fallbackReason: z.string().nullable().describe('Why the stage went to the fallback approver; null when its own approver decides.'),
  escalatedFrom: z.guid().nullable(),
  dueAt: at,
  remindersSent: z.number().int(),
  escalatedTo: z.string().nullable(),
  escalatedAt: at.nullable(),
  escalationNote: z.string().nullable(),
  decision: z.enum(APPROVAL_DECISIONS).nullable(),
  decidedBy: z.string().nullable(),
  decidedAt: at.nullable(),
  decidedVia: z.string().nullable(),
  comment: z.string().nullable(),
});
export const timelineSchema = z.object({ at, actor: z.string(), action: z.string(), detail: z.record(z.string(), z.unknown()) });
/** A request's fields (domain/request-view.ts), but its timeline. Shared with the JIT routes. */
export const summaryShape = {
  id: z.guid(),
  employeeId: z.string().describe('The subject: who the access is for.'),
  entitlementId: z.string(),
  kind: z.enum(REQUEST_KINDS),
  requestedBy: z.string().describe('The requester: an employee id, or `api:<token name>` for a token bound to nobody.'),
  justification: z.string().nullable(),
  duration: z.string().nullable().describe('e.g. 8h; null: until removed.'),
  createdAt: at,
  requestStatus: z.enum(REQUEST_STATUSES).describe('Did the right person say yes?'),
  statusReason: z.string().nullable(),
  decidedAt: at.nullable(),
  grantStatus: z.enum(GRANT_STATUSES).nullable().describe('Did the target really do it, proven by read-back? null until a grant exists.'),
  revocationStatus: z.enum(REVOCATION_STATUSES).nullable().describe('Has it really gone? null until removal is asked.'),
  retainedBy: z.array(z.string()).describe('What keeps the access due when its removal was asked but it stays.'),
  expiresAt: at.nullable(),
  revokedAt: at.nullable().describe('When the access was proven gone (or found kept for another reason); null until then.'),
  revocationLagMs: z.number().int().nullable().describe('revokedAt - expiresAt in ms: how long the access outlived its expiry.'),
  ticket: z.string().nullable().describe('JIT: the change or incident reference given.'),
  breakGlass: z.boolean().describe('JIT: granted at once without approval, in an emergency.'),
  extensions: z.number().int().describe('JIT: how often the elevation was extended.'),
  grant: z
    .object({
      id: z.guid(),
      status: z.enum(GRANT_STATUSES),
      attempts: z.number().int(),
      lastError: z.string().nullable(),
      verifiedAt: at.nullable(),
      revokedAt: at.nullable(),
      revokeReason: z.string().nullable(),
    })
    .nullable(),
  approvals: z.array(approvalSchema).describe('Each approver of each stage, ordered by stage: who decided what, when and how.'),
};
/**
 * The answer to a read of one request and to a list page, over `shape` (a request's fields,
 * or an elevation's): one request carries its timeline, a list item does not (it would cost a
 * read of the audit log per item). Shared with the JIT routes.
 */
export function viewSchemas<Shape extends typeof summaryShape>(shape: Shape, noun: 'request' | 'elevation') {
  const timeline = z.array(timelineSchema);
  return {
    one: z.object({ ...shape, timeline: timeline.describe('What happened, from the audit log, oldest first (at most 200 entries).') }),
    page: z.object({
      items: z.array(z.object({ ...shape, timeline: timeline.optional().describe(`Not sent in lists: read one ${noun} for it.`) })),
      nextCursor: z.string().nullable().describe('Pass as `cursor` for the next page; null on the last page.'),
    }),
  };
}
const { one: requestSchema, page: listSchema } = viewSchemas(summaryShape, 'request');
/** What a withdrawal did, as the workflow answered it. Shared with the JIT routes. */
export const withdrawalShape = {
  withdrawal: z
    .object({
      requestStatus: z.enum(REQUEST_STATUSES),
      grantStatus: z.enum(GRANT_STATUSES).nullable(),
      revocationStatus: z.enum(['pending', 'retained']).nullable().describe('null: nothing was granted (a pending request was withdrawn).'),
      retainedBy: z.array(z.string()).describe('What keeps the access due when it stays (a birthright rule, another request).'),
    })
    .describe('What the withdrawal did, as the workflow answered it.'),
};
const withdrawalSchema = requestSchema.extend(withdrawalShape);

// --- helpers ---------------------------------------------------------------------------

export function principalOf(request: FastifyRequest): Principal {
  // onRequest (requireScope) set it, or the request never got here.
  if (!request.principal) throw problems.unauthorized('A bearer token is required.');
  return request.principal;
}

export const isAdmin = (principal: Principal) => principal.scopes.includes('admin');

/** Who asks, as recorded and audited: the token's person, or `api:<token name>` for a token bound to nobody. */
export const requesterOf = (principal: Principal): string => principal.employeeId ?? `api:${principal.name}`;

/** The caller's Idempotency-Key, checked (1..255 visible ASCII characters); undefined when none was sent. */
export function idempotencyKeyOf(request: FastifyRequest): string | undefined {
  const key = request.headers['idempotency-key'];
  if (key !== undefined && (typeof key !== 'string' || !IDEMPOTENCY_KEY.test(key))) {
    throw problems.validation([{ field: 'Idempotency-Key', message: 'must be 1..255 visible ASCII characters' }]);
  }
  return key;
}

/** The Idempotency-Key header as the OpenAPI document shows it; idempotencyKeyOf checks it. */
export const idempotencyKeyHeaders = (noun: 'request' | 'elevation') =>
  z.object({ 'idempotency-key': z.string().optional().describe(`1..255 visible ASCII characters; a retry with the same key never makes a second ${noun}.`) });

export const idempotencyKeyReused = () => new ProblemError({ status: 422, title: 'Idempotency key reused', type: PROBLEM_TYPES.conflict, detail: 'idempotency key reused with a different request' });

/**
 * Who a request is for: a token bound to a person acts for that person (someone else needs
 * `admin`); a token bound to nobody must be an admin's and name the employeeId.
 */
export function subjectFor(principal: Principal, employeeId: string | undefined): string {
  if (principal.employeeId !== null) {
    const subject = employeeId ?? principal.employeeId;
    if (subject !== principal.employeeId && !isAdmin(principal)) {
      throw problems.forbidden('This token is bound to a person and requests for them only; asking on behalf of someone else needs the admin scope.');
    }
    return subject;
  }
  if (!isAdmin(principal)) throw problems.forbidden('This token is bound to nobody: bind it to a person (jml token create --employee), or use an admin token and name the employeeId.');
  if (employeeId === undefined) throw problems.validation([{ field: 'employeeId', message: 'is required: this token is bound to nobody' }]);
  return employeeId;
}

/** What a request body of either kind (access request, elevation) says about whom, what and why. */
interface SubmittedBody {
  employeeId?: string | undefined;
  entitlementId: string;
  justification: string;
  duration?: number | undefined;
}

/**
 * A submission as the caller made it: for whom (subjectFor), who asks, and the key. The key is
 * the caller's Idempotency-Key (or a fresh one) scoped by kind and token, so one caller's key
 * never finds another's request, nor an elevation an access request. Refuses in the order the
 * routes always did: a bad key (400) before a subject the token may not ask for (403).
 */
export function submissionOf(request: FastifyRequest, body: SubmittedBody, kind: WorkflowKind): SubmitInput {
  const principal = principalOf(request);
  const key = idempotencyKeyOf(request);
  return {
    employeeId: subjectFor(principal, body.employeeId),
    entitlementId: body.entitlementId,
    justification: body.justification,
    ...(body.duration !== undefined ? { durationMs: body.duration } : {}),
    requestedBy: requesterOf(principal),
    requestedByEmployeeId: principal.employeeId,
    idempotencyKey: `${kind}:${principal.tokenId}:${key ?? randomUUID()}`,
  };
}

/** What a submission needs of the routes' options, logging to the request's logger. */
export const submitDepsOf = (opts: AccessRequestRoutesOptions, logger: FastifyBaseLogger): SubmitDeps => ({
  db: opts.db,
  config: opts.config,
  taskQueue: opts.taskQueue,
  logger,
  ...(opts.temporal ? { temporal: opts.temporal } : {}),
});

/** The Location of what `path` lists, by id, on the API's public URL. */
export function locationUnder(publicUrl: string, path: string): (id: string) => string {
  const base = publicUrl.replace(/\/+$/, '');
  return (id) => `${base}${path}/${id}`;
}

/**
 * What a submission made or found (a replay of its key), or the 422 it is answered with: a key
 * reused for another body, or the kind's policy refusal (`refusalProblem`).
 */
export async function submitted<Refusal>(
  submission: Promise<{ created: boolean; requestId: string } | { refused: Refusal }>,
  refusalProblem: (refusal: Refusal) => ProblemError,
): Promise<{ created: boolean; requestId: string }> {
  let result;
  try {
    result = await submission;
  } catch (err) {
    if (err instanceof IdempotencyKeyReused) throw idempotencyKeyReused();
    throw err;
  }
  if ('refused' in result) throw refusalProblem(result.refused);
  return result;
}

/** A request this process has just recorded or acted on, read back: missing, it is a bug, not a 404. */
export async function recordedView(db: Db, id: string): Promise<RequestView> {
  const view = await requestView(db, id);
  if (!view) throw new Error('a recorded request could not be read back');
  return view;
}

/**
 * The person whose own requests a caller may read: undefined for a reader (identities:read),
 * who reads everyone's; a token bound to nobody without that scope is refused (`refusal`).
 */
export function readerBoundTo(principal: Principal, refusal: string): string | undefined {
  if (hasScope(principal.scopes, ['identities:read'])) return undefined;
  if (principal.employeeId === null) throw problems.forbidden(refusal);
  return principal.employeeId;
}

/** A page of the request list; a cursor this API did not write is a 400 naming `cursor`. */
export async function requestPage(db: Db, filter: RequestFilter): ReturnType<typeof listRequests> {
  try {
    return await listRequests(db, filter);
  } catch (err) {
    if (err instanceof BadRequestCursor) throw problems.validation([{ field: 'cursor', message: err.message }]);
    throw err;
  }
}

/**
 * The Temporal client to address the request's workflow with, once that workflow runs: a
 * request the sweeper has not started yet has no workflow to ask, so it is started here.
 * 503 when this API process has no Temporal.
 */
export async function runningWorkflow(opts: { db: Db; taskQueue: string; temporal?: Client | undefined }, logger: FastifyBaseLogger, id: string): Promise<Client> {
  if (!opts.temporal) throw noTemporal();
  await ensureRequestWorkflow({ db: opts.db, temporal: opts.temporal, taskQueue: opts.taskQueue, logger }, id);
  return opts.temporal;
}

/**
 * The 409 of an action the request's state no longer allows. Its statuses are read again (the
 * workflow has just said no, so they may have moved since `before`) and named, in words in the
 * detail and as fields beside `extensions`.
 */
export async function stateConflict(
  db: Db,
  id: string,
  before: RequestSummary,
  problem: { title: string; type: string; detail: (statuses: string) => string; extensions?: Record<string, unknown> },
): Promise<ProblemError> {
  const now = (await requestView(db, id)) ?? before;
  const statuses = `${now.requestStatus}, its grant ${now.grantStatus ?? 'not made'}, its revocation ${now.revocationStatus ?? 'not asked'}`;
  return new ProblemError({
    status: 409,
    title: problem.title,
    type: problem.type,
    detail: problem.detail(statuses),
    extensions: { ...problem.extensions, requestStatus: now.requestStatus, grantStatus: now.grantStatus, revocationStatus: now.revocationStatus },
  });
}

/** Whether `who` is the subject, the requester or an approver of the request. */
function involves(view: RequestSummary, who: string): boolean {
  return view.employeeId === who || view.requestedBy === who || view.approvals.some((a) => a.approver === who || a.escalatedTo === who);
}

/** The request as the caller may see it: readers see every request, a bound person only theirs. */
async function visibleRequest(db: Db, principal: Principal, id: string): Promise<RequestView> {
  const view = await requestView(db, id);
  const mayRead = hasScope(principal.scopes, ['identities:read']);
  if (!view || (!mayRead && (principal.employeeId === null || !involves(view, principal.employeeId)))) throw problems.notFound(`No access request with id ${id}.`);
  return view;
}

function policyProblem(refusal: AccessRefusal): ProblemError {
  return new ProblemError({
    status: 422,
    title: 'Access request refused',
    type: 'urn:jml:problem:access-policy',
    detail: refusal.detail,
    extensions: { rule: refusal.rule, field: RULE_FIELDS[refusal.rule], ...(refusal.conflict ? { conflict: refusal.conflict } : {}) },
  });
}

export const noTemporal = () => problems.unavailable('Temporal is not configured for this API process.');

// --- routes ----------------------------------------------------------------------------

export const accessRequestRoutes: FastifyPluginAsyncZod<AccessRequestRoutesOptions> = async (app, opts) => {
  const { db, temporal } = opts;
  const locationOf = locationUnder(opts.publicUrl, ACCESS_REQUESTS_PATH);
  const doc = { tags: ['Access'] };

  const submitSchema = {
    ...doc,
    summary: 'Ask for access',
    description:
      'Policy checks run first (the entitlement is requestable, the subject active, the duration within its limit, no separation-of-duties conflict, someone to approve): a refusal is a 422 naming the rule and the field, and records nothing. A token bound to a person requests for that person; for someone else it needs `admin`. A repeated `Idempotency-Key` (per token) answers the first request (200); with a different body it is a 422.',
    security: bearer('requests:write'),
    body: submitBody,
    response: { 200: requestSchema, 201: requestSchema },
    documented: { headers: idempotencyKeyHeaders('request') },
  };
  app.post(ACCESS_REQUESTS_PATH, { onRequest: requireScope('requests:write'), schema: submitSchema }, async (request, reply) => {
    const input = submissionOf(request, request.body, 'requested');
    const result = await submitted(submitAccessRequest(submitDepsOf(opts, request.log), input), policyProblem);
    const view = await recordedView(db, result.requestId);
    return reply
      .code(result.created ? 201 : 200)
      .header('location', locationOf(view.id))
      .send(view);
  });

  const listRouteSchema = {
    ...doc,
    summary: 'List access requests, newest first',
    description:
      'With `identities:read` every request; with `requests:write` or `requests:approve` on a token bound to a person, only the requests that person is the subject, the requester or an approver of. Birthright requests and JIT elevations are listed only when `kind=birthright` or `kind=jit` asks for them (the JIT API lists elevations with their time left).',
    security: bearer('identities:read', 'requests:write', 'requests:approve'),
    querystring: requestListQuery,
    response: { 200: listSchema },
  };
  app.get(ACCESS_REQUESTS_PATH, { onRequest: requireScope('identities:read', 'requests:write', 'requests:approve'), schema: listRouteSchema }, async (request) => {
    const involving = readerBoundTo(principalOf(request), 'Listing requests needs the identities:read scope, or a token bound to a person (who then sees their own).');
    // The query's names are the filter's; a filter left out (undefined) filters nothing.
    return requestPage(db, { ...request.query, involving });
  });

  const oneSchema = {
    ...doc,
    summary: 'One access request: its three statuses, approval stages and timeline',
    security: bearer('identities:read', 'requests:write', 'requests:approve'),
    params: idParams,
    response: { 200: requestSchema },
  };
  app.get(`${ACCESS_REQUESTS_PATH}/:id`, { onRequest: requireScope('identities:read', 'requests:write', 'requests:approve'), schema: oneSchema }, async (request) => {
    const principal = principalOf(request);
    // Refused here, before the lookup, so a token that may read nothing learns nothing; the rest is visibleRequest's.
    readerBoundTo(principal, 'Reading requests needs the identities:read scope, or a token bound to a person (who then sees their own).');
    return visibleRequest(db, principal, request.params.id);
  });

  const withdrawSchema = {
    ...doc,
    summary: 'Withdraw a pending request, or remove the access it granted',
    description:
      'The requester or an admin. Removal is reference-counted: access still due for another reason (birthright, another request) stays, and `withdrawal.retainedBy` says why. 409 when nothing is left to withdraw.',
    security: bearer('requests:write'),
    params: idParams,
    response: { 202: withdrawalSchema },
  };
  app.delete(`${ACCESS_REQUESTS_PATH}/:id`, { onRequest: requireScope('requests:write'), schema: withdrawSchema }, async (request, reply) => {
    const principal = principalOf(request);
    const { id } = request.params;
    const me = principal.employeeId;
    if (!isAdmin(principal) && me === null) throw problems.forbidden('Withdrawing needs a token bound to the requester, or the admin scope.');
    const view = await visibleRequest(db, principal, id);
    if (!isAdmin(principal) && view.requestedBy !== me) throw problems.forbidden('Only the requester or an admin can withdraw this request.');
    const workflows = await runningWorkflow(opts, request.log, id);
    let withdrawal;
    try {
      withdrawal = await withdrawRequest(workflows, id, { by: requesterOf(principal), reason: null }, view.kind === 'jit' ? 'jit' : 'requested');
    } catch (err) {
      if (!(err instanceof DecisionRefused)) throw err;
      throw await stateConflict(db, id, view, {
        title: 'Nothing to withdraw',
        type: 'urn:jml:problem:not-withdrawable',
        detail: (statuses) => `The request is ${statuses}: there is nothing left to withdraw or remove.`,
      });
    }
    const after = (await requestView(db, id)) ?? view;
    return reply.code(202).send({ ...after, withdrawal });
  });

  const decisionSchema = {
    ...doc,
    summary: 'Approve or deny the open stage of a request, as its approver',
    description:
      'For chat integrations: the token must be bound to the stage\'s approver (or the person it escalated to). Self-approval, a decision by anyone else (403) and a second decision (409) are refused.',
    security: bearer('requests:approve'),
    params: idParams,
    body: decisionBody,
    response: { 200: requestSchema },
  };
  app.post(`${ACCESS_REQUESTS_PATH}/:id/decision`, { onRequest: requireScope('requests:approve'), schema: decisionSchema }, async (request) => {
    const principal = principalOf(request);
    const { id } = request.params;
    const approverId = principal.employeeId;
    if (approverId === null) throw problems.forbidden('a decision needs a token bound to a person');
    const view = await visibleRequest(db, principal, id);
    const stage = await openStage(db, id);
    if (stage === null) {
      throw new ProblemError({
        status: 409,
        title: 'No decision awaited',
        type: 'urn:jml:problem:no-open-stage',
        detail: `No stage of this request awaits a decision (the request is ${view.requestStatus}).`,
        extensions: { requestStatus: view.requestStatus },
      });
    }
    if (!temporal) throw noTemporal();
    const { decision, comment } = request.body;
    try {
      await decideStage(temporal, id, stage, { approverId, decision: decision === 'approve' ? 'approved' : 'denied', comment: comment ?? null, via: 'api' });
    } catch (err) {
      if (!(err instanceof DecisionRefused)) throw err;
      const forbidden = err.code === 'not_approver' || err.code === 'self_approval';
      throw new ProblemError({
        status: forbidden ? 403 : 409,
        title: forbidden ? 'Forbidden' : 'Decision refused',
        type: forbidden ? PROBLEM_TYPES.forbidden : 'urn:jml:problem:decision-refused',
        detail: err.message,
        extensions: { reason: err.code },
      });
    }
    return (await requestView(db, id)) ?? view;
  });
};
