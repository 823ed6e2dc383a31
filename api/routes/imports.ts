// POST /api/v1/hr/imports (scope events:write): a full HR extract as `text/csv`, imported
// like `jml import` (services/csv-import.ts). Query: `dryRun=true` plans and changes nothing
// (200 with the plan per person and entitlement); `fullSnapshot=true` terminates known
// people absent from the file, behind the mass-leaver brake. Otherwise 202 with counts per
// kind, the batch (held or accepted) and the rows that were refused, each with its line.
// A file whose header lacks the id or status column is a 400.
import type { FastifyError, FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { CsvFormatError } from '../../domain/csv-import.js';
import { importCsv, type CsvImportDeps } from '../../services/csv-import.js';
import { requireScope } from '../auth.js';
import { errorHandler, parseOrThrow, PROBLEM_TYPES, problems, sendProblem } from '../problem.js';
import { BATCHES_PATH } from './batches.js';

export const IMPORTS_PATH = '/api/v1/hr/imports';
/** A full extract of a large company; the rest of the API keeps its 1 MiB limit. */
export const IMPORT_BODY_LIMIT = 20 * 1024 * 1024;

export interface ImportRoutesOptions extends CsvImportDeps {
  publicUrl: string;
}

const flag = z.stringbool({ error: 'must be true or false' }).default(false);
const importQuery = z.object({ dryRun: flag, fullSnapshot: flag });

export const importRoutes: FastifyPluginAsync<ImportRoutesOptions> = async (app, opts) => {
  const publicUrl = opts.publicUrl.replace(/\/+$/, '');

  // Encapsulated: only this plugin reads CSV bodies, and only here are they this large.
  app.addContentTypeParser(['text/csv', 'application/csv'], { parseAs: 'buffer', bodyLimit: IMPORT_BODY_LIMIT }, (_request, body, done) => done(null, body));
  // The shared handler names the 1 MiB limit; this route has its own.
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return sendProblem(reply, { status: 413, title: 'Payload too large', type: PROBLEM_TYPES.tooLarge, detail: `The CSV exceeds the ${IMPORT_BODY_LIMIT / 1024 / 1024} MiB limit.` });
    }
    if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      return sendProblem(reply, { status: 415, title: 'Unsupported media type', type: PROBLEM_TYPES.unsupportedMediaType, detail: 'Send the extract as text/csv.' });
    }
    return errorHandler(error, request, reply);
  });

  // The token is checked in onRequest, before a byte of the (up to 20 MiB) body is read.
  app.post(IMPORTS_PATH, { onRequest: requireScope('events:write'), bodyLimit: IMPORT_BODY_LIMIT }, async (request, reply) => {
    const query = parseOrThrow(importQuery, request.query, ['query']);
    if (!Buffer.isBuffer(request.body)) {
      return sendProblem(reply, { status: 415, title: 'Unsupported media type', type: PROBLEM_TYPES.unsupportedMediaType, detail: 'Send the extract as text/csv.' });
    }
    let result;
    try {
      result = await importCsv(opts, request.body, { actor: `api:${request.principal?.name ?? 'unknown'}`, dryRun: query.dryRun, fullSnapshot: query.fullSnapshot });
    } catch (err) {
      if (err instanceof CsvFormatError) throw problems.validation(err.problems.map((message) => ({ field: '(body)', message })), 'The CSV cannot be imported.');
      throw err;
    }
    const batchUrl = result.batchId ? `${publicUrl}${BATCHES_PATH}/${result.batchId}` : null;
    return reply.code(query.dryRun ? 200 : 202).send({ ...result, batchUrl });
  });
};
