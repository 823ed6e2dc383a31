// POST /api/v1/hr/events: the HR webhook. Order matters:
//   1. Standard Webhooks signature over the RAW body bytes (401 before anything is parsed),
//   2. the body as strict UTF-8 JSON of bounded depth (api/json-body.ts: 400 when it is
//      not), then zod (400 naming each bad field; attributes under the one shared schema,
//      domain/attributes.ts, that SCIM and CSV use too),
//   3. durable write to the inbox (503 + Retry-After when Postgres cannot take it; when it
//      refuses connections, at once; when it hangs, within db/client.ts DATABASE_WAIT_MS),
//   4. a nudge on the BullMQ queue, bounded by a short timeout: when Redis is down the
//      event is still accepted (the row stays `received` and the worker's dispatcher
//      re-enqueues it later).
// The `webhook-id` header is the idempotency key: a repeat with the same body answers the
// first result; a repeat with a different body is a 409.
// GET /api/v1/hr/events/:id: where the event is in its processing.
import { createHash } from 'node:crypto';
import type { Queue } from 'bullmq';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { HR_EVENT_SOURCES, HR_EVENT_STATUSES, HR_EVENT_TYPES } from '../../domain/types.js';
import { identityAttributesSchema } from '../../domain/attributes.js';
import { employeeIdSchema } from '../../domain/employee-id.js';
import type { JmlConfig } from '../../domain/config.js';
import { awaitDatabase, type Db } from '../../db/client.js';
import { brakeWebhookTerminate } from '../../services/feeds.js';
import { canonicalJson } from '../../domain/canonical-json.js';
import { createInboxWriter, getHrEvent, type HrEventRow, type NewHrEvent } from '../../db/inbox.js';
import { enqueueHrEvent, type HrEventJob } from '../../services/hr-event-queue.js';
import { requireScope } from '../auth.js';
import { parseJsonBody } from '../json-body.js';
import type { ApiMetrics } from '../metrics.js';
import { bearer } from '../openapi.js';
import { parseOrThrow, PROBLEM_TYPES, ProblemError, problems, safeErrorInfo } from '../problem.js';
import type { WebhookVerifier } from '../webhook-verify.js';
import { refusedFields, reportRejectedInput } from '../../services/input-rejections.js';

export const HR_EVENTS_PATH = '/api/v1/hr/events';
const MAX_EVENT_ID = 256;

// --- the event schema -----------------------------------------------------------------

export const hrEventBodySchema = z
  .object({
    type: z.enum(HR_EVENT_TYPES, `must be one of ${HR_EVENT_TYPES.join(', ')}`),
    employeeId: employeeIdSchema('is required'),
    effectiveAt: z.iso.datetime({ offset: true, message: 'must be an ISO 8601 date-time with a Z or ±hh:mm offset' }).optional(),
    attributes: identityAttributesSchema.default({}),
  })
  .superRefine(
    (event, ctx) => {
      // A joiner needs a name; checked even when other fields failed, so every bad field is listed.
      // No trimming here: the shared text rule already refuses a padded or blank-padded name.
      if (event?.type !== 'hire') return;
      const attributes: unknown = event.attributes ?? {};
      // Attributes that are not an object are already an error of their own.
      if (typeof attributes !== 'object' || attributes === null || Array.isArray(attributes)) return;
      for (const field of ['givenName', 'familyName'] as const) {
        const value = (attributes as Record<string, unknown>)[field];
        if (typeof value !== 'string' || value === '') ctx.addIssue({ code: 'custom', path: ['attributes', field], message: 'is required for a hire' });
      }
    },
    { when: (payload) => typeof payload.value === 'object' && payload.value !== null },
  );

export type HrEventBody = z.output<typeof hrEventBodySchema>;


/** The Standard Webhooks headers, for the document: the handler reads them itself, signature first. */
const webhookHeaders = z.object({
  'webhook-id': z.string().max(MAX_EVENT_ID).describe('The event id and idempotency key: a repeat with the same body answers the first result; with another body, 409.'),
  'webhook-timestamp': z.string().describe('When the event was signed, in Unix seconds; one too far from now is refused.'),
  'webhook-signature': z.string().describe('Space-separated `v1,<base64 HMAC-SHA256>` of `id.timestamp.body` over the raw body bytes, with a shared `whsec_` secret.'),
});

