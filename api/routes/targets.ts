// The kill switch, by API: GET /api/v1/targets (each target with its switch), and
// POST /api/v1/targets/{id}/pause and /resume (scope admin, audited). While paused, a
// target's grants and revocations wait in order; on resume they drain (leavers first).
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Db } from '../../db/client.js';
import { textProblem } from '../../domain/attributes.js';
import type { JmlConfig } from '../../domain/config.js';
import { setTargetPaused, targetControlsOf } from '../../services/target-controls.js';
import { requireScope } from '../auth.js';
import { requesterOf } from './access-requests.js';
import { bearer } from '../openapi.js';
import { problems, withFieldPrefix } from '../problem.js';

export const TARGETS_PATH = '/api/v1/targets';

const controlSchema = z.object({
  id: z.string(),
  type: z.string(),
  paused: z.boolean().describe('While true nothing calls the target: its grants and revocations wait, in order.'),
  reason: z.string().nullable(),
  changedBy: z.string().nullable(),
  changedAt: z.string().nullable(),
});
const params = withFieldPrefix(z.object({ id: z.string().min(1).max(64) }), ['params']);
const body = withFieldPrefix(
  z
    .object({ reason: z.string().max(1_000).optional() })
    .strict()
    .nullable()
    .superRefine((b, ctx) => {
      const problem = b?.reason === undefined ? null : textProblem(b.reason, 1_000);
      if (problem) ctx.addIssue({ code: 'custom', path: ['reason'], message: problem });
    }),
  ['body'],
);

export const targetRoutes: FastifyPluginAsyncZod<{ db: Db; config: JmlConfig }> = async (app, { db, config }) => {
  const known = (id: string) => {
    const target = config.targets.find((t) => t.id === id);
    if (!target) throw problems.notFound('No target has this id.');
    return target;
  };
  const answer = async (ids: string[]) => {
    const controls = await targetControlsOf(db, ids);
    return controls.map((c) => ({ id: c.targetId, type: known(c.targetId).type, paused: c.paused, reason: c.reason, changedBy: c.changedBy, changedAt: c.changedAt }));
  };

  app.get(
    TARGETS_PATH,
    { onRequest: requireScope('identities:read', 'alerts:write'), schema: { tags: ['Targets'], summary: 'The targets and their kill switches', security: bearer('identities:read', 'alerts:write'), response: { 200: z.object({ items: z.array(controlSchema), nextCursor: z.null() }) } } },
    async () => ({ items: await answer(config.targets.map((t) => t.id)), nextCursor: null }),
  );
  for (const action of ['pause', 'resume'] as const) {
    app.post(
      `${TARGETS_PATH}/:id/${action}`,
      {
        onRequest: requireScope('admin'),
        schema: {
          tags: ['Targets'],
          summary: action === 'pause' ? 'Pause a target: nothing calls it; its work waits, in order' : 'Resume a target: what waited drains, leavers first',
          security: bearer('admin'),
          params,
          body,
          response: { 200: controlSchema },
        },
      },
      async (request) => {
        const { id } = request.params;
        known(id);
        await setTargetPaused(db, id, action === 'pause', { actor: requesterOf(request.principal!), reason: request.body?.reason ?? null });
        const [control] = await answer([id]);
        return control!;
      },
    );
  }
};
