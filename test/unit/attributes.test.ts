// The one attribute schema of every input (domain/attributes.ts): what it refuses, and that
// one answer names every bad field, bad names and bad values together.
import { describe, expect, it } from 'vitest';
import { parseAttributes } from '../../domain/attributes.js';

describe('identity attributes', () => {
  it('takes good attributes as sent, unknown JSON included, and folds the manager id', () => {
    expect(parseAttributes({ givenName: 'Zoë', title: 'Engineer', managerId: 'e0001', costCenter: { code: 'CC-1', shares: [1, 2] } })).toEqual({
      ok: true,
      attributes: { givenName: 'Zoë', title: 'Engineer', managerId: 'E0001', costCenter: { code: 'CC-1', shares: [1, 2] } },
    });
  });

  it('names every bad field in one answer: bad names, `__proto__` and bad values together', () => {
    const input = JSON.parse('{"bad key": 1, "__proto__": 2, "title": " Boss", "familyName": "Love\\u0000lace", "givenName": "Ada"}') as unknown;
    const result = parseAttributes(input);
    expect(result.ok).toBe(false);
    expect(result.ok ? [] : result.issues.map((i) => i.attribute).sort()).toEqual(['__proto__', 'bad key', 'familyName', 'title']);
  });

  it('refuses what is not an object, and more than 100 attributes', () => {
    for (const input of [null, [], 'x', 42]) expect(parseAttributes(input)).toEqual({ ok: false, issues: [{ attribute: '', message: 'must be an object' }] });
    const many = Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`a${i}`, 'x']));
    expect(parseAttributes(many)).toEqual({ ok: false, issues: [{ attribute: '', message: 'must have at most 100 attributes' }] });
  });
});
