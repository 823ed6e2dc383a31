// CSV snapshot import, the pure part: given an HR extract's rows, the column mapping and
// the identities the engine knows, which HR events bring the engine in line with the file.
// No I/O: parsing the file, loading identities and storing the events are in
// services/csv-import.ts. (node:crypto's hash is pure; this module is not for workflows.)
//
//   in the file            known as                          emits
//   active                 unknown                           hire (+ leave_start when on leave)
//   active                 active / on_leave / pre_hire      update of the changed attributes only;
//                                                            leave_start (active, on leave), leave_end (on_leave, back)
//   active                 terminated / rescinded            rehire (+ leave_start when on leave)
//   inactive               active / on_leave / pre_hire      terminate
//   inactive               unknown                           nothing (counted as skipped)
//   absent                 active / on_leave / pre_hire      terminate, only for a full snapshot
// Every terminate goes through the mass-leaver brake (services/feeds.ts).
import { canonicalJson } from './canonical-json.js';
import { createHash } from 'node:crypto';
import { evaluateBirthright, type BirthrightGrant } from './birthright.js';
import type { BirthrightRule, CsvConfig } from './config.js';
import { parseAttributes, textProblem } from './attributes.js';
import { canonicalEmployeeId, EMPLOYEE_ID_RULE, parseEmployeeId } from './employee-id.js';
import { HR_EVENT_TYPES, type HrEventType, type IdentityAttributes, type IdentityStatus } from './types.js';

/**
 * The mapping used when the config's `csv.columns` is empty: it fits the HR sample extracts
 * (WorkerID, WorkerStatus, FirstName, ...). Columns with more personal data than access
 * decisions need (pronouns, street address, phone, zip code) are deliberately not read.
 */
export const DEFAULT_CSV_COLUMNS: Readonly<Record<string, string>> = {
  FirstName: 'givenName',
  LastName: 'familyName',
  FullName: 'displayName',
  UserID: 'userName',
  WorkerType: 'employmentType',
  ManagerID: 'managerId',
  Department: 'department',
  Division: 'division',
  CostCenter: 'costCenter',
  Company: 'company',
  Location: 'location',
  City: 'city',
  CountryCode: 'countryCode',
  JobTitle: 'title',
};

/** A joiner needs a name (as the webhook requires for a hire). */
export const REQUIRED_ATTRIBUTES = ['givenName', 'familyName'] as const;
/** Identities a termination would take access from. */
const LIVE: readonly IdentityStatus[] = ['active', 'on_leave', 'pre_hire'];

export interface CsvRow {
  /** Line of the file where the record ends (1 is the header). */
  line: number;
  values: Record<string, string>;
}

export interface KnownIdentity {
  employeeId: string;
  status: IdentityStatus;
  attributes: IdentityAttributes;
  /**
   * Changes whenever the engine applies a change to the person (identities.updated_at) or
   * rejects one of their events (a discarded brake batch). Part of each event id, so the
   * same change planned twice (a re-import before the workflow caught up) has one id, while
   * a later, real repeat (a second leave, A -> B again after B -> A, a leaver dropped again
   * after a discarded batch) gets a new one.
   */
  version?: string;
}

export interface PlannedEvent {
  id: string;
  employeeId: string;
  type: HrEventType;
  effectiveAt: Date;
  /** hire / rehire: every mapped attribute; update: the changed ones (null = cleared). */
  attributes: IdentityAttributes;
}

export interface PersonPlan {
  employeeId: string;
  /** null: absent from the file (full-snapshot terminate). */
  line: number | null;
  /** What the engine knows before the import; null for a new person. */
  before: { status: IdentityStatus; attributes: IdentityAttributes } | null;
  events: PlannedEvent[];
}

export interface RowError {
  line: number;
  employeeId?: string;
  message: string;
  /** The columns whose cells are at fault, when the problem is in particular cells. */
  columns?: string[];
}

export interface ImportPlan {
  people: PersonPlan[];
  events: PlannedEvent[];
  counts: Record<HrEventType, number>;
  rows: number;
  /** Rows for people the engine does not know who are inactive: nothing to do. */
  skippedInactive: number;
  /** Rows that matched what the engine knows. */
  unchanged: number;
  errors: RowError[];
}

export interface PlanOptions {
  /** The file lists everyone: known live people missing from it are terminated (behind the brake). */
  fullSnapshot: boolean;
  /** The import's time: effective time of every event that has no date of its own. */
  now: Date;
}

