// POST /api/v1/hr/imports checks the bearer token before it reads the body (onRequest), over
// a real socket: a request without a valid token is answered 401 (or 403 without the scope)
// even though its 20 MiB body never arrives, and a declared length above the limit is a 401,
// not a 413, so nobody learns anything about the route or spends its memory without a token.
import { request as httpRequest, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiToken } from '../../api/auth.js';
import { IMPORT_BODY_LIMIT, IMPORTS_PATH } from '../../api/routes/imports.js';
import type { DbHandle } from '../../db/client.js';
import { buildAppWithoutEngine } from '../support/api.js';
import { uniqueName } from '../support/env.js';

/** Long enough for any answer on a busy machine; a route that waits for the body never answers. */
const ANSWER_DEADLINE_MS = 15_000;

let db: DbHandle['db'];
let stop: () => Promise<void>;
let app: FastifyInstance;
let port: number;
let readerToken: string;

beforeAll(async () => {
  ({ app, db, stop } = await buildAppWithoutEngine('imports-auth'));
  await app.listen({ host: '127.0.0.1', port: 0 });
  port = (app.server.address() as AddressInfo).port;
  ({ token: readerToken } = await createApiToken(db, { name: uniqueName('reader'), scopes: ['identities:read'] }));
});

afterAll(async () => {
  await stop?.();
});

interface Answer {
  status: number;
  headers: IncomingMessage['headers'];
  body: Record<string, unknown>;
}

/**
 * Declares a body of `declaredLength` bytes, sends only the first 60 KiB and never ends
 * it (as a slow or hostile client would): the answer must come from the headers alone.
 */
function postUnfinishedBody(headers: Record<string, string>, declaredLength: number): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: '127.0.0.1',
      port,
      method: 'POST',
      path: IMPORTS_PATH,
      headers: { 'content-type': 'text/csv', 'content-length': String(declaredLength), ...headers },
    });
    const deadline = setTimeout(() => {
      req.destroy();
      reject(new Error(`no answer within ${ANSWER_DEADLINE_MS} ms: the route waits for a body that never ends`));
    }, ANSWER_DEADLINE_MS);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        clearTimeout(deadline);
        req.destroy();
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown> });
      });
    });
    req.on('error', (err) => {
      clearTimeout(deadline);
      reject(err);
    });
    req.write(`WorkerID,WorkerStatus,FirstName,LastName\n${'X,Inactive,A,B\n'.repeat(4_096)}`);
  });
}

describe('POST /api/v1/hr/imports authenticates before reading the body', () => {
  const almostTheLimit = IMPORT_BODY_LIMIT - 1;

  it('answers 401 to a request without a token whose body never ends', async () => {
    const answer = await postUnfinishedBody({}, almostTheLimit);
    expect(answer.status).toBe(401);
    expect(answer.headers['www-authenticate']).toMatch(/^Bearer/);
    expect(answer.body).toMatchObject({ status: 401 });
  });

  it('answers 401 to an unknown token and 403 to a token without events:write, body unread', async () => {
    const unknown = await postUnfinishedBody({ authorization: `Bearer jml_${'A'.repeat(43)}` }, almostTheLimit);
    expect(unknown.status).toBe(401);
    const reader = await postUnfinishedBody({ authorization: `Bearer ${readerToken}` }, almostTheLimit);
    expect(reader.status).toBe(403);
  });

  it('answers 401, not 413, to a declared length above the limit without a token', async () => {
    const answer = await postUnfinishedBody({}, IMPORT_BODY_LIMIT + 1);
    expect(answer.status).toBe(401);
  });
});
