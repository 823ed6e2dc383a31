// The CSV import's planning rules (domain/csv-import.ts): which events an extract yields
// against what the engine knows, refused rows, stable ids, and the full-snapshot rule.
import { describe, expect, it } from 'vitest';
import { parseConfig, type JmlConfig } from '../../domain/config.js';
import { Readable } from 'node:stream';
import {
  birthrightEffects,
  checkHeader,
  CSV_LIMITS,
  CsvFormatError,
  csvEventId,
  planCsvImport,
  planCsvImportSteps,
  type CsvRow,
  type KnownIdentity,
} from '../../domain/csv-import.js';
import { readCsv } from '../../services/csv-import.js';

const config: JmlConfig = parseConfig({
  targets: [{ id: 'directory', type: 'ldap', bindDN: 'cn=admin,dc=example,dc=com', bindPassword: 'x', baseDN: 'dc=example,dc=com', usersDN: 'ou=people,dc=example,dc=com', groupsDN: 'ou=groups,dc=example,dc=com' }],
  entitlements: [
    { id: 'directory-account', target: 'directory', kind: 'account' },
    { id: 'employees', target: 'directory', kind: 'group', ref: 'cn=employees,ou=groups,dc=example,dc=com' },
    { id: 'sales', target: 'directory', kind: 'group', ref: 'cn=sales,ou=groups,dc=example,dc=com' },
  ],
  birthright: [
    { name: 'everyone', grant: ['directory-account'] },
    { name: 'employees', when: { employmentType: 'employee' }, grant: ['employees'] },
    { name: 'sales', when: { department: 'Sales' }, grant: ['sales'] },
  ],
});
const NOW = new Date('2026-11-23T12:00:00Z');
const HEADER = ['WorkerID', 'WorkerStatus', 'WorkerType', 'FirstName', 'LastName', 'HireDate', 'OnLeave', 'Department', 'JobTitle'];

let nextLine = 2;
function row(values: Partial<Record<(typeof HEADER)[number], string>>): CsvRow {
  const defaults = { WorkerStatus: 'Active', WorkerType: 'Employee', FirstName: 'Ada', LastName: 'Lovelace', HireDate: '2020-01-06', OnLeave: 'False', Department: 'Sales', JobTitle: 'Analyst' };
  return { line: nextLine++, values: { ...defaults, ...values } as Record<string, string> };
}

const knownAs = (employeeId: string, status: KnownIdentity['status'], attributes: KnownIdentity['attributes'] = {}, version = 'v1'): KnownIdentity => ({
  employeeId,
  status,
  version,
  attributes: { givenName: 'Ada', familyName: 'Lovelace', employmentType: 'Employee', department: 'Sales', title: 'Analyst', ...attributes },
});

const plan = (rows: CsvRow[], known: KnownIdentity[] = [], fullSnapshot = false) => planCsvImport(rows, config.csv, known, { fullSnapshot, now: NOW });
const types = (result: ReturnType<typeof plan>) => Object.fromEntries(result.people.map((p) => [p.employeeId, p.events.map((e) => e.type)]));