/**
 * What one file may hold. Beyond these a file is refused whole (CsvFormatError naming the
 * limit) before it costs much: the widest real HR extract has a few dozen columns, and a
 * line past 64 KiB or a file past 20 MiB is a mistake or an attack, not an extract.
 */
export const CSV_LIMITS = {
  columns: 200,
  /** Characters in one record (its cells; a quoted cell may span lines). */
  lineCharacters: 64 * 1024,
  /** Data rows, refused ones included. */
  rows: 100_000,
  fileBytes: 20 * 1024 * 1024,
} as const;

/** A reason the whole file is refused; `field` names what is wrong (`header.WorkerID`, `columns`, `line`, `rows`, `(body)`). */
export interface CsvFileProblem {
  field: string;
  message: string;
}

export class CsvFormatError extends Error {
  constructor(readonly problems: CsvFileProblem[]) {
    super(`the CSV cannot be imported: ${problems.map((p) => `${p.field}: ${p.message}`).join('; ')}`);
    this.name = 'CsvFormatError';
  }
}

/** The file problems for each limit, worded the same wherever the limit is met. */
export const csvLimitProblems = {
  columns: (): CsvFileProblem => ({ field: 'columns', message: `a line may have at most ${CSV_LIMITS.columns} columns` }),
  line: (line: number): CsvFileProblem => ({ field: 'line', message: `the record at line ${line} is too long: a line may have at most ${CSV_LIMITS.lineCharacters} characters` }),
  rows: (): CsvFileProblem => ({ field: 'rows', message: `a file may have at most ${CSV_LIMITS.rows} rows` }),
  fileBytes: (): CsvFileProblem => ({ field: '(body)', message: `a file may be at most ${CSV_LIMITS.fileBytes / 1024 / 1024} MiB` }),
};

/**
 * A column name for a message: quoted, cut short, and with control, invisible and
 * bidirectional characters escaped, so a hostile header cannot steer the terminal or the
 * reader that shows the message.
 */
