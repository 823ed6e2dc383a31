// Reconcile runs (activities/reconcile.ts), for the people who watch drift:
//   GET /api/v1/reconcile/runs   alerts:write or identities:read   newest first, `target` filter, cursor pagination
// Each run shows its target, when it started and finished, its counts per kind (drift_missing,
// drift_unexpected, repaired, ...) and how long it took, or the error that stopped it. The
// findings themselves are alerts (GET /api/v1/alerts?kind=drift_missing).
import { and, desc, eq, sql } from 'drizzle-orm';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Db } from '../../db/client.js';
import { reconcileRuns } from '../../db/schema.js';
import { requireScope } from '../auth.js';
import { cursorText, decodeCursor, encodeCursor } from '../cursor.js';
import { bearer } from '../openapi.js';
import { listCursor, listLimit } from './access-requests.js';

export interface ReconcileRoutesOptions {
  db: Db;
}

export const RECONCILE_RUNS_PATH = '/api/v1/reconcile/runs';

const listQuery = z.object({
  limit: listLimit,
  cursor: listCursor,
  target: z
    .string('must be a string')
    .regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, 'must be a target id')
    .optional()
    .describe('Only this target’s runs.'),
});

const at = z.iso.datetime({ offset: true });
const runShape = z.object({
  id: z.guid(),
  target: z.string(),
  repair: z.boolean().describe('Whether it repaired what it found (--repair, or the target’s autoRemediate).'),
  startedAt: at,
  finishedAt: at.nullable().describe('null while it runs.'),
  counts: z.record(z.string(), z.number()).describe('accounts, groups, drift_missing, drift_unexpected, repaired, repairFailed, resolved, durationMs.'),
  error: z.string().nullable().describe('Why the run could not finish (the target did not answer).'),
});
const listSchema = z.object({
  items: z.array(runShape),
  nextCursor: z.string().nullable().describe('Pass as `cursor` for the next page; null on the last page.'),
});

/** A run's position in the list: its start as Postgres writes it (microseconds, unlike a Date) and its id. */
const cursorShape = z.object({ at: cursorText(64), id: z.guid() });

export const reconcileRoutes: FastifyPluginAsyncZod<ReconcileRoutesOptions> = async (app, { db }) => {
  const readers = ['alerts:write', 'identities:read'] as const;
  const schema = {
    tags: ['Alerts'],
    summary: 'List reconcile runs, newest first',
    description: 'What each reconcile found per target, how long it took, or why it failed. The drift it found is in the alerts.',
    security: bearer(...readers),
    querystring: listQuery,
    response: { 200: listSchema },
  };
  app.get(RECONCILE_RUNS_PATH, { onRequest: requireScope(...readers), schema }, async (request) => {
    const { limit, cursor, target } = request.query;
    const after = cursor === undefined ? null : decodeCursor(cursor, cursorShape);
    const atText = sql<string>`${reconcileRuns.startedAt}::text`;
    const rows = await db
      .select({ run: reconcileRuns, atText })
      .from(reconcileRuns)
      .where(
        and(
          target ? eq(reconcileRuns.target, target) : undefined,
          after ? sql`(${reconcileRuns.startedAt}, ${reconcileRuns.id}) < (${after.at}::timestamptz, ${after.id}::uuid)` : undefined,
        ),
      )
      .orderBy(desc(reconcileRuns.startedAt), desc(reconcileRuns.id))
      .limit(limit + 1);
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    return {
      items: page.map(({ run }) => ({
        id: run.id,
        target: run.target,
        repair: run.repair,
        startedAt: run.startedAt.toISOString(),
        finishedAt: run.finishedAt?.toISOString() ?? null,
        counts: run.counts,
        error: run.error,
      })),
      nextCursor: rows.length > limit && last ? encodeCursor({ at: last.atText, id: last.run.id }) : null,
    };
  });
};
