import { pino, type DestinationStream, type Logger } from 'pino';
import pretty from 'pino-pretty';
import { errorChain, safeErrorInfo } from '../api/problem.js';

/** The error and its causes that are objects (api/problem.ts errorChain). */
const objectChain = (err: unknown): object[] => errorChain(err).filter((e): e is object => e !== null && typeof e === 'object');

/** The error's class: drizzle's DrizzleQueryError keeps the name `Error`, its constructor says which. */
function className(e: object): string {
  const name = String((e as { name?: unknown }).name ?? 'Error');
  const constructor = (e as { constructor?: { name?: unknown } }).constructor?.name;
  return name === 'Error' && typeof constructor === 'string' && constructor !== 'Object' ? constructor : name;
}

/**
 * An error from the database driver or drizzle. Their messages and properties carry the
 * query's parameters (drizzle: "Failed query: ... params: Mary,mary@example.com"; postgres.js:
 * `parameters`, and a `detail` such as "Key (email)=(mary@example.com) already exists"),
 * which are names and e-mail addresses: only the class and codes may be shown or logged.
 */
export function isDatabaseError(err: unknown): boolean {
  return objectChain(err).some(
    (e) => ['DrizzleQueryError', 'PostgresError'].includes(className(e)) || 'query' in e || 'params' in e || 'parameters' in e,
  );
}

// SQLSTATE classes (PostgreSQL appendix A), for a reason an operator can act on.
const SQLSTATE_CLASSES: Record<string, string> = {
  '08': 'the connection to the database failed',
  '22': 'the database refused a value',
  '23': 'a database constraint refused the change',
  '28': 'the database refused the credentials',
  '3D': 'the database does not exist',
  '40': 'the database rolled the transaction back',
  '42': 'the database schema does not match (are the migrations applied?)',
  '53': 'the database is out of resources',
  '57': 'the database cancelled the query or is shutting down',
  P0: 'a database function raised an error',
};

/**
 * One line about a database error that is safe for a terminal and a log: the error classes,
 * the SQLSTATE (or the driver's connection code) and a generic reason, never the message.
 * Undefined for an error that is not a database error.
 */
export function databaseErrorSummary(err: unknown): string | undefined {
  if (!isDatabaseError(err)) return undefined;
  const chain = (safeErrorInfo(err).errors ?? []) as Array<{ name?: unknown; code?: unknown; routine?: string }>;
  const code = chain.map((e) => e.code).find((c): c is string => typeof c === 'string');
  const routine = chain.map((e) => e.routine).find((r) => r !== undefined);
  const sqlstate = code && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
  const reason = sqlstate ? (SQLSTATE_CLASSES[sqlstate.slice(0, 2)] ?? 'the database refused the query') : code ? `the database cannot be reached (${code})` : 'a database query failed';
  // Class names (DrizzleQueryError, PostgresError), kept to word characters.
  const names = objectChain(err)
    .map((e) => className(e).replace(/[^\w.]/g, ''))
    .join(' <- ');
  const codes = [sqlstate && `SQLSTATE ${sqlstate}`, routine && `in ${routine.replace(/[^\w.]/g, '')}`].filter(Boolean).join(', ');
  return `database error: ${reason} (${names}${codes ? `; ${codes}` : ''}); the query and its values are not shown`;
}

/** drizzle's message format: "Failed query: <sql>\nparams: <values>". */
const QUERY_MESSAGE = /^Failed query: /;

/**
 * The `err` serializer: a database error (or one caused by it) is logged as its classes
 * and codes only; other errors as pino's standard serializer has them. A message string
 * logged as `err` (`{ err: err.message }`) in drizzle's format is withheld.
 */
function serializeError(value: unknown): unknown {
  if (typeof value === 'string') return QUERY_MESSAGE.test(value) ? 'Failed query (its SQL and values are withheld from the log)' : value;
  if (value !== null && typeof value === 'object' && isDatabaseError(value)) return { type: className(value), ...safeErrorInfo(value) };
  return value instanceof Error ? pino.stdSerializers.err(value) : value;
}

/** What every logger redacts, at the top level and one level down (a child with redact options of its own must repeat these: pino replaces them). */
export const LOG_REDACT_PATHS = ['authorization', 'token', 'password', 'bindPassword', 'attributes', '*.authorization', '*.token', '*.password', '*.bindPassword', '*.attributes'] as const;

/**
 * Where the log goes: a person at a terminal reads lines (pino-pretty, in this process);
 * anything else (a pipe, a file, CI, systemd) gets one JSON object a line. Both write
 * synchronously, so log lines and console output (the banner) keep their order, and the
 * last lines before process.exit are not lost.
 */
function stdoutDestination(): DestinationStream {
  if (!process.stdout.isTTY) return pino.destination({ dest: 1, sync: true });
  return pretty({ destination: 1, sync: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'service', singleLine: true });
}

/**
 * One pino logger per process. Never log bodies, tokens or personal attributes; errors go
 * through serializeError, so a failed query's parameters never reach the log. Redaction and
 * serializers run before the destination, so the terminal's lines have them too.
 * `destination` is for tests.
 */
export function createLogger(level = process.env.LOG_LEVEL ?? 'info', destination: DestinationStream = stdoutDestination()): Logger {
  const options = {
    level,
    base: { service: 'jml' },
    redact: [...LOG_REDACT_PATHS],
    serializers: { err: serializeError, error: serializeError },
  };
  return pino(options, destination);
}
