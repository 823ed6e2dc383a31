// GET /api/v1/identities/:id/plan (scope identities:read): the person's pending events and
// scheduled steps, when each is due, and what each will grant or revoke, with the rule.
import type { Client } from '@temporalio/client';
import { eq } from 'drizzle-orm';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Db } from '../../db/client.js';
import { identities } from '../../db/schema.js';
import type { JmlConfig } from '../../domain/config.js';
import { IDENTITY_STATUSES } from '../../domain/types.js';
import { explainIdentity } from '../../services/explain.js';
import { requireScope } from '../auth.js';
import { bearer } from '../openapi.js';
import { problems } from '../problem.js';

export interface PlanRoutesOptions {
  db: Db;
  config: JmlConfig;
  /** Absent (no Temporal client): the route answers 503. */
  temporal?: Client;
}

const idParams = z.object({ id: z.guid('must be a UUID') });

/** services/explain.ts IdentityPlan, as sent. */
const planSchema = z.object({
  employeeId: z.string(),
  status: z.enum([...IDENTITY_STATUSES, 'unknown']),
  workflow: z.boolean().describe('False when no lifecycle workflow runs for the person (nothing pending).'),
  steps: z.array(
    z.object({
      dueAt: z.string().describe('When the step is due (ISO 8601).'),
      step: z.string(),
      eventId: z.string().optional(),
      effect: z.string(),
      grants: z.array(z.object({ entitlementId: z.string(), rules: z.array(z.string()) })),
      revokes: z.array(z.object({ entitlementId: z.string(), why: z.string() })),
    }),
  ),
});

export const planRoutes: FastifyPluginAsyncZod<PlanRoutesOptions> = async (app, { db, config, temporal }) => {
  // preValidation: the token is checked before the route's schemas look at the input.
  app.addHook('preValidation', requireScope('identities:read'));
  const schema = {
    tags: ['Identities'],
    summary: "An identity's pending steps: when each is due and what it grants or revokes, with the rule",
    security: bearer('identities:read'),
    params: idParams,
    response: { 200: planSchema },
  };
  app.get('/api/v1/identities/:id/plan', { schema }, async (request) => {
    const { id } = request.params;
    const [identity] = await db.select({ employeeId: identities.employeeId }).from(identities).where(eq(identities.id, id));
    if (!identity) throw problems.notFound(`No identity with id ${id}.`);
    if (!temporal) throw problems.unavailable('Temporal is not configured for this API process.');
    return explainIdentity({ db, temporal, config }, identity.employeeId);
  });
};
