// HR data on an operator's terminal: control, escape and bidi characters are shown as
// visible escapes, never sent raw; the logger never writes a failed query's values; the
// data folder's files are made the owner's only.
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DrizzleQueryError } from 'drizzle-orm/errors';
import { afterAll, describe, expect, it } from 'vitest';
import { safe, terminalSafe, terminalSafeJson } from '../../domain/terminal-safe.js';
import { createLogger, databaseErrorSummary, isDatabaseError } from '../../services/logger.js';
import { makePrivate } from '../../services/setup.js';

// Every character that must never reach a terminal raw (tab and newline included: a value
// never spans lines), and so must never appear in the helper's output.
// eslint-disable-next-line no-control-regex -- the characters under test
const RAW = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

describe('terminalSafe', () => {
  it.each([
    ['ESC of a colour sequence', 'Boss\x1b[31mRED', String.raw`Boss\x1b[31mRED`],
    ['a window-title (OSC) sequence ended by BEL', '\x1b]0;pwned\x07', String.raw`\x1b]0;pwned\x07`],
    ['NUL, tab, newline, carriage return', 'a\0b\tc\nd\re', String.raw`a\x00b\x09c\x0ad\x0de`],
    ['DEL', 'x\x7fy', String.raw`x\x7fy`],
    ['C1 CSI (one-byte ESC [)', 'x\u009b31my', String.raw`x\x9b31my`],
    ['right-to-left override', 'Ann\u202eeiv', String.raw`Ann\u202eeiv`],
    ['every bidi embedding, override and isolate', '\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069', String.raw`\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069`],
    ['LRM, RLM, ALM and the line and paragraph separators', '\u200e\u200f\u061c\u2028\u2029', String.raw`\u200e\u200f\u061c\u2028\u2029`],
  ])('shows %s as visible escapes', (_what, input, shown) => {
    expect(terminalSafe(input)).toBe(shown);
    expect(terminalSafe(input)).not.toMatch(RAW);
  });

  it('leaves ordinary text alone, accents, scripts, emoji and backslashes included', () => {
    for (const text of ['Zoë Ångström-Ødegård', 'محمد', '李小龍', 'cn=Smith\\, John', 'O\'Brien "Jr."', '👩‍💻']) expect(terminalSafe(text)).toBe(text);
  });

  it('is idempotent: escaping safe text again changes nothing', () => {
    const once = terminalSafe('A\x1b[2J\u202eB\u009b');
    expect(terminalSafe(once)).toBe(once);
  });

  it('escapes every character of C0, DEL and C1 and nothing else below U+0100', () => {
    for (let code = 0; code <= 0xff; code++) {
      const c = String.fromCharCode(code);
      const control = code < 0x20 || (code >= 0x7f && code <= 0x9f);
      expect(terminalSafe(c)).toBe(control ? `\\x${code.toString(16).padStart(2, '0')}` : c);
    }
  });
});