const acceptedSchema = z.object({
  id: z.string(),
  status: z.enum(HR_EVENT_STATUSES),
  statusUrl: z.string().describe('Where to follow the event (also the Location header).'),
});

const eventSchema = z.object({
  id: z.string(),
  type: z.enum(HR_EVENT_TYPES),
  employeeId: z.string(),
  effectiveAt: z.date(),
  source: z.enum(HR_EVENT_SOURCES),
  status: z.enum(HR_EVENT_STATUSES),
  reason: z.string().nullable(),
  receivedAt: z.date(),
  dispatchedAt: z.date().nullable(),
  appliedAt: z.date().nullable(),
});
type EventAnswer = z.output<typeof eventSchema>;

export function payloadHash(payload: unknown): string {
  return createHash('sha256').update(canonicalJson(payload)).digest('hex');
}

// --- the plugin -----------------------------------------------------------------------

export interface HrEventRoutesOptions {
  db: Db;
  queue: Queue<HrEventJob>;
  /** For the mass-leaver brake on webhook terminations (services/feeds.ts). */
  config: JmlConfig;
  verifier: WebhookVerifier;
  publicUrl: string;
  metrics: ApiMetrics;
  /** How long to wait for Redis before answering anyway (default 1000 ms). */
  enqueueTimeoutMs?: number;
  /** The inbox write (default: db/inbox createInboxWriter, batched); a seam for the ingest bench. */
  storeHrEvent?: StoreHrEvent | undefined;
}

export type StoreHrEvent = (db: Db, event: NewHrEvent, actor: string) => Promise<{ row: HrEventRow; created: boolean }>;

function eventView(row: HrEventRow): EventAnswer {
  return {
    id: row.id,
    // Text columns whose check constraints allow these values only.
    type: row.type as EventAnswer['type'],
    employeeId: row.employeeId,
    effectiveAt: row.effectiveAt,
    source: row.source as EventAnswer['source'],
    status: row.status as EventAnswer['status'],
    reason: row.reason,
    receivedAt: row.receivedAt,
    dispatchedAt: row.dispatchedAt,
    appliedAt: row.appliedAt,
  };
}