export function showColumn(name: string): string {
  const short = name.length > 64 ? `${name.slice(0, 64)}...` : name;
  return JSON.stringify(short).replace(/[\u007f-\u009f\u200b-\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export function csvColumns(config: CsvConfig): Record<string, string> {
  return Object.keys(config.columns).length > 0 ? config.columns : { ...DEFAULT_CSV_COLUMNS };
}

/** The problem field for a header cell: `header.WorkerID`, or escaped when the name is not plain text. */
const headerField = (name: string) => (textProblem(name, 64) === null ? `header.${name}` : `header[${showColumn(name)}]`);

/**
 * Checks the header before any row (names as the mapping matches them: exactly, after
 * trimming the header cell). A name given twice is refused (which cell would count is a
 * guess); without the id and status columns nothing can be planned. Both are a
 * CsvFormatError. Missing mapped columns are returned as warnings: an extract may leave
 * out optional ones.
 */
export function checkHeader(header: readonly string[], config: CsvConfig): { warnings: string[] } {
  if (header.length > CSV_LIMITS.columns) throw new CsvFormatError([csvLimitProblems.columns()]);
  const firstAt = new Map<string, number>();
  const duplicates: CsvFileProblem[] = [];
  header.forEach((name, i) => {
    const first = firstAt.get(name);
    if (first === undefined) firstAt.set(name, i);
    else duplicates.push({ field: headerField(name), message: `column ${showColumn(name)} is in the header more than once (columns ${first + 1} and ${i + 1})` });
  });
  if (duplicates.length) throw new CsvFormatError(duplicates);
  const present = new Set(header);
  const columns = csvColumns(config);
  const missing = [config.employeeIdColumn, config.statusColumn].filter((c) => !present.has(c));
  for (const attribute of REQUIRED_ATTRIBUTES) {
    const column = Object.entries(columns).find(([, a]) => a === attribute)?.[0];
    if (!column) missing.push(`(a column mapped to ${attribute})`);
    else if (!present.has(column)) missing.push(column);
  }
  if (missing.length) throw new CsvFormatError([{ field: 'header', message: `missing column(s) ${missing.join(', ')}` }]);
  const optional = [config.onLeaveColumn, config.hireDateColumn, ...Object.keys(columns)].filter((c): c is string => !!c && !present.has(c));
  return { warnings: optional.length ? [`column(s) not in the file, ignored: ${[...new Set(optional)].join(', ')}`] : [] };
}


/** Stable: the same person, type, attributes and identity version give the same id. */
export function csvEventId(employeeId: string, type: HrEventType, attributes: IdentityAttributes, version = ''): string {
  const hash = createHash('sha256').update(canonicalJson([employeeId, type, attributes, version])).digest('hex');
  return `csv:${hash}`;
}

/** Status and leave values compare without regard to case; the config's own values may be padded, the file's may not. */
const fold = (s: string) => s.toLowerCase();

function parseHireDate(value: string): Date | null | 'invalid' {
  if (value === '') return null;
  // Bare dates are midnight UTC; anything Date.parse reads otherwise (ISO with time, offset).
  const date = new Date(/^\d{4}-\d{2}-\d{2}$/.test(value) ? `${value}T00:00:00Z` : value);
  return Number.isNaN(date.getTime()) ? 'invalid' : date;
}

/** A bad cell: its column and what is wrong with it. */
interface CellProblem {
  column: string;
  message: string;
}

/**
 * The mapped attributes of one row, through the one attribute schema every input uses
 * (domain/attributes.ts): cells as written, never trimmed or coerced. An empty cell is left
 * out (absent on a hire, cleared on an update). Each bad cell is a problem naming its
 * column; the manager's id comes back canonical. `given`: the attributes whose cell is not
 * empty, good or bad.
 */
function rowAttributes(values: Record<string, string>, columns: Record<string, string>): { attributes: IdentityAttributes; given: Set<string>; problems: CellProblem[] } {
  const cells: Record<string, string> = {};
  const columnOf = new Map<string, string>();
  for (const [column, attribute] of Object.entries(columns)) {
    const cell = values[column] ?? '';
    if (cell === '') continue;
    cells[attribute] = cell;
    columnOf.set(attribute, column);
  }
  const given = new Set(Object.keys(cells));
  const parsed = parseAttributes(cells);
  if (parsed.ok) return { attributes: parsed.attributes, given, problems: [] };
  // An issue's path starts with the attribute; the sender knows it by its column.
  const problems = parsed.issues.map((issue) => ({ column: columnOf.get(issue.attribute.split('.')[0]!) ?? '(row)', message: issue.message }));
  return { attributes: {}, given, problems };
}

/** A cell read for its value (status, leave, hire date): under the same text rule, so a padded one is refused, not guessed at. */
function cellProblem(values: Record<string, string>, column: string | undefined): CellProblem | null {
  if (!column) return null;
  const problem = textProblem(values[column] ?? '');
  return problem ? { column, message: problem } : null;
}

/** Mapped attributes whose value differs from what is known; a now empty cell clears (null). */
function changedAttributes(next: IdentityAttributes, known: IdentityAttributes, columns: Record<string, string>): IdentityAttributes {
  const changed: IdentityAttributes = {};
  for (const attribute of new Set(Object.values(columns))) {
    const was = known[attribute];
    const now = next[attribute];
    const wasSet = was !== undefined && was !== null && was !== '';
    if (now === undefined) {
      if (wasSet) changed[attribute] = null;
    } else if (String(was ?? '') !== now) {
      changed[attribute] = now;
    }
  }
  return changed;
}

export function emptyPlanCounts(): Record<HrEventType, number> {
  return Object.fromEntries(HR_EVENT_TYPES.map((type) => [type, 0])) as Record<HrEventType, number>;
}

/** Rows planned between two yields of planCsvImportSteps. */
const PLAN_STEP = 200;

/**
 * Plans the events for one extract. Bad rows (no id, a padded or malformed id, no name, a
 * cell the attribute schema refuses, a bad manager id, a bad date, a repeated id) are
 * reported with their line (and the columns at fault) and skipped; the rest of the file
 * goes on. A bad row with a usable id still counts as present, so a typo never terminates
 * anyone. Employee ids are canonical (domain/employee-id.ts) in the plan and in event ids,
 * so `e1001` and `E1001` rows make the same event.
 */
export function planCsvImport(rows: Iterable<CsvRow>, config: CsvConfig, known: readonly KnownIdentity[], options: PlanOptions): ImportPlan {
  const steps = planCsvImportSteps(rows, config, known, options);
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
  }
}

/**
 * planCsvImport in steps: it yields every few hundred rows, so a caller on a shared event
 * loop (the API) can let other work run between them (services/csv-import.ts). Pure: the
 * same input gives the same plan however it is stepped.
 */
export function* planCsvImportSteps(rows: Iterable<CsvRow>, config: CsvConfig, known: readonly KnownIdentity[], options: PlanOptions): Generator<void, ImportPlan, void> {
  const columns = csvColumns(config);
  const activeValues = new Set(config.activeValues.map((v) => fold(v.trim())));
  const onLeaveValues = new Set(config.onLeaveValues.map((v) => fold(v.trim())));
  // Keyed canonical, like the file's ids, so a row is matched to its person (and a known
  // person present in the file is never taken for absent) whatever the stored spelling.
  const knownById = new Map(known.map((k) => [canonicalEmployeeId(k.employeeId), k]));
  const rowList = [...rows];
  /** The row's id as written (never trimmed: a padded id is refused, as the webhook refuses it). */
  const idCell = (values: Record<string, string>) => values[config.employeeIdColumn] ?? '';
  // An id on several rows with different data is several people under one key (the HR
  // samples have many): importing any one of them would give someone another person's
  // account. All of those rows are refused; exact repeats of one row are harmless. Ids
  // compare canonical: `e1001` and `E1001` are one id.
  const linesById = new Map<string, CsvRow[]>();
  for (const [i, row] of rowList.entries()) {
    const id = parseEmployeeId(idCell(row.values));
    if (id) {
      const same = linesById.get(id);
      if (same) same.push(row);
      else linesById.set(id, [row]);
    }
    if ((i + 1) % PLAN_STEP === 0) yield;
  }
  /** What a row says: cells as read, its id canonical. */
  const content = (row: CsvRow) =>
    canonicalJson(Object.fromEntries(Object.entries(row.values).map(([column, cell]) => [column, column === config.employeeIdColumn ? parseEmployeeId(cell) : cell])));
  const ambiguous = new Set<string>();
  for (const [id, same] of linesById) {
    if (same.length < 2) continue;
    const first = content(same[0]!);
    if (same.some((r) => content(r) !== first)) ambiguous.add(id);
  }
  /** Ids present in the file (even on refused rows): never terminated as absent. */
  const seen = new Map<string, number>();
  const people: PersonPlan[] = [];
  const errors: RowError[] = [];
  let rowCount = 0;
  let skippedInactive = 0;
  let unchanged = 0;
  const now = options.now;
  // Events for one person that must apply in order (an update, then the leave) are a
  // millisecond apart: the workflow orders by effective time, then by id.
  const after = (t: Date) => new Date(Math.max(t.getTime(), now.getTime()) + 1);

  for (const { line, values } of rowList) {
    rowCount += 1;
    if (rowCount % PLAN_STEP === 0) yield;
    const cell = idCell(values);
    const employeeId = parseEmployeeId(cell);
    if (!employeeId) {
      // Refused, never repaired; but the person a padded id most likely names counts as
      // present, so a typo never terminates anyone.
      const meant = parseEmployeeId(cell.trim());
      if (meant) seen.set(meant, line);
      errors.push({ line, message: cell === '' ? `${config.employeeIdColumn} is empty` : `${config.employeeIdColumn} ${EMPLOYEE_ID_RULE}`, columns: [config.employeeIdColumn] });
      continue;
    }
    if (ambiguous.has(employeeId)) {
      seen.set(employeeId, line);
      const lines = linesById.get(employeeId)!.map((r) => r.line);
      errors.push({ line, employeeId, message: `${config.employeeIdColumn} ${employeeId} is on lines ${lines.join(', ')} with different data; none of them is imported` });
      continue;
    }
    if (seen.has(employeeId)) continue; // an exact repeat of a row already planned
    seen.set(employeeId, line);

    const { attributes, given, problems: attributeProblems } = rowAttributes(values, columns);
    const problems: CellProblem[] = REQUIRED_ATTRIBUTES.filter((a) => !given.has(a)).map((a) => {
      const column = Object.keys(columns).find((c) => columns[c] === a) ?? a;
      return { column, message: 'is empty' };
    });
    problems.push(...attributeProblems);
    for (const column of [config.statusColumn, config.onLeaveColumn, config.hireDateColumn]) {
      const problem = cellProblem(values, column);
      if (problem) problems.push(problem);
    }
    // A blank status says nothing: read as "not active", it would terminate a live person.
    if ((values[config.statusColumn] ?? '') === '') problems.push({ column: config.statusColumn, message: 'is empty' });
    const hireDateCell = config.hireDateColumn && !problems.some((p) => p.column === config.hireDateColumn) ? parseHireDate(values[config.hireDateColumn] ?? '') : null;
    if (hireDateCell === 'invalid') problems.push({ column: config.hireDateColumn!, message: 'is not a date' });
    if (problems.length) {
      errors.push({ line, employeeId, message: problems.map((p) => `${p.column} ${p.message}`).join('; '), columns: [...new Set(problems.map((p) => p.column))] });
      continue;
    }
    const hireDate = hireDateCell === 'invalid' ? null : hireDateCell;

    const active = activeValues.has(fold(values[config.statusColumn] ?? ''));
    const onLeave = config.onLeaveColumn ? onLeaveValues.has(fold(values[config.onLeaveColumn] ?? '')) : false;
    const person = knownById.get(employeeId);
    const version = person?.version ?? '';
    const events: PlannedEvent[] = [];
    const emit = (type: HrEventType, eventAttributes: IdentityAttributes, effectiveAt: Date) =>
      events.push({ id: csvEventId(employeeId, type, eventAttributes, version), employeeId, type, effectiveAt, attributes: eventAttributes });

    if (!person) {
      if (!active) {
        skippedInactive += 1;
        continue;
      }
      // The hire takes effect on the hire date (the workflow waits for a future one).
      const at = hireDate ?? now;
      emit('hire', attributes, at);
      if (onLeave) emit('leave_start', {}, after(at));
    } else if (!LIVE.includes(person.status)) {
      if (active) {
        // A rehire takes effect now, or on a future hire date; the file's old hire date
        // is before the termination and would read as stale.
        const at = hireDate && hireDate > now ? hireDate : now;
        emit('rehire', attributes, at);
        if (onLeave) emit('leave_start', {}, after(at));
      }
    } else if (!active) {
      emit('terminate', {}, now);
    } else {
      const changed = changedAttributes(attributes, person.attributes, columns);
      if (Object.keys(changed).length) emit('update', changed, now);
      if (person.status === 'active' && onLeave) emit('leave_start', {}, after(now));
      if (person.status === 'on_leave' && !onLeave) emit('leave_end', {}, after(now));
    }
    if (events.length === 0) unchanged += 1;
    else people.push({ employeeId, line, before: person ? { status: person.status, attributes: person.attributes } : null, events });
  }

  if (options.fullSnapshot) {
    for (const person of known) {
      if (seen.has(canonicalEmployeeId(person.employeeId)) || !LIVE.includes(person.status)) continue;
      people.push({
        employeeId: person.employeeId,
        line: null,
        before: { status: person.status, attributes: person.attributes },
        events: [{ id: csvEventId(person.employeeId, 'terminate', {}, person.version ?? ''), employeeId: person.employeeId, type: 'terminate', effectiveAt: now, attributes: {} }],
      });
    }
  }

  const events = people.flatMap((p) => p.events);
  const counts = emptyPlanCounts();
  for (const event of events) counts[event.type] += 1;
  return { people, events, counts, rows: rowCount, skippedInactive, unchanged, errors };
}

export interface EntitlementEffects {
  grant: BirthrightGrant[];
  revoke: BirthrightGrant[];
}

/**
 * What a person's planned events would do to their birthright entitlements, for a dry
 * run: the rules before (what is known) against after (the events applied). A leaver
 * loses everything; a leave of absence keeps its entitlements (the account is disabled).
 */
export function birthrightEffects(rules: readonly BirthrightRule[], person: PersonPlan): EntitlementEffects {
  const beforeAttributes = person.before && LIVE.includes(person.before.status) ? person.before.attributes : null;
  let afterAttributes: IdentityAttributes | null = beforeAttributes;
  for (const event of person.events) {
    if (event.type === 'hire' || event.type === 'rehire') afterAttributes = { ...(person.before?.attributes ?? {}), ...event.attributes };
    else if (event.type === 'update') afterAttributes = { ...(afterAttributes ?? {}), ...event.attributes };
    else if (event.type === 'terminate' || event.type === 'rescind') afterAttributes = null;
  }
  const before = beforeAttributes ? evaluateBirthright(rules, beforeAttributes) : [];
  const after = afterAttributes ? evaluateBirthright(rules, afterAttributes) : [];
  const had = new Set(before.map((g) => g.entitlementId));
  const has = new Set(after.map((g) => g.entitlementId));
  return { grant: after.filter((g) => !had.has(g.entitlementId)), revoke: before.filter((g) => !has.has(g.entitlementId)) };
}
