// The pure helpers of the SCIM connector: Retry-After (RFC 9110 §10.2.3), filter string
// literals (RFC 7644 §3.4.2.2) and the per-target rate.
import { describe, expect, it } from 'vitest';
import { MAX_RETRY_AFTER_MS, parseRetryAfter, rateLimit, scimFilterString } from '../../activities/connectors/scim.js';

const NOW = Date.parse('2025-03-01T12:00:00Z');

describe('parseRetryAfter', () => {
  it('reads delay-seconds', () => {
    expect(parseRetryAfter('120', NOW)).toBe(120_000);
    expect(parseRetryAfter('0', NOW)).toBe(0);
    expect(parseRetryAfter(' 5 ', NOW)).toBe(5_000);
  });

  it('reads an HTTP-date as the time left until it, and a date already past as no wait', () => {
    expect(parseRetryAfter('Sat, 01 Mar 2025 12:00:30 GMT', NOW)).toBe(30_000);
    expect(parseRetryAfter('Sat, 01 Mar 2025 11:59:00 GMT', NOW)).toBe(0);
    // The obsolete RFC 850 form is still an HTTP-date.
    expect(parseRetryAfter('Saturday, 01-Mar-25 12:01:00 GMT', NOW)).toBe(60_000);
  });

  it('caps what it believes', () => {
    expect(parseRetryAfter('86400', NOW)).toBe(MAX_RETRY_AFTER_MS);
    expect(parseRetryAfter('Sun, 02 Mar 2025 12:00:00 GMT', NOW)).toBe(MAX_RETRY_AFTER_MS);
  });

  it('ignores what is absent or not a Retry-After', () => {
    expect(parseRetryAfter(null, NOW)).toBeUndefined();
    expect(parseRetryAfter(undefined, NOW)).toBeUndefined();
    expect(parseRetryAfter('', NOW)).toBeUndefined();
    expect(parseRetryAfter('1.5', NOW)).toBeUndefined();
    expect(parseRetryAfter('-3', NOW)).toBeUndefined();
    expect(parseRetryAfter('soon', NOW)).toBeUndefined();
    // Digits alone are seconds, never a year.
    expect(parseRetryAfter('2025', NOW)).toBe(MAX_RETRY_AFTER_MS);
    expect(parseRetryAfter('300', NOW)).toBe(300_000);
  });
});

describe('scimFilterString', () => {
  it('quotes a value, escaping `"`, `\\` and control characters', () => {
    expect(scimFilterString('E1001')).toBe('"E1001"');
    expect(scimFilterString('a"b\\c')).toBe('"a\\"b\\\\c"');
    expect(scimFilterString('x" or userName pr or "')).toBe('"x\\" or userName pr or \\""');
    expect(scimFilterString('tab\there')).toBe('"tab\\there"');
  });
});

describe('rateLimit', () => {
  it('spreads fractional rates over a longer interval', () => {
    expect(rateLimit(10)).toEqual({ intervalCap: 10, interval: 1000 });
    expect(rateLimit(0.5)).toEqual({ intervalCap: 1, interval: 2000 });
    expect(rateLimit(2.5)).toEqual({ intervalCap: 2, interval: 800 });
    expect(rateLimit(1000)).toEqual({ intervalCap: 1000, interval: 1000 });
  });
});
