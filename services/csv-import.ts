// CSV snapshot import, the I/O part: stream-parse the extract (csv-parse: quoted or not,
// BOM, CRLF, cells untrimmed), load the identities the engine knows, plan with
// domain/csv-import.ts, and submit the events as one feed (services/feeds.ts), so every
// terminate is behind the brake.
// A dry run stops after the plan and changes nothing. Shared by `jml import` and
// `POST /api/v1/hr/imports`; no Temporal, no activities.
import { Readable } from 'node:stream';
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
  CsvFormatError,
  planCsvImport,
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

/** Reads the extract; malformed records are reported per line and skipped. Throws CsvFormatError for a bad header. */
export async function readCsv(
  input: Readable | Buffer | string,
  config: JmlConfig,
  onProgress?: CsvImportOptions['onProgress'],
): Promise<{ rows: CsvRow[]; errors: RowError[]; warnings: string[] }> {
  const rows: CsvRow[] = [];
  const errors: RowError[] = [];
  let warnings: string[] = [];
  let sawHeader = false;
  // Cells are read as written (RFC 4180: spaces are part of a field): the planner trims
  // attribute text itself and refuses a padded employee id instead of repairing it.
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
    // One broken record (a wrong number of fields, a stray quote) costs that record only.
    skip_records_with_error: true,
    on_skip: (err) => {
      if (err) errors.push({ line: Number(err.lines), message: err.message });
      return undefined;
    },
  });
  const source = typeof input === 'string' || Buffer.isBuffer(input) ? Readable.from([input]) : input;
  let bytes = 0;
  source.on('data', (chunk: Buffer | string) => (bytes += chunk.length));
  try {
    for await (const { record, info } of source.pipe(parser) as AsyncIterable<{ record: Record<string, string>; info: { lines: number } }>) {
      rows.push({ line: info.lines, values: record });
      if (onProgress && rows.length % 50 === 0) onProgress({ rows: rows.length, bytes });
    }
  } catch (err) {
    if (err instanceof CsvFormatError) throw err;
    // A header function that threw arrives wrapped by csv-parse.
    const cause = (err as { cause?: unknown }).cause;
    if (cause instanceof CsvFormatError) throw cause;
    throw new CsvFormatError([(err as Error).message]);
  }
  if (!sawHeader) throw new CsvFormatError(['the file is empty (no header line)']);
  onProgress?.({ rows: rows.length, bytes });
  return { rows, errors, warnings };
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
  const plan = planCsvImport(parsed.rows, deps.config.csv, known, { fullSnapshot, now: options.now ?? new Date() });
  const errors = [...parsed.errors, ...plan.errors].sort((a, b) => a.line - b.line);
  const base = { dryRun, fullSnapshot, rows: plan.rows + parsed.errors.length, counts: plan.counts, skippedInactive: plan.skippedInactive, unchanged: plan.unchanged, errors, warnings: parsed.warnings };

  if (dryRun) {
    const people = plan.people.map((person): PersonOutcome => {
      const effects = birthrightEffects(deps.config.birthright, person);
      return {
        employeeId: person.employeeId,
        line: person.line,
        statusBefore: person.before?.status ?? null,
        events: person.events.map((e) => ({ type: e.type, effectiveAt: e.effectiveAt.toISOString(), attributes: e.attributes })),
        grant: effects.grant,
        revoke: effects.revoke,
      };
    });
    // The same rolling window a real import would meet, not the file alone.
    const brake = await brakeOutlook(deps.db, deps.config.brake, plan.counts.terminate);
    return { ...base, stored: 0, batchId: null, batchStatus: null, plan: people, brake };
  }
  if (plan.events.length === 0) return { ...base, stored: 0, batchId: null, batchStatus: null };

  const events = plan.people.flatMap((person) => person.events.map((e) => toNewHrEvent(e, person.line)));
  const fed = await submitFeed(deps, { source: 'csv', actor: options.actor, events });
  return { ...base, stored: fed.results.filter((r) => r.created).length, batchId: fed.batchId, batchStatus: fed.status };
}