describe('planning an extract against the known identities', () => {
  it('hires new active workers on their hire date, with every mapped attribute', () => {
    const result = plan([row({ WorkerID: '100' })]);
    expect(result.events).toHaveLength(1);
    expect(result.events[0]).toMatchObject({
      employeeId: '100',
      type: 'hire',
      effectiveAt: new Date('2020-01-06T00:00:00Z'),
      attributes: { givenName: 'Ada', familyName: 'Lovelace', employmentType: 'Employee', department: 'Sales', title: 'Analyst' },
    });
    expect(result.counts).toMatchObject({ hire: 1, update: 0, terminate: 0 });
  });

  it('follows a new hire who is on leave with a leave_start just after it', () => {
    const result = plan([row({ WorkerID: '101', OnLeave: 'True' })]);
    expect(types(result)).toEqual({ '101': ['hire', 'leave_start'] });
    const [hire, leave] = result.events;
    expect(leave!.effectiveAt.getTime()).toBeGreaterThan(hire!.effectiveAt.getTime());
  });

  it('skips inactive rows for people it does not know, and counts them', () => {
    const result = plan([row({ WorkerID: '102', WorkerStatus: 'Inactive' })]);
    expect(result.events).toEqual([]);
    expect(result.skippedInactive).toBe(1);
  });

  it('updates only the mapped attributes that changed; an emptied cell clears the attribute', () => {
    const result = plan([row({ WorkerID: '103', Department: 'Finance', JobTitle: '' })], [knownAs('103', 'active')]);
    expect(result.events).toHaveLength(1);
    expect(result.events[0]).toMatchObject({ type: 'update', effectiveAt: NOW, attributes: { department: 'Finance', title: null } });
    expect(Object.keys(result.events[0]!.attributes).sort()).toEqual(['department', 'title']);
  });

  it('leaves unchanged people alone (unknown attributes the engine holds from elsewhere do not count)', () => {
    const result = plan([row({ WorkerID: '104' })], [knownAs('104', 'active', { email: 'ada@example.com' })]);
    expect(result.events).toEqual([]);
    expect(result.unchanged).toBe(1);
  });

  it('terminates the known live who are inactive in the file', () => {
    const result = plan(
      [row({ WorkerID: '105', WorkerStatus: 'Inactive' }), row({ WorkerID: '106', WorkerStatus: 'inactive' }), row({ WorkerID: '107', WorkerStatus: 'Inactive' })],
      [knownAs('105', 'active'), knownAs('106', 'on_leave'), knownAs('107', 'terminated')],
    );
    expect(types(result)).toEqual({ '105': ['terminate'], '106': ['terminate'] });
    expect(result.unchanged).toBe(1);
  });

  it('rehires the terminated and rescinded who are active again', () => {
    const result = plan([row({ WorkerID: '108' }), row({ WorkerID: '109', OnLeave: 'true' })], [knownAs('108', 'terminated'), knownAs('109', 'rescinded')]);
    expect(types(result)).toEqual({ '108': ['rehire'], '109': ['rehire', 'leave_start'] });
    // The file's old hire date precedes the termination: the rehire takes effect now.
    expect(result.events[0]).toMatchObject({ type: 'rehire', effectiveAt: NOW, attributes: { givenName: 'Ada', department: 'Sales' } });
  });

  it('starts and ends leaves', () => {
    const result = plan(
      [row({ WorkerID: '110', OnLeave: 'True' }), row({ WorkerID: '111', OnLeave: 'False' }), row({ WorkerID: '112', OnLeave: 'True' })],
      [knownAs('110', 'active'), knownAs('111', 'on_leave'), knownAs('112', 'on_leave')],
    );
    expect(types(result)).toEqual({ '110': ['leave_start'], '111': ['leave_end'] });
  });

  it('orders an update before a leave that comes with it', () => {
    const result = plan([row({ WorkerID: '113', OnLeave: 'True', JobTitle: 'Lead' })], [knownAs('113', 'active')]);
    const [update, leave] = result.events;
    expect([update!.type, leave!.type]).toEqual(['update', 'leave_start']);
    expect(leave!.effectiveAt.getTime()).toBeGreaterThan(update!.effectiveAt.getTime());
  });
});

describe('the full-snapshot rule', () => {
  const known = [knownAs('200', 'active'), knownAs('201', 'on_leave'), knownAs('202', 'pre_hire'), knownAs('203', 'terminated'), knownAs('204', 'active')];
  const rows = () => [row({ WorkerID: '204' })];

  it('terminates live people absent from the file only when told the file is a full snapshot', () => {
    expect(plan(rows(), known, false).events).toEqual([]);
    const full = plan(rows(), known, true);
    expect(types(full)).toEqual({ '200': ['terminate'], '201': ['terminate'], '202': ['terminate'] });
    expect(full.people.every((p) => p.line === null)).toBe(true);
  });

  it('never terminates someone whose row was refused: a typo is not a leaver', () => {
    const full = plan([row({ WorkerID: '200', FirstName: '' }), row({ WorkerID: '201', HireDate: 'soon' }), row({ WorkerID: '202' }), row({ WorkerID: '204' })], known, true);
    expect(full.errors.map((e) => e.employeeId)).toEqual(['200', '201']);
    expect(full.counts.terminate).toBe(0);
  });
});

