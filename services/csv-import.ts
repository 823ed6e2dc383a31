// CSV snapshot import, the I/O part: stream-parse the extract (csv-parse: quoted or not,
// BOM, CRLF, cells untrimmed), load the identities the engine knows, plan with
// domain/csv-import.ts, and submit the events as one feed (services/feeds.ts), so every
// terminate is behind the brake.
// A dry run stops after the plan and changes nothing. Shared by `jml import` and
// `POST /api/v1/hr/imports`; no Temporal, no activities.
//
// The API, the Temporal worker and the ingestion worker share one event loop, so no file
// may hold it for long: the bytes go to the parser in small pieces with a turn of the
// event loop between them, the planner runs in steps, and a file past a limit (columns,
// line length, rows, size: CSV_LIMITS) is refused as soon as the limit is met.
import { Buffer, isUtf8 } from 'node:buffer';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Queue } from 'bullmq';
import { count, eq } from 'drizzle-orm';
import { parse } from 'csv-parse';
import type { Db } from '../db/client.js';
import { brakeOutlook, submitFeed } from './feeds.js';
import type { NewHrEvent } from '../db/inbox.js';
import { hrEvents, identities } from '../db/schema.js';
import type { BirthrightGrant } from '../domain/birthright.js';
import type { JmlConfig } from '../domain/config.js';
import {
  birthrightEffects,
  checkHeader,
  CSV_LIMITS,
  csvLimitProblems,
  CsvFormatError,
  planCsvImportSteps,
  type CsvRow,
  type KnownIdentity,
  type PlannedEvent,
  type RowError,
} from '../domain/csv-import.js';
import type { HrEventType, IdentityAttributes, IdentityStatus } from '../domain/types.js';
import type { HrEventJob } from './hr-event-queue.js';

export interface CsvImportDeps {
  db: Db;
  queue: Queue<HrEventJob>;
  config: JmlConfig;
}

export interface CsvImportOptions {
  /** Who imports, for the audit log. */
  actor: string;
  /** The file is everyone: known live people absent from it are terminated (behind the brake). */
  fullSnapshot?: boolean;
  /** Plan and report; store nothing. */
  dryRun?: boolean;
  now?: Date;
  /** Called as rows are read, with the count so far and the bytes consumed (for progress bars). */
  onProgress?: (progress: { rows: number; bytes: number }) => void;
}

export interface PersonOutcome {
  employeeId: string;
  /** Line in the file; null when absent from it (full-snapshot terminate). */
  line: number | null;
  statusBefore: IdentityStatus | null;
  events: Array<{ type: HrEventType; effectiveAt: string; attributes: IdentityAttributes }>;
  /** Birthright entitlements the events would grant or revoke, with the rules behind each. */
  grant: BirthrightGrant[];
  revoke: BirthrightGrant[];
}

export interface CsvImportResult {
  dryRun: boolean;
  fullSnapshot: boolean;
  rows: number;
  /** Planned events by kind. */
  counts: Record<HrEventType, number>;
  /** Of those, how many were new to the inbox (a re-import of the same file stores none). */
  stored: number;
  skippedInactive: number;
  unchanged: number;
  errors: RowError[];
  warnings: string[];
  /** The feed the events went in with; null for a dry run or when there was nothing to do. */
  batchId: string | null;
  batchStatus: 'accepted' | 'held' | null;
  /** Per person, for a dry run only. */
  plan?: PersonOutcome[];
  /** For a dry run: whether the mass-leaver brake would hold this feed's terminations. */
  brake?: { terminations: number; activeIdentities: number; wouldHold: boolean };
}

/** Bytes handed to the parser at a time: a few milliseconds of parsing, then other work may run. */
const PIECE_BYTES = 16 * 1024;

/**
 * Bytes one physical line of an acceptable record can take at most: its cells' characters
 * (3 bytes each at most; a doubled quote is 2 bytes for 1), delimiters and quotes. A longer
 * line is refused here, before the parser collects an array of its (say, empty) cells.
 */
const MAX_LINE_BYTES = 4 * CSV_LIMITS.lineCharacters;

/**
 * The input in pieces of about PIECE_BYTES, cut after a line end where there is one (else
 * at a character boundary), each checked to be UTF-8 before the parser sees it: a file that
 * is not is refused naming its first bad line, never decoded into U+FFFD. Waits for the next
 * turn of the event loop before each piece, and refuses a file past CSV_LIMITS.fileBytes or
 * a line past MAX_LINE_BYTES.
 */