export const hrEventRoutes: FastifyPluginAsyncZod<HrEventRoutesOptions> = async (app, opts) => {
  const { db, queue, verifier, metrics } = opts;
  // Group commit: concurrent webhooks share one transaction and one turn at the audit lock.
  const store = opts.storeHrEvent ?? createInboxWriter(db).store;
  const enqueueTimeoutMs = opts.enqueueTimeoutMs ?? 1_000;
  const publicUrl = opts.publicUrl.replace(/\/+$/, '');
  const statusUrl = (id: string) => `${publicUrl}${HR_EVENTS_PATH}/${encodeURIComponent(id)}`;

  // Encapsulated: in this plugin only, JSON bodies stay raw bytes so the signature is
  // checked over exactly what was signed. Other routes keep Fastify's JSON parser.
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

  // While Redis is known to be failing, do not make every request wait for the timeout:
  // the dispatcher picks the rows up. One request per interval probes again.
  let queueDownUntil = 0;
  async function nudge(eventId: string): Promise<boolean> {
    if (Date.now() < queueDownUntil) return false;
    try {
      await enqueueHrEvent(queue, eventId, enqueueTimeoutMs);
      return true;
    } catch (err) {
      queueDownUntil = Date.now() + 5_000;
      app.log.warn({ eventId, err: safeErrorInfo(err) }, 'could not enqueue hr event; it stays received for the dispatcher');
      return false;
    }
  }

  const postSchema = {
    tags: ['HR input'],
    summary: 'Receive an HR event (signed webhook)',
    description:
      'Signed as Standard Webhooks specifies, with a shared secret, no bearer token: the signature is checked over the raw body bytes (401) before the body is read as JSON (400 naming each bad field). ' +
      'Accepted events are stored durably (503 with Retry-After when they cannot be) and answered 202.',
    // Read by the handler itself, in that order: the signature first, then the body.
    documented: { headers: webhookHeaders, body: hrEventBodySchema },
    response: { 202: acceptedSchema },
  };
  app.post(HR_EVENTS_PATH, { schema: postSchema }, async (request, reply) => {
    const raw = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
    const verified = verifier.verify(raw, request.headers);
    if (!verified.ok) {
      throw new ProblemError({
        status: 401,
        title: 'Invalid webhook signature',
        type: PROBLEM_TYPES.badSignature,
        detail: verified.reason,
        headers: { 'www-authenticate': 'Webhook realm="hr-events"' },
      });
    }
    let body: HrEventBody;
    try {
      if (verified.id.length > MAX_EVENT_ID) throw problems.validation([{ field: 'webhook-id', message: `must be at most ${MAX_EVENT_ID} characters` }]);
      // Only now, with the signature proven over the bytes: strict UTF-8 (never a lossy
      // decode), bounded nesting, then JSON; each a 400.
      body = parseOrThrow(hrEventBodySchema, parseJsonBody(raw));
    } catch (err) {
      // A signed event refused as invalid: HR sends what the engine cannot take (event_rejected).
      if (err instanceof ProblemError && err.statusCode === 400) void reportRejectedInput(db, request.log, 'webhook', refusedFields(err.problem));
      throw err;
    }
    // The payload is the event as the source sent it (known top-level fields only); the
    // effective_at column holds the resolved instant (now when the source gave none).
    const payload = {
      type: body.type,
      employeeId: body.employeeId,
      ...(body.effectiveAt !== undefined ? { effectiveAt: body.effectiveAt } : {}),
      attributes: body.attributes,
    };
    const event: NewHrEvent = {
      id: verified.id,
      type: body.type,
      employeeId: body.employeeId,
      effectiveAt: body.effectiveAt ? new Date(body.effectiveAt) : new Date(),
      payload,
      source: 'webhook',
    };

    let stored: { row: HrEventRow; created: boolean };
    try {
      // Terminations go past the mass-leaver brake, which counts them in its rolling window and
      // may store them `held`, once Postgres has answered within the wait; every other type
      // takes the batched inbox write, which has that wait built in.
      stored = body.type === 'terminate' ? await awaitDatabase(db).then(() => brakeWebhookTerminate(db, opts.config, event)) : await store(db, event, 'webhook');
    } catch (err) {
      // Whatever stopped the write (down, restarting, full), nothing was stored and the
      // sender must retry: that is what 503 + Retry-After says.
      throw new ProblemError({ ...problems.unavailable('The event could not be stored; retry later.').problem }, { cause: err });
    }
    const { row, created } = stored;

    if (!created && payloadHash(row.payload) !== payloadHash(payload)) {
      throw new ProblemError({
        status: 409,
        title: 'Idempotency key reused',
        type: PROBLEM_TYPES.conflict,
        detail: 'An event with this webhook-id was already received with a different body.',
      });
    }
    if (created) metrics.hrEventsAccepted.inc({ source: 'webhook' });
    // A repeat of an event that never reached the queue nudges again (job ids dedupe).
    if (row.status === 'received') await nudge(row.id);

    const location = statusUrl(row.id);
    return reply.code(202).header('location', location).send({ id: row.id, status: row.status as EventAnswer['status'], statusUrl: location });
  });

  const idParams = z.object({ id: z.string().min(1).max(MAX_EVENT_ID, `must be at most ${MAX_EVENT_ID} characters`) });

  const getSchema = {
    tags: ['HR input'],
    summary: 'Where an HR event is in its processing',
    security: bearer('events:write', 'identities:read'),
    params: idParams,
    response: { 200: eventSchema },
  };
  // preValidation: the token is checked before the route's schemas look at the input.
  app.get(`${HR_EVENTS_PATH}/:id`, { preValidation: requireScope('events:write', 'identities:read'), schema: getSchema }, async (request) => {
    const { id } = request.params;
    const row = await getHrEvent(db, id);
    if (!row) throw problems.notFound(`No HR event with id ${JSON.stringify(id)}.`);
    return eventView(row);
  });
};