describe('refused rows', () => {
  it('reports each bad row with its line and goes on with the rest', () => {
    const good = row({ WorkerID: '300' });
    const noId = row({ WorkerID: '' });
    const badId = row({ WorkerID: 'a b/c' });
    const noName = row({ WorkerID: '301', LastName: '' });
    const badDate = row({ WorkerID: '302', HireDate: '31/12/2020' });
    const result = plan([good, noId, badId, noName, badDate]);
    expect(result.errors).toEqual([
      { line: noId.line, message: 'WorkerID is empty', columns: ['WorkerID'] },
      { line: badId.line, message: expect.stringMatching(/WorkerID must be/), columns: ['WorkerID'] },
      { line: noName.line, employeeId: '301', message: 'LastName is empty', columns: ['LastName'] },
      { line: badDate.line, employeeId: '302', message: 'HireDate is not a date', columns: ['HireDate'] },
    ]);
    expect(types(result)).toEqual({ '300': ['hire'] });
    expect(result.rows).toBe(5);
  });

  it('refuses every row of an id that names different people, and takes an exact repeat once', () => {
    const a = row({ WorkerID: '303', FirstName: 'Ada' });
    const b = row({ WorkerID: '303', FirstName: 'Grace' });
    const c = row({ WorkerID: '304' });
    const cAgain = { ...c, line: nextLine++ };
    const result = plan([a, b, c, cAgain], [knownAs('303', 'active')], true);
    expect(result.errors.map((e) => e.line)).toEqual([a.line, b.line]);
    expect(result.errors[0]!.message).toMatch(new RegExp(`lines ${a.line}, ${b.line}`));
    // Present (if refused), so not terminated; the repeat is one hire.
    expect(types(result)).toEqual({ '304': ['hire'] });
  });

  it('refuses a header without the id or status column', () => {
    expect(() => checkHeader(['WorkerStatus', 'FirstName', 'LastName'], config.csv)).toThrow(CsvFormatError);
    expect(checkHeader(HEADER, config.csv).warnings).toEqual([expect.stringMatching(/not in the file/)]);
  });
});

describe('stable event ids', () => {
  it('gives the same ids for the same file and identities, so a re-import stores nothing new', () => {
    const known = [knownAs('400', 'active')];
    const first = plan([row({ WorkerID: '400', JobTitle: 'Lead' }), row({ WorkerID: '401' })], known);
    const again = plan([row({ WorkerID: '400', JobTitle: 'Lead' }), row({ WorkerID: '401' })], known, false);
    expect(again.events.map((e) => e.id)).toEqual(first.events.map((e) => e.id));
    expect(first.events.every((e) => /^csv:[0-9a-f]{64}$/.test(e.id))).toBe(true);
  });

  it('changes with the type, the attributes and the identity version', () => {
    const base = csvEventId('400', 'update', { title: 'Lead' }, 'v1');
    expect(csvEventId('400', 'update', { title: 'Lead' }, 'v1')).toBe(base);
    expect(csvEventId('400', 'update', { title: 'Chief' }, 'v1')).not.toBe(base);
    expect(csvEventId('400', 'leave_start', {}, 'v1')).not.toBe(csvEventId('400', 'leave_end', {}, 'v1'));
    // After the engine applied a change, the same change again is a new event (a second leave).
    expect(csvEventId('400', 'update', { title: 'Lead' }, 'v2')).not.toBe(base);
    // Attribute order does not matter.
    expect(csvEventId('1', 'hire', { a: '1', b: '2' })).toBe(csvEventId('1', 'hire', { b: '2', a: '1' }));
  });
});

describe('what a dry run says about entitlements', () => {
  it('names the birthright entitlements a hire, a mover and a leaver gain or lose, with the rules', () => {
    const result = plan(
      [row({ WorkerID: '500' }), row({ WorkerID: '501', Department: 'Finance' }), row({ WorkerID: '502', WorkerStatus: 'Inactive' })],
      [knownAs('501', 'active'), knownAs('502', 'active')],
    );
    const effects = Object.fromEntries(result.people.map((p) => [p.employeeId, birthrightEffects(config.birthright, p)]));
    expect(effects['500']).toEqual({
      grant: [
        { entitlementId: 'directory-account', rules: ['everyone'] },
        { entitlementId: 'employees', rules: ['employees'] },
        { entitlementId: 'sales', rules: ['sales'] },
      ],
      revoke: [],
    });
    expect(effects['501']).toEqual({ grant: [], revoke: [{ entitlementId: 'sales', rules: ['sales'] }] });
    expect(effects['502']!.grant).toEqual([]);
    expect(effects['502']!.revoke.map((g) => g.entitlementId)).toEqual(['directory-account', 'employees', 'sales']);
  });
});

