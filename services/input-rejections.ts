// `event_rejected` for HR input that an authenticated sender had refused as invalid (the HR
// webhook, SCIM bulk, the CSV import): HR is sending something this engine cannot take, and
// somebody should fix the source rather than let changes silently not happen. One alert per
// source and field (`event_rejected:<source>:<field>`), counted on every repeat. The alert
// names the field and the rule it broke, never a value from the payload (no personal data),
// and raising it is best effort: it never delays or changes the refusal itself.
import type { Db } from '../db/client.js';
import { raiseAlert } from './alerts.js';

export type RejectedInputSource = 'webhook' | 'scim' | 'csv';

export interface RefusedField {
  /** Where in the input, e.g. `attributes.email`, `items[0].id`, `urn:…:User:employeeNumber`, a CSV column. */
  field: string;
  /** The rule it broke, e.g. `must be an e-mail address`: schema text, never the value. */
  reason: string;
}

interface WarnLogger {
  warn(obj: Record<string, unknown>, msg: string): void;
}

const SOURCE_LABEL: Record<RejectedInputSource, string> = { webhook: 'HR webhook', scim: 'SCIM bulk', csv: 'CSV import' };
/** Distinct fields alerted on per refused input: a file that is garbage throughout is one problem, not hundreds. */
const MAX_FIELDS = 20;
/** Raisings under way at once, per process; past it a refusal is logged only (Postgres is slow or away). */
const MAX_IN_FLIGHT = 32;
const FIELD_MAX = 200;
const REASON_MAX = 300;
/** What a field path may be made of; anything else (a key full of other characters) is not shown. */
const FIELD_CHARS = /^[\w.:\-[\]()"=@$ ]+$/;

let inFlight = 0;

/**
 * The field as it names a kind of problem: positions dropped (`items[3].id` and `items[7].id`
 * are one problem, `items[].id`), and never something that could be a value.
 */
export function normalizeField(field: string): string {
  const named = field.trim().replace(/\[\d+\]/g, '[]');
  if (named === '' || named.length > FIELD_MAX || !FIELD_CHARS.test(named)) return '(unknown)';
  return named;
}

function clip(reason: string): string {
  const text = reason.trim().replace(/\s+/g, ' ');
  return text.length > REASON_MAX ? `${text.slice(0, REASON_MAX - 1)}…` : text || 'refused';
}

/**
 * Raises (or counts) one `event_rejected` alert per distinct field. Never throws and never
 * rejects: the caller answers its 400 whatever happens here, and usually does not wait.
 */
export async function reportRejectedInput(db: Db, log: WarnLogger, source: RejectedInputSource, refused: readonly RefusedField[]): Promise<void> {
  const byField = new Map<string, string>();
  for (const { field, reason } of refused) {
    const name = normalizeField(field);
    if (!byField.has(name) && byField.size < MAX_FIELDS) byField.set(name, clip(reason));
  }
  if (byField.size === 0) return;
  if (inFlight >= MAX_IN_FLIGHT) {
    log.warn({ source, fields: byField.size }, 'event_rejected not raised: too many raisings under way');
    return;
  }
  inFlight += 1;
  try {
    await db.transaction(async (tx) => {
      // In a stable order, so that two refusals at once take the alert rows' locks alike.
      for (const [field, reason] of [...byField].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
        await raiseAlert(tx, {
          kind: 'event_rejected',
          severity: 'warning',
          subject: `${SOURCE_LABEL[source]} input refused: ${field} ${reason}`,
          details: { source, field, reason },
          dedupeKey: `event_rejected:${source}:${field}`,
        });
      }
    });
  } catch (err) {
    // The error's class and code only: a database error's message carries its parameters.
    log.warn({ source, err: { name: (err as Error)?.name, code: (err as { code?: unknown })?.code } }, 'could not raise event_rejected');
  } finally {
    inFlight -= 1;
  }
}

/**
 * The fields of SCIM error details and CSV row messages, which are text: `path message`
 * parts separated by `; ` (`userName must be …; active must be a boolean.`), or `path: message`.
 * A path may hold a bracketed filter (`emails[type eq "work"].value`).
 */
export function fieldsOfText(text: string, fallbackField = '(body)'): RefusedField[] {
  const parts = text.split(/;\s+/).filter((part) => part.trim() !== '');
  return parts.map((part) => {
    const match = /^((?:[^\s[:;]+|\[[^\]]*\]|:(?!\s))+):?\s+(.+)$/.exec(part.trim());
    return match ? { field: match[1]!, reason: match[2]! } : { field: fallbackField, reason: part };
  });
}

/** The refused fields of a 400/422 problem: each field it names, else the body as a whole. */
export function refusedFields(problem: { title: string; detail?: string; errors?: ReadonlyArray<{ field: string; message: string }> }): RefusedField[] {
  if (problem.errors?.length) return problem.errors.map((e) => ({ field: e.field, reason: e.message }));
  return [{ field: '(body)', reason: problem.detail ?? problem.title }];
}

/**
 * The fields of refused CSV rows (services/csv-import.ts): each column a row was refused for,
 * with the rule, from its `column message; column message` text. A row refused for no one
 * column (a record the parser cannot read, an id on several lines with different data)
 * names the row, with a fixed reason: its message may quote the employee id.
 */
export function refusedRowFields(errors: ReadonlyArray<{ message: string; columns?: readonly string[] }>): RefusedField[] {
  return errors.flatMap((e) => {
    if (!e.columns?.length) return [{ field: '(row)', reason: 'the row was refused as a whole: it is not a readable record, or its employee id is on several lines with different data' }];
    const parts = e.message.split(/;\s+/);
    return e.columns.map((column) => {
      const part = parts.find((p) => p.startsWith(`${column} `));
      return { field: column, reason: part ? part.slice(column.length + 1) : 'refused' };
    });
  });
}