async function* utf8Pieces(input: Readable | Buffer | string, onBytes: (n: number) => void): AsyncGenerator<Buffer> {
  const chunks: AsyncIterable<Buffer | string> | Iterable<Buffer | string> = typeof input === 'string' || Buffer.isBuffer(input) ? [input] : input;
  let pending: Buffer = Buffer.alloc(0);
  let total = 0;
  let line = 1;
  /** Bytes of the current line before this piece. */
  let lineBytes = 0;
  const check = (piece: Buffer) => {
    if (!isUtf8(piece)) {
      // Find the line to name: the piece's lines one by one (0x0a is never inside a character).
      let bad = line;
      for (let start = 0, end = piece.indexOf(0x0a); end !== -1 && isUtf8(piece.subarray(start, end)); start = end + 1, end = piece.indexOf(0x0a, start)) bad += 1;
      throw new CsvFormatError([{ field: '(body)', message: `must be UTF-8 text; line ${bad} is not` }]);
    }
    // Pieces are smaller than the limit: only the line the piece continues can pass it.
    const firstEnd = piece.indexOf(0x0a);
    if (lineBytes + (firstEnd === -1 ? piece.length : firstEnd) > MAX_LINE_BYTES) throw new CsvFormatError([csvLimitProblems.line(line)]);
    if (firstEnd === -1) {
      lineBytes += piece.length;
      return;
    }
    for (let i = firstEnd; i !== -1; i = piece.indexOf(0x0a, i + 1)) line += 1;
    lineBytes = piece.length - piece.lastIndexOf(0x0a) - 1;
  };
  for await (const chunk of chunks) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    total += bytes.length;
    if (total > CSV_LIMITS.fileBytes) throw new CsvFormatError([csvLimitProblems.fileBytes()]);
    pending = pending.length ? Buffer.concat([pending, bytes]) : bytes;
    while (pending.length >= PIECE_BYTES) {
      let cut = pending.lastIndexOf(0x0a, PIECE_BYTES - 1) + 1;
      if (cut === 0) {
        // Inside a long line: cut before a UTF-8 continuation byte, never in a character.
        cut = PIECE_BYTES;
        for (let back = 0; back < 3 && (pending[cut]! & 0xc0) === 0x80; back++) cut -= 1;
      }
      const piece = pending.subarray(0, cut);
      pending = pending.subarray(cut);
      check(piece);
      await nextTurn();
      onBytes(piece.length);
      yield piece;
    }
  }
  if (pending.length) {
    check(pending);
    await nextTurn();
    onBytes(pending.length);
    yield pending;
  }
}

/**
 * Reads the extract; malformed records are reported per line and skipped. Throws
 * CsvFormatError for a file that cannot be imported at all: a bad header (missing or
 * repeated columns), bytes that are not UTF-8, or a limit of CSV_LIMITS met.
 */
export async function readCsv(
  input: Readable | Buffer | string,
  config: JmlConfig,
  onProgress?: CsvImportOptions['onProgress'],
): Promise<{ rows: CsvRow[]; errors: RowError[]; warnings: string[] }> {
  const rows: CsvRow[] = [];
  const errors: RowError[] = [];
  let warnings: string[] = [];
  let sawHeader = false;
  const countRow = () => {
    if (rows.length + errors.length > CSV_LIMITS.rows) throw new CsvFormatError([csvLimitProblems.rows()]);
  };
  // Cells are read as written (RFC 4180: spaces are part of a field): the planner refuses a
  // padded cell instead of repairing it.
  const parser = parse({
    bom: true,
    skip_empty_lines: true,
    info: true,
    columns: (header: string[]) => {
      sawHeader = true;
      const names = header.map((name) => name.trim());
      warnings = checkHeader(names, config.csv).warnings;
      return names;
    },
    max_record_size: CSV_LIMITS.lineCharacters,
    // One broken record (a wrong number of fields, a stray quote) costs that record only.
    skip_records_with_error: true,
    on_skip: (err) => {
      // A record past a limit refuses the file (throwing here stops the parser). Past the
      // length limit, the cells read so far (`index`) tell whether it passed the column
      // limit first, as a very wide header does.
      if (err?.code === 'CSV_MAX_RECORD_SIZE') {
        throw new CsvFormatError([Number(err.index) >= CSV_LIMITS.columns ? csvLimitProblems.columns() : csvLimitProblems.line(Number(err.lines))]);
      }
      if (err?.code === 'CSV_RECORD_INCONSISTENT_COLUMNS' && Array.isArray(err.record) && err.record.length > CSV_LIMITS.columns) {
        throw new CsvFormatError([csvLimitProblems.columns()]);
      }
      if (err) errors.push({ line: Number(err.lines), message: err.message });
      countRow();
      return undefined;
    },
  });
  let bytes = 0;
  try {
    await pipeline(
      utf8Pieces(input, (n) => (bytes += n)),
      parser,
      async (records: AsyncIterable<{ record: Record<string, string>; info: { lines: number } }>) => {
        for await (const { record, info } of records) {
          rows.push({ line: info.lines, values: record });
          countRow();
          if (onProgress && rows.length % 50 === 0) onProgress({ rows: rows.length, bytes });
        }
      },
    );
  } catch (err) {
    if (err instanceof CsvFormatError) throw err;
    // A header function that threw arrives wrapped by csv-parse.
    const cause = (err as { cause?: unknown }).cause;
    if (cause instanceof CsvFormatError) throw cause;
    throw new CsvFormatError([{ field: '(body)', message: (err as Error).message }]);
  }
  if (!sawHeader) throw new CsvFormatError([{ field: '(body)', message: 'the file is empty (no header line)' }]);
  onProgress?.({ rows: rows.length, bytes });
  return { rows, errors, warnings };
}

