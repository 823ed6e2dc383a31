// Every JSON body's gate (api/json-body.ts): strict UTF-8, the nesting depth and keys named
// twice, found in one pass without recursion, before JSON.parse.
import { describe, expect, it } from 'vitest';
import { jsonShape, MAX_JSON_DEPTH, parseJsonBody } from '../../api/json-body.js';
import { ProblemError } from '../../api/problem.js';

function refusal(body: string | Uint8Array): string {
  try {
    parseJsonBody(body);
  } catch (err) {
    expect(err).toBeInstanceOf(ProblemError);
    return (err as ProblemError).problem.detail ?? '';
  }
  throw new Error('accepted');
}

describe('jsonShape', () => {
  it('measures the nesting, not counting brackets inside strings', () => {
    expect(jsonShape('{"a":[1,{"b":[]}],"c":"[[[{{{"}').depth).toBe(4);
    expect(jsonShape('"[[["').depth).toBe(0);
    expect(jsonShape(`${'['.repeat(100_000)}${']'.repeat(100_000)}`, 40).depth).toBe(41);
  });

  it('finds a key named twice in one object, written the same or escaped differently', () => {
    expect(jsonShape('{"a":1,"b":2,"a":3}').duplicateKey).toBe('a');
    expect(jsonShape('{"x":{"title":"A","title":"B"}}').duplicateKey).toBe('title');
    expect(jsonShape('{"a":1,"\\u0061":2}').duplicateKey).toBe('a');
  });

  it('lets the same key appear in different objects, and key-like text in values', () => {
    expect(jsonShape('[{"a":1},{"a":2}]').duplicateKey).toBeUndefined();
    expect(jsonShape('{"a":{"a":{"a":1}}}').duplicateKey).toBeUndefined();
    expect(jsonShape('{"a":"a","b":["a","a"],"c":{"d":"a"}}').duplicateKey).toBeUndefined();
    expect(jsonShape('{"a":"x\\"y","b":"\\\\","c":1}').duplicateKey).toBeUndefined();
  });
});

describe('parseJsonBody', () => {
  it('parses good JSON, from bytes or text', () => {
    expect(parseJsonBody(Buffer.from('{"name":"Zoë"}'))).toEqual({ name: 'Zoë' });
    expect(parseJsonBody('[1,2]')).toEqual([1, 2]);
  });

  it('refuses, each with its reason: bytes that are not UTF-8, an empty body, deep nesting, a key named twice, bad JSON', () => {
    expect(refusal(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]))).toMatch(/not valid UTF-8/);
    expect(refusal('  ')).toMatch(/empty/);
    expect(refusal(`${'['.repeat(MAX_JSON_DEPTH + 1)}${']'.repeat(MAX_JSON_DEPTH + 1)}`)).toMatch(/nested deeper than 32/);
    expect(refusal('{"title":"A","title":"B"}')).toBe('An object in the body names the key "title" twice.');
    expect(refusal('{"a":')).toMatch(/not valid JSON/);
  });

  it('names a duplicated key escaped and cut short, never raw', () => {
    const detail = refusal(`{"\\u001b[31m${'k'.repeat(100)}":1,"\\u001b[31m${'k'.repeat(100)}":2}`);
    expect(detail).not.toContain('\u001b');
    expect(detail).toContain('\\u001b[31m');
    expect(detail).not.toContain('k'.repeat(100));
  });
});
