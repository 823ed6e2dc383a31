// GET /api/openapi.json: an OpenAPI 3.1 document that a maintained validator
// (@seriousme/openapi-schema-validator) accepts, with every route the app has, each with its
// method, what it needs (a bearer token with which scopes, or none) and its answers. The
// document comes from the schemas the routes validate with, so what it says is enforced:
// checked here for a query limit, a path parameter and a body.
import { Validator } from '@seriousme/openapi-schema-validator';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiToken } from '../../api/auth.js';
import { DOCS_PATH, OPENAPI_PATH } from '../../api/openapi.js';
import { PROBLEM_TYPES } from '../../api/problem.js';
import type { DbHandle } from '../../db/client.js';
import { buildAppWithoutEngine } from '../support/api.js';
import { uniqueName } from '../support/env.js';

interface Operation {
  security?: Array<Record<string, string[]>>;
  parameters?: Array<{ in: string; name: string; schema: Record<string, unknown> }>;
  requestBody?: { content: Record<string, { schema: { required?: string[] } }> };
  responses: Record<string, { content?: Record<string, { schema?: unknown }> }>;
}
interface OpenApiDocument {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
}

let db: DbHandle['db'];
let stop: () => Promise<void>;
let app: FastifyInstance;
let doc: OpenApiDocument;

/**
 * Every route of the app, as Fastify's router prints it (a tree: each line one path segment,
 * indented four characters a level, with the methods of the routes that end there).
 */
function routesOf(app: FastifyInstance): Array<{ method: string; url: string }> {
  const routes: Array<{ method: string; url: string }> = [];
  const segments: string[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const match = /^([│ ]*)[├└]── (.*?)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (!match) continue;
    segments.length = match[1]!.length / 4;
    segments.push(match[2]!);
    for (const method of match[3]?.split(', ') ?? []) routes.push({ method, url: segments.join('') });
  }
  return routes;
}

beforeAll(async () => {
  ({ app, db, stop } = await buildAppWithoutEngine('openapi'));
  const response = await app.inject({ method: 'GET', url: OPENAPI_PATH });
  expect(response.statusCode).toBe(200);
  expect(response.headers['content-type']).toMatch(/^application\/json/);
  doc = response.json<OpenApiDocument>();
});

afterAll(async () => {
  await stop?.();
});

describe('the OpenAPI document', () => {
  it('is valid OpenAPI 3.1', async () => {
    const validator = new Validator();
    const result = await validator.validate(doc as unknown as Parameters<Validator['validate']>[0]);
    expect(result.errors).toBeUndefined();
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
    expect(doc.openapi).toBe('3.1.0');
  });

  it('has every route of the app with its method, and nothing else', () => {
    // HEAD is Fastify's own twin of each GET; the reference page's own routes (its HTML,
    // scripts, the copy of this document it loads) and the approval page emailed links open
    // (HTML for people, answering in HTML) are not part of the API.
    const routes = routesOf(app)
      .filter((r) => r.method !== 'HEAD' && r.url !== DOCS_PATH && !r.url.startsWith(`${DOCS_PATH}/`) && !r.url.startsWith('/approvals/'))
      .map((r) => `${r.method} ${r.url.replace(/:(\w+)/g, '{$1}')}`)
      .sort();
    // The parse found the routes (a broken parse must not pass as "nothing missing").
    expect(routes).toEqual(expect.arrayContaining(['POST /api/v1/hr/events', 'GET /api/v1/identities/{id}/grants', 'POST /api/v1/scim/v2/Bulk', 'GET /api/health', `GET ${OPENAPI_PATH}`]));
    expect(routes.length).toBeGreaterThanOrEqual(22);
    const documented = Object.entries(doc.paths)
      .flatMap(([path, operations]) => Object.keys(operations).map((method) => `${method.toUpperCase()} ${path}`))
      .sort();
    expect(documented).toEqual(routes);
  });

  it('documents each answer: the success with its schema, and the errors', () => {
    for (const [path, operations] of Object.entries(doc.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        const where = `${method.toUpperCase()} ${path}`;
        const success = Object.entries(operation.responses).filter(([status]) => status.startsWith('2'));
        expect(success.length, where).toBeGreaterThan(0);
        for (const [, answer] of success) expect(Object.values(answer.content ?? {})[0]?.schema, where).toBeDefined();
        const errorTypes = Object.keys(operation.responses.default?.content ?? {});
        expect(errorTypes, where).toEqual([path.startsWith('/api/v1/scim/') ? 'application/scim+json' : 'application/problem+json']);
      }
    }
  });

  it('says which token each route needs, and that health, metrics, the webhook and the document need none', () => {
    const op = (method: string, path: string) => doc.paths[path]![method]!;
    expect(op('get', '/api/v1/identities/{id}/grants').security).toEqual([{ bearer: ['identities:read'] }]);
    expect(op('post', '/api/v1/hr/batches/{id}/discard').security).toEqual([{ bearer: ['admin'] }]);
    expect(op('post', '/api/v1/scim/v2/Bulk').security).toEqual([{ bearer: ['events:write'] }]);
    for (const [method, path] of [['get', '/api/health'], ['get', '/metrics'], ['post', '/api/v1/hr/events'], ['get', OPENAPI_PATH]] as const) {
      expect(op(method, path).security, `${method} ${path}`).toBeUndefined();
    }
  });

  it('documents the input handlers read raw: the signed webhook, the CSV import and SCIM bulk', () => {
    const webhook = doc.paths['/api/v1/hr/events']!.post!;
    expect(webhook.parameters?.filter((p) => p.in === 'header').map((p) => p.name)).toEqual(['webhook-id', 'webhook-timestamp', 'webhook-signature']);
    expect(webhook.requestBody?.content['application/json']?.schema.required).toEqual(['type', 'employeeId']);
    expect(JSON.stringify(webhook.requestBody)).toContain('givenName');
    expect(Object.keys(doc.paths['/api/v1/hr/imports']!.post!.requestBody!.content)).toEqual(['text/csv', 'application/csv']);
    expect(Object.keys(doc.paths['/api/v1/scim/v2/Bulk']!.post!.requestBody!.content)).toEqual(['application/scim+json', 'application/json']);
  });
});

