// `jml alerts [--open] [--kind k] [--limit n] [--json]`, `jml ack <id> [--note …]` and
// `jml resolve <id> --note …`: the operator's side of the alerts the engine raises. They read
// and write Postgres directly (db/alert-views.ts), like `jml grants`; an acknowledgement or a
// resolution is audited with the operating system user as actor and the note.
import { userInfo } from 'node:os';
import { InvalidArgumentError, type Command } from 'commander';
import { acknowledgeAlert, AlertMoveRefused, listAlerts, resolveAlert, type AlertDetail, type AlertMoveInput } from '../../db/alert-views.js';
import { createDb, type Db } from '../../db/client.js';
import { textProblem } from '../../domain/attributes.js';
import { safe, terminalSafeJson } from '../../domain/terminal-safe.js';
import { readEnv } from '../../services/env.js';
import { clip, table } from './format.js';

const DEFAULT_LIMIT = 50;
const MAX_LIMIT = 1_000;
/** As the API: a note is at most this long. */
const NOTE_MAX = 1_000;
const KIND = /^[a-z][a-z0-9_]{0,63}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function usageError(message: string): InvalidArgumentError {
  const err = new InvalidArgumentError(message);
  err.exitCode = 2;
  return err;
}

function parseLimit(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > MAX_LIMIT) throw usageError(`expected a whole number from 1 to ${MAX_LIMIT}`);
  return n;
}

function parseKind(value: string): string {
  if (!KIND.test(value)) throw usageError('expected an alert kind such as grant_failed');
  return value;
}

function alertIdArgument(value: string): string {
  if (!UUID.test(value)) throw usageError('expected an alert id (a UUID, as `jml alerts` shows it)');
  return value.toLowerCase();
}

function parseNote(value: string): string {
  const problem = textProblem(value, NOTE_MAX);
  if (problem || value.length === 0) throw usageError(problem ?? 'must not be empty');
  return value;
}

/** Who is at the keyboard, for the audit log: `cli:<user>`, as the feed commands record it (cli/commands/context.ts). */
function cliActor(): string {
  try {
    return `cli:${userInfo().username}`;
  } catch {
    return 'cli';
  }
}

async function withDb<T>(fn: (db: Db) => Promise<T>): Promise<T> {
  const { db, close } = createDb(readEnv().databaseUrl, { max: 1 });
  try {
    return await fn(db);
  } finally {
    await close();
  }
}

/** How an alert's delivery reads in a table: its status, and the last failure's channel when it failed. */
function deliveryCell(alert: { delivery: AlertDetail['delivery'] }): string {
  const failed = alert.delivery.notifications.filter((n) => !n.ok).at(-1);
  return alert.delivery.status === 'failed' && failed ? `failed (${failed.channel})` : alert.delivery.status;
}

/** Runs a move and prints what became of the alert; a refused move is an error naming the alert's status. */
async function runMove(id: string, move: (db: Db, id: string, input: AlertMoveInput) => Promise<AlertDetail>, note: string | null, json: boolean | undefined): Promise<void> {
  const alert = await withDb(async (db) => {
    try {
      return await move(db, id, { actor: cliActor(), note });
    } catch (err) {
      if (err instanceof AlertMoveRefused) throw new Error(err.code === 'not_found' ? `no alert ${id}` : err.message);
      throw err;
    }
  });
  if (json) return console.log(terminalSafeJson(alert));
  const moment = alert.status === 'resolved' ? alert.resolvedAt : alert.acknowledgedAt;
  console.log(safe`${alert.id}: ${alert.status} at ${moment ?? '-'} (${alert.kind}, ${alert.severity})`);
  console.log(safe`  ${alert.subject}`);
}

export function registerAlertCommands(program: Command): void {
  program
    .command('alerts')
    .description('list alerts, newest first: severity, kind, status, how often seen, and whether they reached people')
    .option('--open', 'only alerts not yet resolved (open or acknowledged)')
    .option('--kind <kind>', 'only alerts of this kind, e.g. grant_failed', parseKind)
    .option('--limit <n>', `at most this many (1..${MAX_LIMIT})`, parseLimit, DEFAULT_LIMIT)
    .option('--json', 'print JSON')
    .action(async (options: { open?: boolean; kind?: string; limit: number; json?: boolean }) => {
      const { items, nextCursor } = await withDb((db) =>
        listAlerts(db, { limit: options.limit, ...(options.open ? { status: ['open', 'acknowledged'] as const } : {}), ...(options.kind ? { kind: options.kind } : {}) }),
      );
      const more = nextCursor !== null;
      if (options.json) return console.log(terminalSafeJson({ open: options.open ?? false, kind: options.kind ?? null, more, items }));
      const which = `${options.open ? 'unresolved ' : ''}${options.kind ? safe`${options.kind} ` : ''}`;
      if (items.length === 0) return console.log(`no ${which}alerts`);
      console.log(`${items.length} ${which}alert${items.length === 1 ? '' : 's'}, newest first` + (more ? ' (more: --limit to see them)' : ''));
      const rows = items.map((a) => [a.id, a.severity, a.kind, a.status, a.count, a.lastSeenAt, deliveryCell(a), clip(a.subject, 100)]);
      for (const line of table(['ID', 'SEVERITY', 'KIND', 'STATUS', 'COUNT', 'LAST SEEN', 'DELIVERY', 'SUBJECT'], rows)) console.log(line);
    });

  program
    .command('ack')
    .argument('<id>', 'the alert id, as `jml alerts` shows it', alertIdArgument)
    .description('acknowledge an open alert: someone is on it (audited, with the note)')
    .option('--note <text>', `who is on it, or what is being done (at most ${NOTE_MAX} characters)`, parseNote)
    .option('--json', 'print JSON')
    .action((id: string, options: { note?: string; json?: boolean }) => runMove(id, acknowledgeAlert, options.note ?? null, options.json));

  program
    .command('resolve')
    .argument('<id>', 'the alert id, as `jml alerts` shows it', alertIdArgument)
    .description('resolve an open or acknowledged alert, saying what was done (audited, with the note)')
    .requiredOption('--note <text>', `what was done about it (1..${NOTE_MAX} characters)`, parseNote)
    .option('--json', 'print JSON')
    .action((id: string, options: { note: string; json?: boolean }) => runMove(id, resolveAlert, options.note, options.json));
}
