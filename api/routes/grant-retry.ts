// POST /api/v1/grants/:id/retry (scope alerts:write): an operator retries a failed grant (or a
// failed revocation) now, instead of at the end of its backoff: the operator's side of a
// `grant_failed` or `revoke_failed` alert (services/grant-retry.ts). Audited with who asked;
// 202 with where to follow the grant (the person's grants). Only a `failed` grant can be
// retried: anything else is a 409 naming its status. An unknown id, or one that is not a
// UUID, is a 404 that says no more.
import type { Client } from '@temporalio/client';
import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Db } from '../../db/client.js';
import { GrantRetryRefused, retryGrant } from '../../services/grant-retry.js';
import { requireScope } from '../auth.js';
import { bearer } from '../openapi.js';
import { ProblemError, problems, withFieldPrefix } from '../problem.js';
import { IDENTITIES_PATH } from './identities.js';

export const GRANTS_PATH = '/api/v1/grants';

export interface GrantRetryRoutesOptions {
  db: Db;
  publicUrl: string;
  taskQueue: string;
  /** Absent (no Temporal client): the route answers 503. */
  temporal?: Client;
}

// Not a UUID is a 404 like an unknown id (checked in the service), never a 400 that echoes it.
const params = withFieldPrefix(z.object({ id: z.string().min(1).max(256, 'must be at most 256 characters') }), ['params']);
const actorOf = (request: FastifyRequest) => `api:${request.principal?.name ?? 'unknown'}`;

const schema = {
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

export const grantRetryRoutes: FastifyPluginAsyncZod<GrantRetryRoutesOptions> = async (app, opts) => {
  const publicUrl = opts.publicUrl.replace(/\/+$/, '');
  app.post(`${GRANTS_PATH}/:id/retry`, { onRequest: requireScope('alerts:write'), schema }, async (request, reply) => {
    if (!opts.temporal) throw problems.unavailable('Temporal is not configured for this API process.');
    let retried;
    try {
      retried = await retryGrant({ db: opts.db, temporal: opts.temporal, taskQueue: opts.taskQueue }, request.params.id, actorOf(request));
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
