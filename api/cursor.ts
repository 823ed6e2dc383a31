// Opaque cursors for list endpoints: base64url JSON of the last row's position.
import type { z } from 'zod';
import { problems } from './problem.js';

export function encodeCursor(value: unknown): string {
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
}

/** Decodes a cursor and checks its shape; a bad one is a 400 naming `cursor`. */
export function decodeCursor<S extends z.ZodType>(cursor: string, shape: S): z.output<S> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    value = undefined;
  }
  const parsed = shape.safeParse(value);
  if (!parsed.success) throw problems.validation([{ field: 'cursor', message: 'is not a cursor this API returned' }]);
  return parsed.data;
}