describe('employee ids are canonical', () => {
  const withManager = (r: CsvRow, managerId: string): CsvRow => ({ ...r, values: { ...r.values, ManagerID: managerId } });

  it('plans `e600` as E600, with the event id of `E600`, and the manager id canonical', () => {
    const lower = plan([withManager(row({ WorkerID: 'e600' }), 'e0001')]);
    const upper = plan([withManager(row({ WorkerID: 'E600' }), 'E0001')]);
    expect(lower.events).toEqual([expect.objectContaining({ employeeId: 'E600', type: 'hire', attributes: expect.objectContaining({ managerId: 'E0001' }) })]);
    expect(lower.people.map((p) => p.employeeId)).toEqual(['E600']);
    expect(lower.events.map((e) => e.id)).toEqual(upper.events.map((e) => e.id));
    // Against the known E601, a row for `e601` that matches is that person, unchanged.
    expect(plan([row({ WorkerID: 'e601' })], [knownAs('E601', 'active')])).toMatchObject({ events: [], unchanged: 1 });
    // A person stored in another spelling (before ids were folded) is matched too: never
    // terminated as absent from a full snapshot that lists them.
    const full = plan([row({ WorkerID: 'E611', WorkerStatus: 'Inactive' }), row({ WorkerID: 'E612' })], [knownAs('e611', 'active'), knownAs('e612', 'active')], true);
    expect(full.events.map((e) => [e.employeeId, e.type])).toEqual([['E611', 'terminate']]);
  });

  it('refuses a padded id with a line error instead of trimming it; the person it names is not terminated', () => {
    const padded = row({ WorkerID: ' E602 ' });
    const result = plan([padded, row({ WorkerID: 'E603' })], [knownAs('E602', 'active'), knownAs('E603', 'active')], true);
    expect(result.errors).toEqual([{ line: padded.line, message: 'WorkerID must be 1..64 characters of letters, digits, . _ -', columns: ['WorkerID'] }]);
    expect(result.events).toEqual([]);
  });

  it('refuses a padded or malformed manager id, naming the column', () => {
    const padded = withManager(row({ WorkerID: 'E604' }), ' E0001');
    const malformed = withManager(row({ WorkerID: 'E605' }), 'Grace Hopper');
    const result = plan([padded, malformed]);
    expect(result.errors).toEqual([
      { line: padded.line, employeeId: 'E604', message: 'ManagerID must be 1..64 characters of letters, digits, . _ -', columns: ['ManagerID'] },
      { line: malformed.line, employeeId: 'E605', message: 'ManagerID must be 1..64 characters of letters, digits, . _ -', columns: ['ManagerID'] },
    ]);
    expect(result.events).toEqual([]);
  });

  it('sees `e606` and `E606` on two lines with different data as one id named twice: both refused', () => {
    const a = row({ WorkerID: 'e606', FirstName: 'Ada' });
    const b = row({ WorkerID: 'E606', FirstName: 'Grace' });
    const result = plan([a, b]);
    expect(result.errors.map((e) => [e.line, e.employeeId])).toEqual([
      [a.line, 'E606'],
      [b.line, 'E606'],
    ]);
    expect(result.events).toEqual([]);
    // The same data in two spellings is an exact repeat: one hire.
    expect(types(plan([row({ WorkerID: 'e607' }), row({ WorkerID: 'E607' })]))).toEqual({ E607: ['hire'] });
  });

  it('reads cells as written: a padded id in the file, quoted or not, reaches the planner padded and is refused', async () => {
    const file = 'WorkerID , WorkerStatus,FirstName,LastName\n E608 ,Active, Ada ,Lovelace\n" E609",Active,Grace,Hopper\nE610,Active,Edsger,Dijkstra\n';
    const read = await readCsv(file, config);
    expect(read.errors).toEqual([]);
    const result = plan(read.rows);
    expect(result.errors.map((e) => [e.line, e.message])).toEqual([
      [2, 'WorkerID must be 1..64 characters of letters, digits, . _ -'],
      [3, 'WorkerID must be 1..64 characters of letters, digits, . _ -'],
    ]);
    expect(result.events).toEqual([expect.objectContaining({ employeeId: 'E610', type: 'hire', attributes: { givenName: 'Edsger', familyName: 'Dijkstra' } })]);
  });
});

