// Every JSON body the API reads goes through here: strict UTF-8 (a body that is not valid
// UTF-8 is refused, never decoded lossily into U+FFFD), then one plain scan before JSON.parse
// for the nesting depth (deep nesting would otherwise throw RangeError from recursive code
// further on) and for keys named twice in one object (which JSON.parse would resolve
// silently, last one wins), then JSON.parse. Each failure is a 400 problem.
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

/** What one pass over JSON text finds: how deep it nests, and the first key an object names twice. */
export interface JsonShape {
  depth: number;
  duplicateKey?: string;
}

interface Frame {
  /** An object's keys so far; null for an array. */
  keys: Set<string> | null;
  /** In an object: the next string is a key (after `{` or `,`), not a value (after `:`). */
  expectKey: boolean;
}

/**
 * The deepest nesting of arrays and objects in JSON text, and the first key that an object
 * names twice (JSON.parse would keep the last one silently: the JSON form of a CSV header
 * named twice). One pass with an explicit stack, no recursion; brackets inside strings do
 * not count. Stops past `depthLimit`. Malformed text is JSON.parse's to refuse.
 */
export function jsonShape(text: string, depthLimit = Number.POSITIVE_INFINITY): JsonShape {
  const stack: Frame[] = [];
  let deepest = 0;
  let stringStart = -1;
  for (let i = 0; i < text.length; i += 1) {
    const c = text.charCodeAt(i);
    if (stringStart >= 0) {
      if (c === 0x5c) i += 1; // backslash: skip the escaped character
      else if (c === 0x22) {
        const top = stack.at(-1);
        if (top?.keys && top.expectKey) {
          let key: string;
          try {
            key = JSON.parse(text.slice(stringStart, i + 1)) as string;
          } catch {
            return { depth: deepest }; // a malformed key: JSON.parse says so
          }
          if (top.keys.has(key)) return { depth: deepest, duplicateKey: key };
          top.keys.add(key);
          top.expectKey = false;
        }
        stringStart = -1;
      }
    } else if (c === 0x22) {
      stringStart = i;
    } else if (c === 0x7b || c === 0x5b) {
      stack.push({ keys: c === 0x7b ? new Set() : null, expectKey: c === 0x7b });
      if (stack.length > deepest) deepest = stack.length;
      if (deepest > depthLimit) return { depth: deepest };
    } else if (c === 0x7d || c === 0x5d) {
      stack.pop();
    } else if (c === 0x2c) {
      const top = stack.at(-1);
      if (top?.keys) top.expectKey = true;
    }
  }
  return { depth: deepest };
}

const malformed = (detail: string) => new ProblemError({ status: 400, title: 'Malformed JSON', type: PROBLEM_TYPES.malformedJson, detail });

/** Parses a JSON body from its raw bytes (or text already decoded strictly), or throws a 400 problem. */
export function parseJsonBody(body: Uint8Array | string): unknown {
  const text = typeof body === 'string' ? body : decodeUtf8(body);
  if (text === null) throw malformed('The body is not valid UTF-8.');
  if (text.trim() === '') throw malformed('The body is empty.');
  const shape = jsonShape(text, MAX_JSON_DEPTH);
  if (shape.depth > MAX_JSON_DEPTH) throw malformed(`The body is nested deeper than ${MAX_JSON_DEPTH} levels.`);
  if (shape.duplicateKey !== undefined) throw malformed(`An object in the body names the key ${JSON.stringify(shape.duplicateKey.slice(0, 64))} twice.`);
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
