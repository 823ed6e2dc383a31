// POST /api/v1/hr/imports (scope events:write): a full HR extract as `text/csv`, imported
// like `jml import` (services/csv-import.ts). Query: `dryRun=true` plans and changes nothing
// (200 with the plan per person and entitlement); `fullSnapshot=true` terminates known
// people absent from the file, behind the mass-leaver brake. Otherwise 202 with counts per
// kind, the batch (held or accepted) and the rows that were refused, each with its line.
// A file that cannot be imported at all is a 400 problem naming what is wrong: a header
// without the id or status column, a column named twice (`header.<name>`), bytes that are
// not UTF-8, or a limit met (`columns`, `line`, `rows`: domain/csv-import.ts CSV_LIMITS);
// a body past IMPORT_BODY_LIMIT is a 413. A bad cell is a refused row, never a 500; a file
// whose every row is refused is a 422 naming each (`line <n>.<column>`), and stores nothing.
import { Readable } from 'node:stream';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { FastifyError } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { CSV_LIMITS, csvLimitProblems, CsvFormatError } from '../../domain/csv-import.js';
import { HR_EVENT_TYPES, IDENTITY_STATUSES } from '../../domain/types.js';
import { importCsv, type CsvImportDeps } from '../../services/csv-import.js';
import { requireScope } from '../auth.js';
import { bearer } from '../openapi.js';
import { errorHandler, PROBLEM_TYPES, ProblemError, problems, sendProblem, withFieldPrefix } from '../problem.js';
import { BATCHES_PATH } from './batches.js';
import { refusedRowFields, reportRejectedInput } from '../../services/input-rejections.js';

export const IMPORTS_PATH = '/api/v1/hr/imports';
/** A full extract of a large company; the rest of the API keeps its 1 MiB limit. */
export const IMPORT_BODY_LIMIT = CSV_LIMITS.fileBytes;

export interface ImportRoutesOptions extends CsvImportDeps {
  publicUrl: string;
}

const flag = z.stringbool({ error: 'must be true or false' }).default(false);
const importQuery = withFieldPrefix(
  z.object({
    dryRun: flag.describe('true: plan and change nothing (200 with the plan per person).'),
    fullSnapshot: flag.describe('true: the file is everyone; known people absent from it are terminated, behind the mass-leaver brake.'),
  }),
  ['query'],
);

/** services/csv-import.ts CsvImportResult as sent, with the batch's URL. Streamed: documentation only. */
const birthrightGrant = z.object({ entitlementId: z.string(), rules: z.array(z.string()) });
const importResultSchema = z.object({
  dryRun: z.boolean(),
  fullSnapshot: z.boolean(),
  rows: z.number().int(),
  counts: z.record(z.enum(HR_EVENT_TYPES), z.number().int()).describe('Planned events by type.'),
  stored: z.number().int().describe('Of those, how many were new to the inbox (a re-import of the same file stores none).'),
  skippedInactive: z.number().int(),
  unchanged: z.number().int(),
  errors: z.array(z.object({ line: z.number().int(), employeeId: z.string().optional(), message: z.string(), columns: z.array(z.string()).optional() })).describe('Refused rows, each with its line.'),
  warnings: z.array(z.string()),
  batchId: z.guid().nullable(),
  batchStatus: z.enum(['accepted', 'held']).nullable(),
  batchUrl: z.string().nullable(),
  plan: z
    .array(
      z.object({
        employeeId: z.string(),
        line: z.number().int().nullable(),
        statusBefore: z.enum(IDENTITY_STATUSES).nullable(),
        events: z.array(z.object({ type: z.enum(HR_EVENT_TYPES), effectiveAt: z.string(), attributes: z.record(z.string(), z.unknown()) })),
        grant: z.array(birthrightGrant),
        revoke: z.array(birthrightGrant),
      }),
    )
    .optional()
    .describe('Per person, for a dry run only.'),
  brake: z.object({ terminations: z.number().int(), activeIdentities: z.number().int(), wouldHold: z.boolean() }).optional().describe('For a dry run: whether the mass-leaver brake would hold the terminations.'),
});

const schema = {
  tags: ['HR input'],
  summary: 'Import a full HR extract (CSV)',
  description:
    'Imported like `jml import`. A file that cannot be imported at all is a 400 naming what is wrong; a bad cell is a refused row; a file whose every row is refused is a 422. ' +
    `At most ${IMPORT_BODY_LIMIT / 1024 / 1024} MiB (413).`,
  security: bearer('events:write'),
  querystring: importQuery,
  consumes: ['text/csv', 'application/csv'],
  documented: {
    // Bytes the import reads itself (strict UTF-8, then CSV).
    body: z.string().describe('The extract: a header row naming the columns (see `csv` in the configuration), then one row per person.'),
    // Streamed as JSON text in pieces (jsonInPieces), so not through a serializer.
    response: { 200: importResultSchema.describe('Dry run: the plan.'), 202: importResultSchema.describe('Imported.') },
  },
};