describe('cells go through the one attribute schema: refused, never trimmed or repaired', () => {
  // [what, column, cell, message]: each a row error naming the column; nothing planned.
  const cases: Array<[string, string, string, string]> = [
    ['a 257-character title', 'JobTitle', 'x'.repeat(257), 'JobTitle must be at most 256 characters'],
    ['a 100,000-character title', 'JobTitle', 'x'.repeat(100_000), 'JobTitle must be at most 256 characters'],
    ['a 65-character worker type', 'WorkerType', 'x'.repeat(65), 'WorkerType must be at most 64 characters'],
    ['a padded name', 'FirstName', ' Ada ', 'FirstName must not start or end with white space'],
    ['a cell of spaces', 'Department', '   ', 'Department must not start or end with white space'],
    ['a NUL', 'LastName', 'Love\u0000lace', 'LastName must not contain control characters, NUL or bidirectional overrides'],
    ['a terminal escape', 'JobTitle', '\u001b[2J\u001b[31mBoss', 'JobTitle must not contain control characters, NUL or bidirectional overrides'],
    ['an RTL override', 'LastName', 'Love\u202Elace', 'LastName must not contain control characters, NUL or bidirectional overrides'],
    ['a non-NFC name', 'FirstName', 'Ade\u0301le', 'FirstName must be in Unicode normalisation form NFC'],
    ['a padded status', 'WorkerStatus', 'Active ', 'WorkerStatus must not start or end with white space'],
    ['a padded leave flag', 'OnLeave', ' True', 'OnLeave must not start or end with white space'],
    ['a padded hire date', 'HireDate', ' 2020-01-06', 'HireDate must not start or end with white space'],
  ];

  it.each(cases)('refuses %s, naming the column', (_what, column, cell, message) => {
    const bad = row({ WorkerID: '700', [column]: cell });
    const result = plan([bad]);
    expect(result.errors).toEqual([{ line: bad.line, employeeId: '700', message, columns: [column] }]);
    expect(result.events).toEqual([]);
  });

  it('refuses the same cells on an update, and a refused row never terminates its person', () => {
    const known = [knownAs('701', 'active'), knownAs('702', 'active')];
    const result = plan([row({ WorkerID: '701', JobTitle: ' Lead' }), row({ WorkerID: '702', WorkerStatus: ' Inactive' })], known, true);
    expect(result.errors.map((e) => e.columns)).toEqual([['JobTitle'], ['WorkerStatus']]);
    expect(result.events).toEqual([]);
  });

  it('refuses a blank status instead of reading it as "not active": a live person is not terminated by it', () => {
    const blank = row({ WorkerID: '703', WorkerStatus: '' });
    const result = plan([blank], [knownAs('703', 'active')]);
    expect(result.errors).toEqual([{ line: blank.line, employeeId: '703', message: 'WorkerStatus is empty', columns: ['WorkerStatus'] }]);
    expect(result.events).toEqual([]);
  });

  it('names every bad column of a row, an attribute the engine does not know included', () => {
    const bad = { ...row({ WorkerID: '703', FirstName: ' Ada', JobTitle: 'x'.repeat(300) }), values: { ...row({}).values, WorkerID: '703', FirstName: ' Ada', JobTitle: 'x'.repeat(300), FullName: 'y'.repeat(5_000) } };
    const result = plan([bad]);
    expect(result.errors).toHaveLength(1);
    expect(result.errors[0]!.columns!.sort()).toEqual(['FirstName', 'FullName', 'JobTitle']);
    expect(result.errors[0]!.message).toMatch(/FirstName must not start or end with white space/);
    // A missing name is reported as missing only when its cell is empty, not when another cell is bad.
    expect(result.errors[0]!.message).not.toMatch(/is empty/);
  });

  it('takes values at the limits exactly as written: 256 characters, composed accents, inner spaces', () => {
    const title = 't'.repeat(256);
    const result = plan([row({ WorkerID: '704', FirstName: 'Ad\u00e8le', LastName: 'de la Cruz', JobTitle: title, WorkerStatus: 'ACTIVE' })]);
    expect(result.errors).toEqual([]);
    expect(result.events[0]!.attributes).toMatchObject({ givenName: 'Ad\u00e8le', familyName: 'de la Cruz', title });
  });

  it('leaves an empty cell out of a hire, and an empty cell clears on an update', () => {
    const hire = plan([row({ WorkerID: '705', JobTitle: '' })]);
    expect(hire.events[0]!.attributes).not.toHaveProperty('title');
    const update = plan([row({ WorkerID: '706', JobTitle: '' })], [knownAs('706', 'active')]);
    expect(update.events[0]!.attributes).toEqual({ title: null });
  });
});

