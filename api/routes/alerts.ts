// Alerts, for the people they are raised to (db/alert-views.ts):
//   GET  /api/v1/alerts                    alerts:write or identities:read   newest first, filters, cursor pagination
//   GET  /api/v1/alerts/:id                alerts:write or identities:read   one alert with its history
//   POST /api/v1/alerts/:id/acknowledge    alerts:write   open -> acknowledged, `{ note? }`
//   POST /api/v1/alerts/:id/resolve        alerts:write   open or acknowledged -> resolved, `{ note }` required
// Each alert shows its delivery beside its status: one that could not be delivered is still
// here, with each channel's attempt. A move its status does not allow is a 409 naming that
// status. Tokens are checked in onRequest, before any body is read.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { textSchema } from '../../domain/attributes.js';
import { employeeIdSchema } from '../../domain/employee-id.js';
import { ALERT_SEVERITIES, ALERT_STATUSES, type AlertStatus } from '../../domain/types.js';
import type { Db } from '../../db/client.js';
import { acknowledgeAlert, ALERT_DELIVERY_STATUSES, AlertMoveRefused, alertView, BadRequestCursor, listAlerts, resolveAlert, type AlertAction, type AlertFilter } from '../../db/alert-views.js';
import { requireScope } from '../auth.js';
import { bearer } from '../openapi.js';
import { ProblemError, problems } from '../problem.js';
import { idParams, listCursor, listLimit, principalOf, requesterOf } from './access-requests.js';

export interface AlertRoutesOptions {
  db: Db;
}

export const ALERTS_PATH = '/api/v1/alerts';

/** The longest note a person may leave on an alert. */
export const ALERT_NOTE_MAX = 1_000;

// --- input shapes ----------------------------------------------------------------------

const STATUS_VALUES_MAX = ALERT_STATUSES.length * 2;

/** `status=open&status=acknowledged` or `status=open,acknowledged`: a list of alert statuses. */
const statusList = z
  .union([z.string('must be a string'), z.array(z.string('must be a string')).max(STATUS_VALUES_MAX, `must be at most ${STATUS_VALUES_MAX} values`)])
  .transform((value, ctx) => {
    const parts = (Array.isArray(value) ? value : [value]).flatMap((part) => part.split(','));
    const known = parts.filter((part): part is AlertStatus => (ALERT_STATUSES as readonly string[]).includes(part));
    if (known.length !== parts.length || parts.length > STATUS_VALUES_MAX) {
      ctx.addIssue({ code: 'custom', message: `must be one or more of ${ALERT_STATUSES.join(', ')} (repeated, or comma-separated)` });
      return z.NEVER;
    }
    return [...new Set(known)];
  });

const listQuery = z.object({
  limit: listLimit,
  cursor: listCursor,
  status: statusList.optional().describe(`Any of ${ALERT_STATUSES.join(', ')}: repeat the parameter or separate by commas. Absent: every status.`),
  kind: z
    .string('must be a string')
    .regex(/^[a-z][a-z0-9_]{0,63}$/, 'must be an alert kind such as grant_failed')
    .optional()
    .describe('e.g. grant_failed, grant_unverified, grant_stuck, revoke_failed, drift_missing, drift_unexpected, event_failed, event_rejected, brake_held, break_glass.'),
  severity: z.enum(ALERT_SEVERITIES, `must be one of ${ALERT_SEVERITIES.join(', ')}`).optional(),
  employeeId: employeeIdSchema('must be a string').optional().describe('The person the alert is about (any case).'),
  grantId: z.guid('must be a UUID').optional().describe('The grant the alert is about.'),
});

const note = textSchema(ALERT_NOTE_MAX);
// The body may be left out altogether (Fastify reads no body as null).
const acknowledgeBody = z
  .strictObject({ note: note.optional().describe(`Who is on it, or what is being done (at most ${ALERT_NOTE_MAX} characters).`) })
  .nullish();
const resolveBody = z.strictObject({
  note: note.refine((text) => text.length > 0, 'must not be empty').describe(`What was done about it (1..${ALERT_NOTE_MAX} characters); required.`),
});

// --- answer shapes ---------------------------------------------------------------------

const at = z.iso.datetime();
const alertShape = {
  id: z.guid(),
  kind: z.string().describe('What went wrong: grant_failed, grant_unverified, grant_stuck, revoke_failed, drift_missing, drift_unexpected, event_failed, …'),
  severity: z.enum(ALERT_SEVERITIES),
  subject: z.string().describe('One line saying what is wrong, and with whom or what.'),
  details: z.record(z.string(), z.unknown()).describe('The subject (employeeId, grantId, entitlementId, target, eventId) and the last error.'),
  status: z.enum(ALERT_STATUSES),
  count: z.number().int().describe('How often its cause was seen while unresolved: one problem is one alert.'),
  createdAt: at,
  lastSeenAt: at,
  acknowledgedAt: at.nullable(),
  resolvedAt: at.nullable(),
  delivery: z
    .object({
      status: z.enum(ALERT_DELIVERY_STATUSES).describe('pending: not yet handed to every channel; failed: could not be (retried); none: no channel configured.'),
      deliveredAt: at.nullable(),
      notifications: z.array(z.object({ channel: z.string(), at: z.string(), ok: z.boolean(), error: z.string().optional() })).describe('Each delivery attempt, per channel.'),
    })
    .describe('Whether the alert reached people.'),
};
const historySchema = z.array(z.object({ at, actor: z.string(), action: z.string(), note: z.string().nullable() }));
const alertSchema = z.object({ ...alertShape, history: historySchema.describe('Raised, reopened, acknowledged, resolved: who, when and their note, oldest first (at most 100).') });
const listSchema = z.object({
  items: z.array(z.object(alertShape)),
  nextCursor: z.string().nullable().describe('Pass as `cursor` for the next page; null on the last page.'),
});

