// Cursors come back from clients: decodeCursor takes only what encodeCursor could have
// made for the shape asked, and refuses everything else as a 400 naming `cursor`.
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { cursorInt8, cursorText, decodeCursor, encodeCursor } from '../../api/cursor.js';
import { ProblemError } from '../../api/problem.js';

const position = z.tuple([cursorInt8, z.enum(['audit', 'hr_event']), cursorText(300)]);

function refusal(run: () => unknown): ProblemError {
  try {
    run();
  } catch (err) {
    if (err instanceof ProblemError) return err;
    throw err;
  }
  throw new Error('the cursor was accepted');
}

describe('decodeCursor', () => {
  it('gives back what encodeCursor encoded', () => {
    const value = ['1764400000123456', 'hr_event', 'scim:ab\u00e9'] as const;
    expect(decodeCursor(encodeCursor(value), position)).toEqual(value);
    expect(decodeCursor(encodeCursor(['-9223372036854775808', 'audit', '']), position)).toEqual(['-9223372036854775808', 'audit', '']);
    expect(decodeCursor(encodeCursor(['9223372036854775807', 'audit', 'k']), position)[0]).toBe('9223372036854775807');
  });

  it.each([
    ['a 20-digit number', encodeCursor(['99999999999999999999', 'audit', 'k'])],
    ['one past the largest int8', encodeCursor(['9223372036854775808', 'audit', 'k'])],
    ['one below the smallest int8', encodeCursor(['-9223372036854775809', 'audit', 'k'])],
    ['a JSON number where text goes', encodeCursor([1, 'audit', 'k'])],
    ['a decimal', encodeCursor(['1.5', 'audit', 'k'])],
    ['a padded number', encodeCursor([' 1', 'audit', 'k'])],
    ['an unknown kind', encodeCursor(['1', 'other', 'k'])],
    ['a NUL in text', encodeCursor(['1', 'audit', 'k\u0000'])],
    ['text over its bound', encodeCursor(['1', 'audit', 'k'.repeat(301)])],
    ['an extra element', encodeCursor(['1', 'audit', 'k', 'x'])],
    ['an object', encodeCursor({ at: '1' })],
    ['not base64url', 'a+b/c'],
    ['base64 padding', `${encodeCursor(['1', 'audit', 'k'])}=`],
    ['an empty cursor', ''],
    ['not JSON', Buffer.from('[1,').toString('base64url')],
    ['not UTF-8', Buffer.from([0x5b, 0x22, 0xff, 0x22, 0x5d]).toString('base64url')],
  ])('refuses %s with a 400 naming cursor', (_name, cursor) => {
    const problem = refusal(() => decodeCursor(cursor, position));
    expect(problem.statusCode).toBe(400);
    expect(problem.problem.errors).toEqual([{ field: 'cursor', message: 'is not a cursor this API returned' }]);
  });
});