describe('planning in steps', () => {
  it('yields between steps and plans exactly what planCsvImport plans', () => {
    const rows = Array.from({ length: 1_000 }, (_, i) => row({ WorkerID: `S${i}` }));
    const steps = planCsvImportSteps(rows, config.csv, [], { fullSnapshot: false, now: NOW });
    let yields = 0;
    let step = steps.next();
    for (; !step.done; step = steps.next()) yields += 1;
    expect(yields).toBeGreaterThan(1);
    expect(step.value).toEqual(plan(rows));
  });
});

describe('reading a file: what refuses it whole', () => {
  const HEAD = 'WorkerID,WorkerStatus,FirstName,LastName';
  const refusal = async (input: Parameters<typeof readCsv>[0]) => {
    const error = await readCsv(input, config).then(
      () => null,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(CsvFormatError);
    return (error as CsvFormatError).problems;
  };

  it('refuses a column named twice, as the mapping matches names (after trimming the header cell)', async () => {
    expect(await refusal(`WorkerID,WorkerStatus,FirstName,LastName,WorkerID\nE1,Active,Ada,Lovelace,E2\n`)).toEqual([
      { field: 'header.WorkerID', message: 'column "WorkerID" is in the header more than once (columns 1 and 5)' },
    ]);
    expect(await refusal(`${HEAD}, LastName\nE1,Active,Ada,Lovelace,Hopper\n`)).toEqual([{ field: 'header.LastName', message: expect.stringMatching(/columns 4 and 5/) }]);
    // Columns the mapping does not read count too: which of the two is meant is a guess.
    expect(await refusal(`${HEAD},Notes,Notes\nE1,Active,Ada,Lovelace,a,b\n`)).toEqual([{ field: 'header.Notes', message: expect.any(String) }]);
  });

  it('shows a hostile column name escaped in the message', async () => {
    const [problem] = await refusal(`${HEAD},\u001b[2J,\u001b[2J\nE1,Active,Ada,Lovelace,a,b\n`);
    expect(problem!.message).toContain('\\u001b[2J');
    expect(problem!.message + problem!.field).not.toContain('\u001b');
  });

  it(`refuses more than ${CSV_LIMITS.columns} columns, at the header or at a row, a 100,000-column header included`, async () => {
    const names = (n: number) => Array.from({ length: n }, (_, i) => `C${i}`);
    const columns = { field: 'columns', message: `a line may have at most ${CSV_LIMITS.columns} columns` };
    expect(await refusal(`${[HEAD, ...names(CSV_LIMITS.columns - 3)].join(',')}\n`)).toEqual([columns]);
    const wide = names(100_000);
    const file = [[HEAD, ...wide].join(','), ...Array.from({ length: 20 }, (_, i) => [`E${i}`, 'Active', 'A', 'B', ...wide].join(','))].join('\n');
    expect(await refusal(file)).toEqual([columns]);
    expect(await refusal(`${HEAD}\nE1,Active,Ada,Lovelace${','.repeat(100_000)}\n`)).toEqual([columns]);
    // At the limit, the file is read.
    const atLimit = names(CSV_LIMITS.columns - 4);
    const read = await readCsv(`${[HEAD, ...atLimit].join(',')}\n${['E1', 'Active', 'Ada', 'Lovelace', ...atLimit].join(',')}\n`, config);
    expect(read.rows).toHaveLength(1);
  });

  it(`refuses a record longer than ${CSV_LIMITS.lineCharacters} characters, on one line or quoted across many`, async () => {
    const line = { field: 'line', message: `the record at line 3 is too long: a line may have at most ${CSV_LIMITS.lineCharacters} characters` };
    expect(await refusal(`${HEAD}\nE1,Active,Ada,Lovelace\nE2,Active,Ada,${'x'.repeat(CSV_LIMITS.lineCharacters)}\n`)).toEqual([line]);
    expect(await refusal(`${HEAD}\nE1,Active,Ada,Lovelace\nE2,Active,Ada,"${'x\n'.repeat(CSV_LIMITS.lineCharacters)}"\n`)).toEqual([
      { field: 'line', message: expect.stringMatching(/too long: a line may have at most/) },
    ]);
    // Empty cells cost no characters, but bytes: a line of a million commas is refused too.
    expect((await refusal(`${HEAD}\n${','.repeat(1_000_000)}\n`))[0]!.field).toMatch(/^(line|columns)$/);
  });

  it(`refuses more than ${CSV_LIMITS.rows} rows, and a file of more than ${CSV_LIMITS.fileBytes} bytes read from a stream`, async () => {
    expect(await refusal(`${HEAD}\n${'E1,Active,Ada,Lovelace\n'.repeat(CSV_LIMITS.rows + 1)}`)).toEqual([{ field: 'rows', message: `a file may have at most ${CSV_LIMITS.rows} rows` }]);
    const bigRow = `E1,Active,Ada,${'x'.repeat(60_000)}\n`;
    const chunks = [`${HEAD}\n`, ...Array.from({ length: Math.ceil(CSV_LIMITS.fileBytes / bigRow.length) + 1 }, () => bigRow)];
    expect(await refusal(Readable.from(chunks))).toEqual([{ field: '(body)', message: `a file may be at most ${CSV_LIMITS.fileBytes / 1024 / 1024} MiB` }]);
  });

  it('refuses bytes that are not UTF-8, naming the first bad line, and a UTF-16 file', async () => {
    const file = Buffer.concat([Buffer.from(`${HEAD}\nE1,Active,Ada,Lovelace\nE2,Active,A`), Buffer.from([0xff, 0xfe]), Buffer.from(',B\n')]);
    expect(await refusal(file)).toEqual([{ field: '(body)', message: 'must be UTF-8 text; line 3 is not' }]);
    expect(await refusal(Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(`${HEAD}\n`, 'utf16le')]))).toEqual([{ field: '(body)', message: 'must be UTF-8 text; line 1 is not' }]);
  });

  it('reads UTF-8 whole however it is cut: a BOM, characters split across chunks and across pieces of a long line', async () => {
    const long = '\u00e9'.repeat(20_000); // 40,000 bytes: cut inside the line, never inside a character
    const text = `\ufeff${HEAD},Notes\nE1,Active,Zo\u00eb,\u0141ukasiewicz,${long}\nE2,Active,\u00c5sa,\u20ac\u{1F600},x\n`;
    const bytes = Buffer.from(text, 'utf8');
    const inChunksOf7 = Readable.from(Array.from({ length: Math.ceil(bytes.length / 7) }, (_, i) => bytes.subarray(i * 7, i * 7 + 7)));
    for (const input of [bytes, inChunksOf7]) {
      const read = await readCsv(input, config);
      expect(read.errors).toEqual([]);
      expect(read.rows.map((r) => r.values)).toEqual([
        { WorkerID: 'E1', WorkerStatus: 'Active', FirstName: 'Zo\u00eb', LastName: '\u0141ukasiewicz', Notes: long },
        { WorkerID: 'E2', WorkerStatus: 'Active', FirstName: '\u00c5sa', LastName: '\u20ac\u{1F600}', Notes: 'x' },
      ]);
    }
  });
});