const MOVED: Record<AlertAction, string> = { acknowledge: 'acknowledged', resolve: 'resolved' };
const ALLOWED_FROM: Record<AlertAction, string> = { acknowledge: 'an open alert', resolve: 'an open or acknowledged alert' };

// --- routes ----------------------------------------------------------------------------

export const alertRoutes: FastifyPluginAsyncZod<AlertRoutesOptions> = async (app, { db }) => {
  const doc = { tags: ['Alerts'] };
  const readers = ['alerts:write', 'identities:read'] as const;

  const listRouteSchema = {
    ...doc,
    summary: 'List alerts, newest first',
    description: 'Filters combine; `status` takes several values. Each alert shows its delivery beside its status: one that could not be delivered is listed all the same.',
    security: bearer(...readers),
    querystring: listQuery,
    response: { 200: listSchema },
  };
  app.get(ALERTS_PATH, { onRequest: requireScope(...readers), schema: listRouteSchema }, async (request) => {
    const { status, kind, severity, employeeId, grantId, limit, cursor } = request.query;
    const filter: AlertFilter = {
      limit,
      ...(status ? { status } : {}),
      ...(kind ? { kind } : {}),
      ...(severity ? { severity } : {}),
      ...(employeeId ? { employeeId } : {}),
      ...(grantId ? { grantId } : {}),
      ...(cursor !== undefined ? { cursor } : {}),
    };
    try {
      return await listAlerts(db, filter);
    } catch (err) {
      if (err instanceof BadRequestCursor) throw problems.validation([{ field: 'cursor', message: err.message }]);
      throw err;
    }
  });

  const oneSchema = { ...doc, summary: 'One alert, with its history', security: bearer(...readers), params: idParams, response: { 200: alertSchema } };
  app.get(`${ALERTS_PATH}/:id`, { onRequest: requireScope(...readers), schema: oneSchema }, async (request) => {
    const view = await alertView(db, request.params.id);
    if (!view) throw problems.notFound(`No alert with id ${request.params.id}.`);
    return view;
  });

  /** Runs a move; a refused one is a 404 (no such alert) or a 409 naming the alert's status. */
  async function move(id: string, action: AlertAction, run: () => ReturnType<typeof acknowledgeAlert>) {
    try {
      return await run();
    } catch (err) {
      if (!(err instanceof AlertMoveRefused)) throw err;
      if (err.code === 'not_found') throw problems.notFound(`No alert with id ${id}.`);
      throw new ProblemError({
        status: 409,
        title: `Alert cannot be ${MOVED[action]}`,
        type: 'urn:jml:problem:alert-status-conflict',
        detail: `The alert is ${err.status}; only ${ALLOWED_FROM[action]} can be ${MOVED[action]}.`,
        extensions: { alertStatus: err.status },
      });
    }
  }

  const acknowledgeSchema = {
    ...doc,
    summary: 'Acknowledge an open alert: someone is on it',
    description: 'Audited with who acknowledged it and the note. Only an open alert can be acknowledged (409 naming its status otherwise). Raised again while acknowledged, it counts and stays acknowledged.',
    security: bearer('alerts:write'),
    params: idParams,
    body: acknowledgeBody,
    response: { 200: alertSchema },
  };
  app.post(`${ALERTS_PATH}/:id/acknowledge`, { onRequest: requireScope('alerts:write'), schema: acknowledgeSchema }, async (request) => {
    const { id } = request.params;
    const actor = requesterOf(principalOf(request));
    return move(id, 'acknowledge', () => acknowledgeAlert(db, id, { actor, note: request.body?.note ?? null }));
  });

  const resolveSchema = {
    ...doc,
    summary: 'Resolve an alert, with a note saying what was done',
    description: 'Audited with who resolved it and the note. An open or acknowledged alert can be resolved (409 naming its status otherwise). Should its cause come back, the engine opens it again.',
    security: bearer('alerts:write'),
    params: idParams,
    body: resolveBody,
    response: { 200: alertSchema },
  };
  app.post(`${ALERTS_PATH}/:id/resolve`, { onRequest: requireScope('alerts:write'), schema: resolveSchema }, async (request) => {
    const { id } = request.params;
    const actor = requesterOf(principalOf(request));
    return move(id, 'resolve', () => resolveAlert(db, id, { actor, note: request.body.note }));
  });
};
