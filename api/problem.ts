// RFC 9457 problem details: every error the API answers is `application/problem+json`
// with type, title, status, detail and instance; validation problems add `errors`, one
// entry per bad field. The error handler below turns anything thrown into one of these,
// and never echoes internal messages (a drizzle error message carries the query params,
// i.e. personal data) into the answer or the log.
import type { Socket } from 'node:net';
import type { FastifyError, FastifyReply, FastifyRequest, FastifySchemaCompiler } from 'fastify';
import type { z } from 'zod';
import { formatPath } from '../domain/config.js';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';
/** Problem type URIs are URNs: stable identifiers, not links (RFC 9457 section 3.1.1). */
const typeUri = (slug: string) => `urn:jml:problem:${slug}`;

export const PROBLEM_TYPES = {
  validation: typeUri('validation-error'),
  malformedJson: typeUri('malformed-json'),
  unauthorized: typeUri('unauthorized'),
  forbidden: typeUri('forbidden'),
  badSignature: typeUri('invalid-webhook-signature'),
  notFound: typeUri('not-found'),
  conflict: typeUri('idempotency-key-reuse'),
  tooLarge: typeUri('payload-too-large'),
  uriTooLong: typeUri('uri-too-long'),
  headersTooLarge: typeUri('request-header-fields-too-large'),
  rateLimited: typeUri('rate-limited'),
  unsupportedMediaType: typeUri('unsupported-media-type'),
  unavailable: typeUri('service-unavailable'),
  internal: typeUri('internal-error'),
} as const;

export interface FieldError {
  /** Dotted path of the bad field, as `attributes.email` or `items[0].id`. */
  field: string;
  message: string;
}

export interface ProblemInit {
  status: number;
  title: string;
  type?: string;
  detail?: string;
  errors?: FieldError[];
  /** Extra response headers, e.g. `WWW-Authenticate` or `Retry-After`. */
  headers?: Record<string, string>;
  /** Extension members (RFC 9457 section 3.2). */
  extensions?: Record<string, unknown>;
  /** null leaves `instance` out: when the path itself is what is wrong, it is not echoed. */
  instance?: null;
}

export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail?: string;
  instance?: string;
  errors?: FieldError[];
  [extension: string]: unknown;
}

/** Throw this from a handler or hook; the error handler renders it. */
export class ProblemError extends Error {
  readonly statusCode: number;
  constructor(
    readonly problem: ProblemInit,
    options?: { cause?: unknown },
  ) {
    super(problem.detail ?? problem.title, options);
    this.name = 'ProblemError';
    this.statusCode = problem.status;
  }
}

export const problems = {
  validation: (errors: FieldError[], detail = 'The request has invalid fields.') =>
    new ProblemError({ status: 400, title: 'Invalid request', type: PROBLEM_TYPES.validation, detail, errors }),
  /** 401 with a `WWW-Authenticate: Bearer` challenge (RFC 6750; `invalid_token` when one was sent). */
  unauthorized: (detail: string, bearerError?: 'invalid_token') =>
    new ProblemError({
      status: 401,
      title: 'Unauthorized',
      type: PROBLEM_TYPES.unauthorized,
      detail,
      headers: { 'www-authenticate': bearerError ? `Bearer realm="jml", error="${bearerError}"` : 'Bearer realm="jml"' },
    }),
  forbidden: (detail: string) => new ProblemError({ status: 403, title: 'Forbidden', type: PROBLEM_TYPES.forbidden, detail }),
  notFound: (detail: string) => new ProblemError({ status: 404, title: 'Not found', type: PROBLEM_TYPES.notFound, detail }),
  unavailable: (detail: string, retryAfterSeconds = 5) =>
    new ProblemError({ status: 503, title: 'Service unavailable', type: PROBLEM_TYPES.unavailable, detail, headers: { 'retry-after': String(retryAfterSeconds) } }),
  rateLimited: (detail: string, retryAfterSeconds: number) =>
    new ProblemError({ status: 429, title: 'Too many requests', type: PROBLEM_TYPES.rateLimited, detail, headers: { 'retry-after': String(Math.max(1, retryAfterSeconds)) } }),
  uriTooLong: () => new ProblemError({ status: 414, title: 'URI too long', type: PROBLEM_TYPES.uriTooLong, detail: 'The request URI is longer than this API accepts.', instance: null }),
};

