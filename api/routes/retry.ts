// The operator's retries (scope alerts:write), each answering 202 with where to follow it:
// - POST /api/v1/hr/events/:id/retry: an event whose step failed goes back to `dispatched`
//   (audited with who asked) and its person's workflow decides it afresh. Only a `failed`
//   event can be retried: anything else is a 409 naming its status.
// - POST /api/v1/grants/:id/retry: a failed grant (or failed revocation) is tried again now,
//   instead of at the end of its backoff, by the workflow that owns it (services/grant-retry.ts):
//   the operator's side of a `grant_failed` or `revoke_failed` alert. Only a `failed` grant can
//   be retried (409 naming its status otherwise); an unknown id, or one that is not a UUID, is a
//   404 that says no more.
import type { Client } from '@temporalio/client';
import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Db } from '../../db/client.js';
import { retryHrEvent, RetryRefused } from '../../services/dispatch.js';
import { GrantRetryRefused, retryGrant } from '../../services/grant-retry.js';
import { requireScope } from '../auth.js';
import { bearer } from '../openapi.js';
import { ProblemError, problems, withFieldPrefix } from '../problem.js';
import { HR_EVENTS_PATH } from './hr-events.js';
import { IDENTITIES_PATH } from './identities.js';

export const GRANTS_PATH = '/api/v1/grants';

export interface RetryRoutesOptions {
  db: Db;
  publicUrl: string;
  taskQueue: string;
  /** Absent (no Temporal client): the routes answer 503. */
  temporal?: Client;
}

// A grant id that is not a UUID is a 404 like an unknown one (checked in the service), never a 400 that echoes it.
const params = withFieldPrefix(z.object({ id: z.string().min(1).max(256, 'must be at most 256 characters') }), ['params']);
const actorOf = (request: FastifyRequest) => `api:${request.principal?.name ?? 'unknown'}`;

const eventSchema = {
  tags: ['HR input'],
  summary: 'Retry an HR event whose step failed',
  description: 'The event goes back to `dispatched` and its person\'s workflow decides it afresh. Only a `failed` event can be retried (409 otherwise).',
  security: bearer('alerts:write'),
  params,
  response: {
    202: z.object({ id: z.string(), status: z.literal('dispatched'), statusUrl: z.string().describe('Where to follow the event (also the Location header).') }),
  },
};

const grantSchema = {
  tags: ['Alerts'],
  summary: 'Retry a failed grant now',
  description:
    'The workflow that owns the grant (the person\'s lifecycle for birthright access and leavers, the request\'s or elevation\'s own otherwise) tries it again now instead of at the end of its backoff; ' +
    'a failed revocation is retried the same way. Audited with who asked. Only a `failed` grant can be retried (409 naming its status otherwise). ' +
    'Its alert resolves itself once the grant is proven by read-back.',
  security: bearer('alerts:write'),
  params,
  response: {
    202: z.object({
      id: z.string(),
      grantStatus: z.literal('failed').describe('As it is when the retry is asked; follow it at statusUrl.'),
      statusUrl: z.string().describe("The person's grants, where this one's status shows (also the Location header)."),
    }),
  },
};

export const retryRoutes: FastifyPluginAsyncZod<RetryRoutesOptions> = async (app, opts) => {
  const publicUrl = opts.publicUrl.replace(/\/+$/, '');
  /** What a retry needs: Temporal to reach the workflow (checked before anything is changed). */
  const deps = () => {
    if (!opts.temporal) throw problems.unavailable('Temporal is not configured for this API process.');
    return { db: opts.db, temporal: opts.temporal, taskQueue: opts.taskQueue };
  };
  app.post(`${HR_EVENTS_PATH}/:id/retry`, { onRequest: requireScope('alerts:write'), schema: eventSchema }, async (request, reply) => {
    const { id } = request.params;
    try {
      await retryHrEvent(deps(), id, actorOf(request));
    } catch (err) {
      if (!(err instanceof RetryRefused)) throw err;
      if (err.code === 'not_found') throw problems.notFound(`No HR event with id ${id}.`);
      throw new ProblemError({
        status: 409,
        title: 'Event has not failed',
        type: 'urn:jml:problem:event-not-failed',
        detail: `The event is ${err.status}; only a failed event can be retried.`,
        extensions: { eventStatus: err.status },
      });
    }
    const statusUrl = `${publicUrl}${HR_EVENTS_PATH}/${encodeURIComponent(id)}`;
    return reply.code(202).header('location', statusUrl).send({ id, status: 'dispatched', statusUrl });
  });

  app.post(`${GRANTS_PATH}/:id/retry`, { onRequest: requireScope('alerts:write'), schema: grantSchema }, async (request, reply) => {
    let retried;
    try {
      retried = await retryGrant(deps(), request.params.id, actorOf(request));
    } catch (err) {
      if (!(err instanceof GrantRetryRefused)) throw err;
      if (err.code === 'not_found') throw problems.notFound('No such grant.');
      throw new ProblemError({
        status: 409,
        title: 'Grant has not failed',
        type: 'urn:jml:problem:grant-not-failed',
        detail: `The grant is ${err.status}; only a failed grant can be retried.`,
        extensions: { grantStatus: err.status },
      });
    }
    const statusUrl = `${publicUrl}${IDENTITIES_PATH}/${retried.identityId}/grants`;
    return reply.code(202).header('location', statusUrl).send({ id: retried.grantId, grantStatus: 'failed', statusUrl });
  });
};