export const importRoutes: FastifyPluginAsyncZod<ImportRoutesOptions> = async (app, opts) => {
  const publicUrl = opts.publicUrl.replace(/\/+$/, '');

  // Encapsulated: only this plugin reads CSV bodies, and only here are they this large.
  app.addContentTypeParser(['text/csv', 'application/csv'], { parseAs: 'buffer', bodyLimit: IMPORT_BODY_LIMIT }, (_request, body, done) => done(null, body));
  // The shared handler names the 1 MiB limit; this route has its own.
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return sendProblem(reply, {
        status: 413,
        title: 'Payload too large',
        type: PROBLEM_TYPES.tooLarge,
        detail: `The CSV exceeds the ${IMPORT_BODY_LIMIT / 1024 / 1024} MiB limit.`,
        errors: [csvLimitProblems.fileBytes()],
      });
    }
    if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      return sendProblem(reply, { status: 415, title: 'Unsupported media type', type: PROBLEM_TYPES.unsupportedMediaType, detail: 'Send the extract as text/csv.' });
    }
    return errorHandler(error, request, reply);
  });

  // The token is checked in onRequest, before a byte of the (up to 20 MiB) body is read.
  app.post(IMPORTS_PATH, { onRequest: requireScope('events:write'), bodyLimit: IMPORT_BODY_LIMIT, schema }, async (request, reply) => {
    const query = request.query;
    if (!Buffer.isBuffer(request.body)) {
      return sendProblem(reply, { status: 415, title: 'Unsupported media type', type: PROBLEM_TYPES.unsupportedMediaType, detail: 'Send the extract as text/csv.' });
    }
    let result;
    try {
      result = await importCsv(opts, request.body, { actor: `api:${request.principal?.name ?? 'unknown'}`, dryRun: query.dryRun, fullSnapshot: query.fullSnapshot });
    } catch (err) {
      if (err instanceof CsvFormatError) {
        // A dry run is the sender checking a file: nothing was sent to be applied, nothing to alert on.
        if (!query.dryRun) void reportRejectedInput(opts.db, request.log, 'csv', err.problems.map((p) => ({ field: p.field, reason: p.message })));
        throw problems.validation(err.problems, 'The CSV cannot be imported.');
      }
      throw err;
    }
    // Refused rows (all of them: a 422 below; some: listed in the 202), one alert per column.
    if (result.errors.length && !query.dryRun) void reportRejectedInput(opts.db, request.log, 'csv', refusedRowFields(result.errors));
    // Every row refused: nothing was (or would be) imported, which is the sender's error to
    // fix. A file with some good rows is imported, its refused rows listed in the answer.
    if (result.rows > 0 && new Set(result.errors.map((e) => e.line)).size >= result.rows) {
      throw new ProblemError({
        status: 422,
        title: 'Every row was refused',
        type: PROBLEM_TYPES.validation,
        detail: 'No row of the CSV can be imported; nothing was stored.',
        errors: result.errors.flatMap((e) => (e.columns ?? ['(row)']).map((column) => ({ field: `line ${e.line}.${column}`, message: e.message }))),
      });
    }
    const batchUrl = result.batchId ? `${publicUrl}${BATCHES_PATH}/${result.batchId}` : null;
    return reply
      .code(query.dryRun ? 200 : 202)
      .type('application/json; charset=utf-8')
      .send(Readable.from(jsonInPieces({ ...result, batchUrl })));
  });
};

/** Array items serialised between two turns of the event loop. */
const ITEMS_PER_PIECE = 500;

/**
 * An answer as JSON text in pieces, its arrays (the plan, the refused rows) a few hundred
 * items at a time with a turn of the event loop between: one JSON.stringify of the dry run
 * of a 100,000-person file would hold the loop the API shares with the workers for most of
 * a second.
 */
async function* jsonInPieces(body: Record<string, unknown>): AsyncGenerator<string> {
  let first = true;
  for (const [key, value] of Object.entries(body)) {
    if (value === undefined) continue;
    yield `${first ? '{' : ','}${JSON.stringify(key)}:`;
    first = false;
    if (!Array.isArray(value)) {
      yield JSON.stringify(value);
      continue;
    }
    for (let i = 0; i < value.length; i += ITEMS_PER_PIECE) {
      yield (i === 0 ? '[' : ',') + value.slice(i, i + ITEMS_PER_PIECE).map((item: unknown) => JSON.stringify(item) ?? 'null').join(',');
      await nextTurn();
    }
    yield value.length ? ']' : '[]';
  }
  yield first ? '{}' : '}';
}