/** Sent on every response, errors included: bodies carry personal data, and are only what their type says. */
export const SECURITY_HEADERS = { 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' } as const;

/** Maps zod issues to `{ field, message }`, field paths prefixed (e.g. `query`-less names). */
export function zodFieldErrors(error: z.ZodError, prefix: readonly PropertyKey[] = []): FieldError[] {
  return error.issues.map((issue) => ({ field: formatPath([...prefix, ...issue.path]) || '(body)', message: issue.message }));
}

/** Parses or throws a 400 problem naming each bad field. */
export function parseOrThrow<S extends z.ZodType>(schema: S, data: unknown, prefix: readonly PropertyKey[] = []): z.output<S> {
  const result = schema.safeParse(data);
  if (!result.success) throw problems.validation(zodFieldErrors(result.error, prefix));
  return result.data;
}

/** Route schemas whose bad fields are named with a prefix (`params.id`), as parseOrThrow's `prefix`. */
const FIELD_PREFIXES = new WeakMap<z.ZodType, readonly PropertyKey[]>();

/** Marks a route schema so that Fastify's validation names its bad fields with `prefix`. */
export function withFieldPrefix<S extends z.ZodType>(schema: S, prefix: readonly PropertyKey[]): S {
  FIELD_PREFIXES.set(schema, prefix);
  return schema;
}

/**
 * Fastify's validator compiler for the zod schemas routes declare (params, querystring,
 * body): the route's input is parsed by parseOrThrow, so a bad request is the same 400
 * problem naming each field, with the same field paths (`items[0].id`), as a handler's own
 * parse. (fastify-type-provider-zod's compiler reports JSON-pointer paths, which lose the
 * difference between an index and a key.)
 */
export const zodValidatorCompiler: FastifySchemaCompiler<z.ZodType> = ({ schema }) => (data) => {
  try {
    return { value: parseOrThrow(schema, data, FIELD_PREFIXES.get(schema)) };
  } catch (err) {
    // Anything else (a refinement that threw) is a bug: Fastify answers it as a 500.
    if (err instanceof ProblemError) return { error: err };
    throw err;
  }
};

export function sendProblem(reply: FastifyReply, init: ProblemInit): FastifyReply {
  const request = reply.request;
  const body: ProblemBody = {
    ...init.extensions,
    type: init.type ?? 'about:blank',
    title: init.title,
    status: init.status,
    ...(init.detail !== undefined ? { detail: init.detail } : {}),
    // The path only: query strings may carry identifiers we do not want echoed around.
    ...(init.instance === null ? {} : { instance: request.url.split('?')[0] ?? request.url }),
    ...(init.errors ? { errors: init.errors } : {}),
    requestId: request.id,
  };
  if (init.headers) reply.headers(init.headers);
  return reply.code(init.status).type(PROBLEM_CONTENT_TYPE).send(body);
}

// --- database availability ------------------------------------------------------------

const CONNECTION_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'CONNECT_TIMEOUT',
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  // db/client.ts DatabaseUnavailableError: no answer within the write path's bounded wait.
  'DATABASE_UNAVAILABLE',
]);

/** An error and its causes, outermost first (at most 5: a cause chain can be a cycle). */
export function errorChain(err: unknown): unknown[] {
  const chain: unknown[] = [];
  let current: unknown = err;
  while (current && chain.length < 5) {
    chain.push(current);
    const next = (current as { cause?: unknown }).cause;
    // AggregateError (e.g. connecting to both ::1 and 127.0.0.1) carries its own list.
    const aggregated = (current as { errors?: unknown[] }).errors;
    current = next ?? (Array.isArray(aggregated) ? aggregated[0] : undefined);
  }
  return chain;
}

/**
 * True when the error means "Postgres cannot take this now" (down, restarting, out of
 * connections, serialisation conflict): the client should retry, so 503 + Retry-After.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  return errorChain(err).some((e) => {
    const code = (e as { code?: unknown }).code;
    if (typeof code !== 'string') return false;
    if (CONNECTION_ERROR_CODES.has(code)) return true;
    // SQLSTATE classes: 08 connection exception, 53 insufficient resources, 57P0x shutdown,
    // 57014 statement timeout (or cancel), 40001 serialization failure, 40P01 deadlock.
    return /^(08|53)/.test(code) || /^57P0[1-3]$/.test(code) || code === '57014' || code === '40001' || code === '40P01';
  });
}

/**
 * What may be logged about an error: its class and codes, never its message (drizzle puts
 * the query parameters in the message, and those are names and e-mail addresses).
 */
export function safeErrorInfo(err: unknown): Record<string, unknown> {
  const chain = errorChain(err);
  return {
    errors: chain.map((e) => ({
      name: (e as { name?: unknown }).name,
      code: (e as { code?: unknown }).code,
      ...(typeof (e as { routine?: unknown }).routine === 'string' ? { routine: (e as { routine: string }).routine } : {}),
    })),
  };
}

// --- Fastify handlers -----------------------------------------------------------------

