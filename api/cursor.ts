// Opaque cursors for list endpoints: base64url JSON of the last row's position. A cursor
// comes back from the client, so it is input like any other: strict base64url, strict
// UTF-8, JSON, then a zod shape whose every part fits the column it is compared with (a
// number the database would refuse is a 400 naming `cursor` here, never a 500 there).
import { z } from 'zod';
import { decodeUtf8 } from './json-body.js';
import { problems } from './problem.js';

const INT8_MIN = -(2n ** 63n);
const INT8_MAX = 2n ** 63n - 1n;

/** An int8 carried as decimal text (lossless, unlike a JSON number): what a `::bigint` cast takes. */
export const cursorInt8 = z.string().refine((digits) => {
  // One check, so BigInt never sees what the pattern refused (zod runs every check).
  if (!/^-?\d{1,19}$/.test(digits)) return false;
  const value = BigInt(digits);
  return value >= INT8_MIN && value <= INT8_MAX;
});

/** Text compared with a text column: bounded, and without the NUL Postgres refuses in text. */
export const cursorText = (max: number) => z.string().max(max).refine((text) => !text.includes('\u0000'));

const BASE64URL = /^[A-Za-z0-9_-]+$/;

export function encodeCursor(value: unknown): string {
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
}

/** Decodes a cursor and checks its shape; a bad one is a 400 naming `cursor`. */
export function decodeCursor<S extends z.ZodType>(cursor: string, shape: S): z.output<S> {
  const refused = () => problems.validation([{ field: 'cursor', message: 'is not a cursor this API returned' }]);
  // Buffer's base64url decoding skips characters it does not know; a cursor has none.
  if (!BASE64URL.test(cursor)) throw refused();
  const text = decodeUtf8(Buffer.from(cursor, 'base64url'));
  if (text === null) throw refused();
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw refused();
  }
  const parsed = shape.safeParse(value);
  if (!parsed.success) throw refused();
  return parsed.data;
}
