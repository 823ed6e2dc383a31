// The API describes itself. Each route declares its params, query, body and responses as
// zod schemas (the same ones Fastify validates and serialises with, so documentation and
// validation have one source); @fastify/swagger gathers them into an OpenAPI 3.1 document,
// served at /api/openapi.json, and @fastify/swagger-ui serves a reference page at /api/docs
// from the assets bundled in its npm package: the page loads nothing from elsewhere. Both
// need no token: they describe the API, they hold no data.
//
// What a handler reads raw, in its own order (the HR webhook verifies its signature over the
// body bytes before it parses them, the CSV import takes text/csv, SCIM bulk answers its own
// errors), and an answer no serializer writes (the CSV import streams its JSON), is declared
// under `schema.documented`: it is in the document, and Fastify leaves it alone. Error
// answers are never serialised through a schema; each route's is documented as a problem
// (RFC 9457) unless the route documents its own (`documented.response.default`: SCIM).
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance, FastifySchema } from 'fastify';
import { jsonSchemaTransform, jsonSchemaTransformObject, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { identityAttributesSchema, identityAttributesShape } from '../domain/attributes.js';
import type { Scope } from '../domain/types.js';
import { PROBLEM_CONTENT_TYPE } from './problem.js';

export const OPENAPI_PATH = '/api/openapi.json';
export const DOCS_PATH = '/api/docs';

declare module 'fastify' {
  interface FastifySchema {
    /**
     * Documented in the OpenAPI document, never validated by Fastify: for a handler that
     * reads its input raw and checks it itself, in its own order.
     */
    documented?: { body?: z.ZodType; headers?: z.ZodType; response?: Partial<Record<number | 'default', z.ZodType>> };
  }
}

// domain/attributes.ts reads the attributes as sent (z.unknown(), so that names are checked
// before zod rebuilds the object), which zod would describe as any JSON. The document shows
// the shape they are parsed into instead.
const { $schema: _attributesDialect, ...attributesShape } = z.toJSONSchema(identityAttributesShape, { target: 'draft-2020-12', io: 'input', unrepresentable: 'any' });
z.globalRegistry.add(identityAttributesSchema, {
  ...attributesShape,
  description: 'Every attribute optional (an update sends what changed); names are 1..64 characters (a letter or _, then letters, digits, _ . -); unknown ones are kept as sent.',
});

/** `security` of a route that needs a bearer token with one of `scopes` (OpenAPI 3.1 lists them as roles). */
export function bearer(...scopes: Scope[]): Array<Record<string, Scope[]>> {
  return scopes.map((scope) => ({ bearer: [scope] }));
}

/** `security` of a route that takes any valid token. */
export const anyBearer = [{ bearer: [] }];

/** The body sendProblem writes (RFC 9457), as documentation: error answers are not serialised through it. */
const problemSchema = z.looseObject({
  type: z.string().describe('A URN naming the kind of problem (urn:jml:problem:...), or about:blank.'),
  title: z.string(),
  status: z.number().int(),
  detail: z.string().optional(),
  instance: z.string().optional().describe('The request path (never the query string).'),
  errors: z
    .array(z.object({ field: z.string().describe('The bad field, as `attributes.email` or `items[0].id`.'), message: z.string() }))
    .optional()
    .describe('One entry per bad field, for validation problems.'),
  requestId: z.string(),
});

const { $schema: _dialect, ...problemJsonSchema } = z.toJSONSchema(problemSchema, { target: 'draft-2020-12', io: 'output' });
const problemResponse = {
  description: 'A problem (RFC 9457): status, title, detail and, for bad input, each bad field.',
  content: { [PROBLEM_CONTENT_TYPE]: { schema: problemJsonSchema } },
};

type TransformInput = Parameters<typeof jsonSchemaTransform>[0];

/**
 * jsonSchemaTransform (zod to JSON Schema) over the route's schema with its `documented`
 * parts put where the document shows them, and the error answer every route can give.
 */
function transform(input: TransformInput): ReturnType<typeof jsonSchemaTransform> {
  const { documented = {}, ...schema } = (input.schema ?? {}) as Record<string, unknown> & { documented?: FastifySchema['documented'] };
  const { response: documentedResponse, ...documentedInput } = documented;
  const response = { ...(schema.response as object | undefined), ...documentedResponse };
  const result = jsonSchemaTransform({ ...input, schema: { ...schema, ...documentedInput, ...(Object.keys(response).length ? { response } : {}) } });
  const out = result.schema as { hide?: boolean; response?: Record<string, unknown> } | undefined;
  if (out && !out.hide) out.response = { default: problemResponse, ...out.response };
  return result;
}

/** Collects the routes registered after it: call before any route plugin. */
export async function registerOpenApi(app: FastifyInstance): Promise<void> {
  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'jml-engine API',
        version: '1',
        description:
          'Joiner / mover / leaver engine: HR input (signed webhook, SCIM 2.0 bulk, CSV), the people it manages with their grants and plans, ' +
          'the mass-leaver brake, health and metrics. Errors are RFC 9457 problem details (SCIM errors on the SCIM endpoints).',
      },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'A jml API token (`jml token create --scopes ...`). The scopes each operation needs are listed as roles.' },
        },
      },
      tags: [
        { name: 'HR input', description: 'Events from HR: signed webhook, CSV import, retries.' },
        { name: 'SCIM', description: 'SCIM 2.0 bulk input, as Microsoft Entra API-driven inbound provisioning sends it.' },
        { name: 'Identities', description: 'The people the engine manages, their grants, timeline and plan.' },
        { name: 'Batches', description: 'Feeds of HR events and the mass-leaver brake.' },
        { name: 'Access', description: 'The entitlement catalogue: what can be requested and what a request needs.' },
        { name: 'Operations', description: 'Health, metrics and this documentation.' },
      ],
    },
    transform,
    transformObject: jsonSchemaTransformObject,
  });
}

/** /api/openapi.json and the reference page /api/docs (its own asset routes are hidden from the document). */
export async function registerDocs(app: FastifyInstance): Promise<void> {
  app.withTypeProvider<ZodTypeProvider>().get(
    OPENAPI_PATH,
    {
      schema: {
        summary: 'This OpenAPI 3.1 document',
        tags: ['Operations'],
        response: { 200: z.looseObject({ openapi: z.string(), paths: z.record(z.string(), z.unknown()) }).describe('An OpenAPI 3.1 document.') },
      },
    },
    async () => app.swagger() as { openapi: string; paths: Record<string, unknown> },
  );
  await app.register(fastifySwaggerUi, {
    routePrefix: DOCS_PATH,
    uiConfig: { docExpansion: 'list', deepLinking: true },
    // Only what the page itself serves: its scripts, styles and the document.
    staticCSP: "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
  });
}