const FASTIFY_CODES: Record<string, Omit<ProblemInit, 'status'> & { status?: number }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { title: 'Payload too large', type: PROBLEM_TYPES.tooLarge, detail: 'The request body exceeds the 1 MiB limit.' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { title: 'Unsupported media type', type: PROBLEM_TYPES.unsupportedMediaType, detail: 'Send application/json.' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { title: 'Malformed JSON', type: PROBLEM_TYPES.malformedJson, detail: 'The body is empty.' },
  FST_ERR_CTP_INVALID_JSON_BODY: { title: 'Malformed JSON', type: PROBLEM_TYPES.malformedJson, detail: 'The body is not valid JSON.' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { title: 'Bad request', detail: 'Content-Length does not match the body.' },
};

const STATUS_TITLES: Record<number, string> = {
  400: 'Bad request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not found',
  405: 'Method not allowed',
  406: 'Not acceptable',
  408: 'Request timeout',
  409: 'Conflict',
  413: 'Payload too large',
  414: 'URI too long',
  415: 'Unsupported media type',
  429: 'Too many requests',
  431: 'Request header fields too large',
  500: 'Internal server error',
  503: 'Service unavailable',
};

export function errorHandler(error: FastifyError | ProblemError | Error, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (error instanceof ProblemError) {
    if (error.statusCode >= 500) request.log.warn({ err: safeErrorInfo(error.cause), status: error.statusCode }, error.problem.title);
    return sendProblem(reply, error.problem);
  }
  if (isDatabaseUnavailable(error)) {
    request.log.warn({ err: safeErrorInfo(error) }, 'database unavailable');
    return sendProblem(reply, problems.unavailable('The database is unavailable; retry later.').problem);
  }
  const code = (error as FastifyError).code;
  const known = code ? FASTIFY_CODES[code] : undefined;
  const status = (error as FastifyError).statusCode;
  if (known) return sendProblem(reply, { status: known.status ?? status ?? 400, ...known });
  // Fastify's own 4xx errors (bad content-length, JSON parse by the default parser, ...):
  // their messages are generic and safe to show.
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const isJson = error instanceof SyntaxError;
    return sendProblem(reply, {
      status,
      title: isJson ? 'Malformed JSON' : (STATUS_TITLES[status] ?? 'Bad request'),
      type: isJson ? PROBLEM_TYPES.malformedJson : 'about:blank',
      detail: isJson ? 'The body is not valid JSON.' : error.message,
    });
  }
  request.log.error({ err: safeErrorInfo(error) }, 'unhandled error');
  return sendProblem(reply, { status: 500, title: 'Internal server error', type: PROBLEM_TYPES.internal, detail: 'An unexpected error occurred; it has been logged.' });
}

export function notFoundHandler(request: FastifyRequest, reply: FastifyReply): FastifyReply {
  return sendProblem(reply, { status: 404, title: 'Not found', type: PROBLEM_TYPES.notFound, detail: `No route for ${request.method} at this path.` });
}

/**
 * Fastify's `frameworkErrors`: a URL that does not decode (400) or a path parameter longer
 * than the router takes (414). Fastify's own answers echo the path; these do not.
 */
export function frameworkErrorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  reply.headers(SECURITY_HEADERS);
  if (error.code === 'FST_ERR_MAX_PARAM_LENGTH') return sendProblem(reply, problems.uriTooLong().problem);
  if (error.code === 'FST_ERR_BAD_URL') {
    return sendProblem(reply, { status: 400, title: 'Bad request', detail: 'The request URI is not valid.', instance: null });
  }
  return errorHandler(error, request, reply);
}

const CLIENT_ERRORS: Record<string, { status: number; title: string; type: string; detail: string }> = {
  HPE_HEADER_OVERFLOW: { status: 431, title: 'Request header fields too large', type: PROBLEM_TYPES.headersTooLarge, detail: 'The request line and headers exceed the size this server reads.' },
  ERR_HTTP_REQUEST_TIMEOUT: { status: 408, title: 'Request timeout', type: 'about:blank', detail: 'The request did not arrive in time.' },
};
const HTTP_REASONS: Record<number, string> = { 400: 'Bad Request', 408: 'Request Timeout', 431: 'Request Header Fields Too Large' };

/**
 * Fastify's `clientErrorHandler`: what Node's HTTP parser refuses before Fastify sees a
 * request (headers too large: 431, a malformed request: 400, too slow: 408). Written to
 * the socket by hand, as Node and Fastify do, but as a problem document that echoes nothing.
 */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket): void {
  // A reset connection has nothing left to answer (Node's own handler does the same).
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const problem = (err.code ? CLIENT_ERRORS[err.code] : undefined) ?? { status: 400, title: 'Bad request', type: 'about:blank', detail: 'The request could not be parsed.' };
  if (socket.writable) {
    const body = JSON.stringify(problem);
    const headers = [
      `HTTP/1.1 ${problem.status} ${HTTP_REASONS[problem.status] ?? 'Bad Request'}`,
      `Content-Type: ${PROBLEM_CONTENT_TYPE}`,
      `Content-Length: ${Buffer.byteLength(body)}`,
      `Cache-Control: ${SECURITY_HEADERS['cache-control']}`,
      `X-Content-Type-Options: ${SECURITY_HEADERS['x-content-type-options']}`,
      'Connection: close',
    ];
    socket.write(`${headers.join('\r\n')}\r\n\r\n${body}`);
  }
  socket.destroy(err);
}