describe('what the document says is what the API enforces', () => {
  let token: string;
  beforeAll(async () => {
    ({ token } = await createApiToken(db, { name: uniqueName('openapi-admin'), scopes: ['admin'] }));
  });
  const call = (method: 'GET' | 'POST', url: string, payload?: unknown) =>
    app.inject({ method, url, headers: { authorization: `Bearer ${token}` }, ...(payload === undefined ? {} : { payload: payload as object }) });

  it('refuses a limit above the documented maximum, naming it', async () => {
    const limit = doc.paths['/api/v1/identities']!.get!.parameters!.find((p) => p.name === 'limit')!;
    expect(limit.schema).toMatchObject({ type: 'integer', minimum: 1, maximum: 200 });
    expect((await call('GET', '/api/v1/identities?limit=200')).statusCode).toBe(200);
    const over = await call('GET', '/api/v1/identities?limit=201');
    expect(over.statusCode).toBe(400);
    expect(over.json()).toMatchObject({ type: PROBLEM_TYPES.validation, errors: [{ field: 'limit', message: 'must be at most 200' }] });
  });

  it('refuses a path parameter that is not the documented UUID, naming it', async () => {
    const id = doc.paths['/api/v1/hr/batches/{id}']!.get!.parameters!.find((p) => p.name === 'id')!;
    expect(id.schema).toMatchObject({ type: 'string', format: 'uuid' });
    const response = await call('GET', '/api/v1/hr/batches/not-a-uuid');
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ status: 400, instance: '/api/v1/hr/batches/not-a-uuid', errors: [{ field: 'id', message: 'must be a UUID' }] });
  });

  it('refuses a body without the documented required member, naming it', async () => {
    expect(doc.paths['/api/v1/hr/batches/{id}/discard']!.post!.requestBody!.content['application/json']!.schema.required).toEqual(['reason']);
    const response = await call('POST', '/api/v1/hr/batches/00000000-0000-4000-8000-000000000000/discard', {});
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ errors: [{ field: 'reason', message: 'is required' }] });
  });

  it('names the bad fields of the routes that prefix them as before: params.id, query.dryRun', async () => {
    const retry = await call('POST', `/api/v1/hr/events/${'x'.repeat(257)}/retry`);
    expect(retry.statusCode).toBe(400);
    expect(retry.json()).toMatchObject({ type: PROBLEM_TYPES.validation, errors: [{ field: 'params.id', message: 'must be at most 256 characters' }] });
    const csv = await app.inject({
      method: 'POST',
      url: '/api/v1/hr/imports?dryRun=maybe',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'text/csv' },
      payload: 'WorkerID\n',
    });
    expect(csv.statusCode).toBe(400);
    expect(csv.json()).toMatchObject({ type: PROBLEM_TYPES.validation, errors: [{ field: 'query.dryRun', message: 'must be true or false' }] });
  });

  it('checks the token before the input: a bad request without one is a 401', async () => {
    const response = await app.inject({ method: 'GET', url: '/api/v1/identities?limit=201' });
    expect(response.statusCode).toBe(401);
  });
});