/** Runs a stepped computation to its end, letting other work run between its steps. */
async function inTurns<T>(steps: Generator<void, T, void>): Promise<T> {
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
    await nextTurn();
  }
}

/**
 * The identities with their version for event ids: when the row last changed, and how many
 * of the person's events were rejected. The second part matters for discarded brake
 * batches: a discard changes nothing on the identity, and without it the next extract that
 * (rightly) drops the same person would plan the same terminate id, find it stored as
 * rejected, and never terminate them.
 */
export async function loadKnownIdentities(db: Db): Promise<KnownIdentity[]> {
  const rows = await db
    .select({ employeeId: identities.employeeId, status: identities.status, attributes: identities.attributes, updatedAt: identities.updatedAt })
    .from(identities);
  const rejected = await db.select({ employeeId: hrEvents.employeeId, n: count() }).from(hrEvents).where(eq(hrEvents.status, 'rejected')).groupBy(hrEvents.employeeId);
  const rejectedBy = new Map(rejected.map((r) => [r.employeeId, r.n]));
  return rows.map((r) => ({
    employeeId: r.employeeId,
    status: r.status as IdentityStatus,
    attributes: r.attributes,
    version: `${r.updatedAt.toISOString()}#${rejectedBy.get(r.employeeId) ?? 0}`,
  }));
}

function toNewHrEvent(event: PlannedEvent, line: number | null): NewHrEvent {
  return {
    id: event.id,
    employeeId: event.employeeId,
    type: event.type,
    effectiveAt: event.effectiveAt,
    // The shape of a webhook payload, so the dispatcher and timeline read it the same way.
    payload: { type: event.type, employeeId: event.employeeId, effectiveAt: event.effectiveAt.toISOString(), attributes: event.attributes, ...(line !== null ? { line } : {}) },
    source: 'csv',
  };
}

export async function importCsv(deps: CsvImportDeps, input: Readable | Buffer | string, options: CsvImportOptions): Promise<CsvImportResult> {
  const fullSnapshot = options.fullSnapshot ?? false;
  const dryRun = options.dryRun ?? false;
  const parsed = await readCsv(input, deps.config, options.onProgress);
  const known = await loadKnownIdentities(deps.db);
  const plan = await inTurns(planCsvImportSteps(parsed.rows, deps.config.csv, known, { fullSnapshot, now: options.now ?? new Date() }));
  const errors = [...parsed.errors, ...plan.errors].sort((a, b) => a.line - b.line);
  const base = { dryRun, fullSnapshot, rows: plan.rows + parsed.errors.length, counts: plan.counts, skippedInactive: plan.skippedInactive, unchanged: plan.unchanged, errors, warnings: parsed.warnings };

  if (dryRun) {
    const people: PersonOutcome[] = [];
    for (const person of plan.people) {
      const effects = birthrightEffects(deps.config.birthright, person);
      people.push({
        employeeId: person.employeeId,
        line: person.line,
        statusBefore: person.before?.status ?? null,
        events: person.events.map((e) => ({ type: e.type, effectiveAt: e.effectiveAt.toISOString(), attributes: e.attributes })),
        grant: effects.grant,
        revoke: effects.revoke,
      });
      if (people.length % 500 === 0) await nextTurn();
    }
    // The same rolling window a real import would meet, not the file alone.
    const brake = await brakeOutlook(deps.db, deps.config.brake, plan.counts.terminate);
    return { ...base, stored: 0, batchId: null, batchStatus: null, plan: people, brake };
  }
  if (plan.events.length === 0) return { ...base, stored: 0, batchId: null, batchStatus: null };

  const events = plan.people.flatMap((person) => person.events.map((e) => toNewHrEvent(e, person.line)));
  const fed = await submitFeed(deps, { source: 'csv', actor: options.actor, events });
  return { ...base, stored: fed.results.filter((r) => r.created).length, batchId: fed.batchId, batchStatus: fed.status };
}
