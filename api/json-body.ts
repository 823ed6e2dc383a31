// Every JSON body the API reads goes through here: strict UTF-8 (a body that is not valid
// UTF-8 is refused, never decoded lossily into U+FFFD), a nesting depth checked by a plain
// scan before JSON.parse (deep nesting would otherwise throw RangeError from recursive code
// further on), then JSON.parse. Each failure is a 400 problem.
import { PROBLEM_TYPES, ProblemError } from './problem.js';

/** Deeper than any HR or SCIM payload needs; far below what recursion could choke on. */
export const MAX_JSON_DEPTH = 32;

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The text of a body, or null when the bytes are not valid UTF-8. */
export function decodeUtf8(bytes: Uint8Array): string | null {
  try {
    return utf8.decode(bytes);
  } catch {
    return null;
  }
}

/**
 * The deepest nesting of arrays and objects in JSON text, counted with one pass and no
 * recursion; brackets inside strings do not count. Stops counting past `limit`.
 */
export function jsonDepth(text: string, limit = Number.POSITIVE_INFINITY): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i += 1; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      depth += 1;
      if (depth > deepest) deepest = depth;
      if (deepest > limit) return deepest;
    } else if (c === 0x5d || c === 0x7d) {
      depth -= 1;
    }
  }
  return deepest;
}

const malformed = (detail: string) => new ProblemError({ status: 400, title: 'Malformed JSON', type: PROBLEM_TYPES.malformedJson, detail });

/** Parses a JSON body from its raw bytes (or text already decoded strictly), or throws a 400 problem. */
export function parseJsonBody(body: Uint8Array | string): unknown {
  const text = typeof body === 'string' ? body : decodeUtf8(body);
  if (text === null) throw malformed('The body is not valid UTF-8.');
  if (text.trim() === '') throw malformed('The body is empty.');
  if (jsonDepth(text, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) throw malformed(`The body is nested deeper than ${MAX_JSON_DEPTH} levels.`);
  try {
    return JSON.parse(text);
  } catch {
    throw malformed('The body is not valid JSON.');
  }
}

/** A Fastify content-type parser (`parseAs: 'buffer'`) that parses with parseJsonBody. */
export function jsonBodyParser(_request: unknown, body: Buffer, done: (err: Error | null, value?: unknown) => void): void {
  try {
    done(null, parseJsonBody(body));
  } catch (err) {
    done(err as Error);
  }
}
