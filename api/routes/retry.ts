// POST /api/v1/hr/events/:id/retry (scope alerts:write): an operator retries an event whose
// step failed. The event goes back to `dispatched` (audited with who asked) and its person's
// workflow decides it afresh; 202 with where to follow it. Only a `failed` event can be
// retried: anything else is a 409 naming its status.
import type { Client } from '@temporalio/client';
import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Db } from '../../db/client.js';
import { retryHrEvent, RetryRefused } from '../../services/dispatch.js';
import { requireScope } from '../auth.js';
import { bearer } from '../openapi.js';
import { ProblemError, problems, withFieldPrefix } from '../problem.js';
import { HR_EVENTS_PATH } from './hr-events.js';

export interface RetryRoutesOptions {
  db: Db;
  publicUrl: string;
  taskQueue: string;
  /** Absent (no Temporal client): the route answers 503. */
  temporal?: Client;
}

const params = withFieldPrefix(z.object({ id: z.string().min(1).max(256, 'must be at most 256 characters') }), ['params']);
const actorOf = (request: FastifyRequest) => `api:${request.principal?.name ?? 'unknown'}`;

const schema = {
  tags: ['HR input'],
  summary: 'Retry an HR event whose step failed',
  description: 'The event goes back to `dispatched` and its person\'s workflow decides it afresh. Only a `failed` event can be retried (409 otherwise).',
  security: bearer('alerts:write'),
  params,
  response: {
    202: z.object({ id: z.string(), status: z.literal('dispatched'), statusUrl: z.string().describe('Where to follow the event (also the Location header).') }),
  },
};

export const retryRoutes: FastifyPluginAsyncZod<RetryRoutesOptions> = async (app, opts) => {
  const publicUrl = opts.publicUrl.replace(/\/+$/, '');
  app.post(`${HR_EVENTS_PATH}/:id/retry`, { onRequest: requireScope('alerts:write'), schema }, async (request, reply) => {
    const { id } = request.params;
    if (!opts.temporal) throw problems.unavailable('Temporal is not configured for this API process.');
    try {
      await retryHrEvent({ db: opts.db, temporal: opts.temporal, taskQueue: opts.taskQueue }, id, actorOf(request));
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
};