describe('the safe template tag', () => {
  it('escapes the interpolated values and keeps the literal parts (newlines of the program included)', () => {
    const name = 'Eve\x1b[8m';
    expect(safe`\n${name}: ${3} rows`).toBe(`\n${String.raw`Eve\x1b[8m`}: 3 rows`);
  });
});

describe('terminalSafeJson', () => {
  it('prints JSON with no raw control or bidi character that parses back to the same value', () => {
    const value = { name: 'Ann\u202eeiv\x1b[31m', title: 'x\u009by\x7f', list: ['\u2066a\u2069', 'line\nbreak'], n: 1, none: null };
    const json = terminalSafeJson(value);
    // Pretty-printing puts newlines between members; none other is raw.
    expect(json.replaceAll('\n', '')).not.toMatch(RAW);
    expect(json).toContain(String.raw`Ann\u202eeiv\u001b[31m`);
    expect(JSON.parse(json)).toEqual(value);
  });
});

describe('database errors', () => {
  // The shapes drizzle and postgres.js produce: the SQL and values in the message and in
  // properties, and the failing row in the driver's `detail`.
  const postgresError = () =>
    Object.assign(new Error('new row for relation "identities" violates check constraint "identities_status_check"'), {
      name: 'PostgresError',
      code: '23514',
      routine: 'ExecConstraints',
      detail: 'Failing row contains (E1001, bogus, {"givenName": "Grace", "email": "grace@example.com"}).',
    });
  const queryError = () => new DrizzleQueryError('insert into "identities" ("employee_id", "status", "attributes") values ($1, $2, $3)', ['E1001', 'bogus', '{"givenName":"Grace","email":"grace@example.com"}'], postgresError());

  it('are recognised by drizzle class, driver class or a query property, through causes', () => {
    expect(isDatabaseError(queryError())).toBe(true);
    expect(isDatabaseError(postgresError())).toBe(true);
    expect(isDatabaseError(new Error('wrapped', { cause: queryError() }))).toBe(true);
    expect(isDatabaseError(new Error('no identity E1'))).toBe(false);
    expect(isDatabaseError('Failed query: select 1')).toBe(false);
  });

  it('are summarised by class, SQLSTATE and routine, never by message, query or values', () => {
    const summary = databaseErrorSummary(queryError())!;
    expect(summary).toContain('SQLSTATE 23514');
    expect(summary).toContain('a database constraint refused the change');
    expect(summary).toContain('DrizzleQueryError <- PostgresError');
    expect(summary).toContain('ExecConstraints');
    expect(summary).not.toMatch(/Grace|grace@|E1001|insert into|bogus|Failing row/);
    expect(databaseErrorSummary(new Error('not a database error'))).toBeUndefined();
  });

  it('are logged by the process logger as class and codes only, in each way the code base logs errors', () => {
    const lines: string[] = [];
    const logger = createLogger('info', { write: (line: string) => void lines.push(line) });
    const err = queryError();
    logger.error({ err }, 'insert failed');
    logger.error(err, 'insert failed, logged as the first argument');
    logger.warn({ err: new Error('the dispatcher failed', { cause: err }) }, 'wrapped');
    logger.warn({ err: err.message }, 'message logged as a string'); // worker/ingest-worker.ts does this
    logger.warn({ error: err }, 'under the other usual key');
    expect(lines).toHaveLength(5);
    for (const line of lines) {
      expect(line).not.toMatch(/Grace|grace@|E1001|insert into|bogus|Failing row|violates/);
    }
    const logged = JSON.parse(lines[0]!) as { err: { type: string; errors: Array<{ name: string; code?: string; routine?: string }> } };
    expect(logged.err.type).toBe('DrizzleQueryError');
    expect(logged.err.errors).toEqual([{ name: 'Error' }, { name: 'PostgresError', code: '23514', routine: 'ExecConstraints' }]);
    expect((JSON.parse(lines[3]!) as { err: string }).err).toMatch(/^Failed query \(its SQL and values are withheld/);
  });

  it('leave other errors to the standard serializer (message and stack kept)', () => {
    const lines: string[] = [];
    const logger = createLogger('info', { write: (line: string) => void lines.push(line) });
    logger.error({ err: Object.assign(new Error('slapd exited'), { code: 'ECHILD' }) }, 'boom');
    const logged = JSON.parse(lines[0]!) as { err: { type: string; message: string; code: string; stack: string } };
    expect(logged.err).toMatchObject({ type: 'Error', message: 'slapd exited', code: 'ECHILD' });
    expect(logged.err.stack).toContain('slapd exited');
  });
});

describe('makePrivate', () => {
  const root = mkdtempSync(join(tmpdir(), 'jml-private-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('takes group and other permissions off a folder tree, keeps owner bits, and leaves symbolic links alone', () => {
    const data = join(root, 'data');
    mkdirSync(join(data, 'slapd', 'data'), { recursive: true, mode: 0o755 });
    chmodSync(data, 0o777);
    writeFileSync(join(data, 'temporal.sqlite'), 'x', { mode: 0o666 });
    writeFileSync(join(data, 'slapd', 'config.ldif'), 'x', { mode: 0o644 });
    writeFileSync(join(data, 'slapd', 'data', 'tool'), 'x', { mode: 0o755 });
    const outside = join(root, 'outside');
    writeFileSync(outside, 'x', { mode: 0o644 });
    symlinkSync(outside, join(data, 'link'));

    expect(makePrivate(data)).toEqual([]);
    const mode = (file: string) => statSync(file).mode & 0o7777;
    expect(mode(data)).toBe(0o700);
    expect(mode(join(data, 'slapd'))).toBe(0o700);
    expect(mode(join(data, 'slapd', 'data'))).toBe(0o700);
    expect(mode(join(data, 'temporal.sqlite'))).toBe(0o600);
    expect(mode(join(data, 'slapd', 'config.ldif'))).toBe(0o600);
    expect(mode(join(data, 'slapd', 'data', 'tool'))).toBe(0o700);
    expect(mode(outside)).toBe(0o644); // not followed through the link
  });

  it('is no problem for a missing target', () => {
    expect(makePrivate(join(root, 'nothing-here'))).toEqual([]);
  });
});
