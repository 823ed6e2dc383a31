// GET /api/v1/identities/:id/plan (scope identities:read): the person's pending events and
// scheduled steps, when each is due, and what each will grant or revoke, with the rule.
import type { Client } from '@temporalio/client';
import { eq } from 'drizzle-orm';
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import type { Db } from '../../db/client.js';
import { identities } from '../../db/schema.js';
import type { JmlConfig } from '../../domain/config.js';
import { explainIdentity } from '../../services/explain.js';
import { requireScope } from '../auth.js';
import { parseOrThrow, problems } from '../problem.js';

export interface PlanRoutesOptions {
  db: Db;
  config: JmlConfig;
  /** Absent (no Temporal client): the route answers 503. */
  temporal?: Client;
}

const idParams = z.object({ id: z.guid('must be a UUID') });

export const planRoutes: FastifyPluginAsync<PlanRoutesOptions> = async (app, { db, config, temporal }) => {
  app.addHook('preHandler', requireScope('identities:read'));
  app.get('/api/v1/identities/:id/plan', async (request) => {
    const { id } = parseOrThrow(idParams, request.params);
    const [identity] = await db.select({ employeeId: identities.employeeId }).from(identities).where(eq(identities.id, id));
    if (!identity) throw problems.notFound(`No identity with id ${id}.`);
    if (!temporal) throw problems.unavailable('Temporal is not configured for this API process.');
    return explainIdentity({ db, temporal, config }, identity.employeeId);
  });
};
