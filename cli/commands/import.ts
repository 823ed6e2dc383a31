// `jml import <file.csv> [--dry-run] [--full-snapshot] [--json]`: a full HR extract into
// the inbox as one feed (services/csv-import.ts). A progress bar on a terminal, plain lines
// otherwise; then counts per kind, refused rows with their line, and the batch. With
// --dry-run: what would happen per person and per entitlement, and nothing changes.
import { createReadStream, statSync } from 'node:fs';
import { SingleBar, Presets } from 'cli-progress';
import type { Command } from 'commander';
import type { BirthrightGrant } from '../../domain/birthright.js';
import { safe, terminalSafeJson } from '../../domain/terminal-safe.js';
import { HR_EVENT_TYPES } from '../../domain/types.js';
import { importCsv, type CsvImportResult, type PersonOutcome } from '../../services/csv-import.js';
import { withContext } from './context.js';

const MAX_ERRORS_SHOWN = 20;

function progressReporter(totalBytes: number) {
  if (!process.stderr.isTTY) return { update: () => undefined, stop: () => undefined };
  const bar = new SingleBar(
    { format: 'reading  [{bar}] {percentage}% | {rows} rows', stream: process.stderr, hideCursor: true, clearOnComplete: false },
    Presets.shades_classic,
  );
  bar.start(Math.max(totalBytes, 1), 0, { rows: 0 });
  return {
    update: ({ rows, bytes }: { rows: number; bytes: number }) => bar.update(Math.min(bytes, totalBytes), { rows }),
    stop: () => bar.stop(),
  };
}

// Everything below that comes from the file or the database (ids, values, messages quoting
// them) is printed through `safe`: a cell's escape sequences never reach the terminal.
const entitlementLine = (sign: string, g: BirthrightGrant) => safe`    ${sign} ${g.entitlementId}  (rule${g.rules.length > 1 ? 's' : ''} ${g.rules.join(', ')})`;

function describeEvent(event: PersonOutcome['events'][number]): string {
  if (event.type === 'update') {
    const changes = Object.entries(event.attributes).map(([k, v]) => (v === null ? safe`${k}=(cleared)` : safe`${k}=${String(v)}`));
    return `update ${changes.join(', ')}`;
  }
  if (event.type === 'hire' || event.type === 'rehire') return safe`${event.type} effective ${event.effectiveAt.slice(0, 10)}`;
  return safe`${event.type}`;
}

function printPlan(plan: PersonOutcome[]): void {
  for (const person of plan) {
    const where = person.line === null ? 'absent from the file' : `line ${person.line}`;
    // The events are safe already (describeEvent); safe again changes nothing.
    console.log(safe`${person.employeeId}  (${where}, ${person.statusBefore ?? 'new'}): ${person.events.map(describeEvent).join('; ')}`);
    for (const g of person.grant) console.log(entitlementLine('+', g));
    for (const g of person.revoke) console.log(entitlementLine('-', g));
  }
  if (plan.length) console.log('');
}

function printSummary(result: CsvImportResult): void {
  const kinds = HR_EVENT_TYPES.filter((t) => result.counts[t] > 0);
  console.log(`${result.dryRun ? 'would emit' : 'emitted'}: ${kinds.length ? kinds.map((t) => `${t} ${result.counts[t]}`).join(', ') : 'nothing'}`);
  console.log(`rows ${result.rows}, unchanged ${result.unchanged}, inactive and unknown (skipped) ${result.skippedInactive}, refused ${result.errors.length}`);
  if (!result.dryRun) console.log(`new in the inbox: ${result.stored} (events already there from an earlier import change nothing)`);
  for (const warning of result.warnings) console.log(safe`warning: ${warning}`);
  for (const error of result.errors.slice(0, MAX_ERRORS_SHOWN)) console.log(safe`  line ${error.line}: ${error.message}`);
  if (result.errors.length > MAX_ERRORS_SHOWN) console.log(`  ... and ${result.errors.length - MAX_ERRORS_SHOWN} more refused rows (--json lists them all)`);
  if (result.brake?.wouldHold) {
    console.log(`the mass-leaver brake would hold this feed: ${result.brake.terminations} terminations of ${result.brake.activeIdentities} active identities`);
  }
  if (result.batchId) console.log(safe`batch ${result.batchId}: ${result.batchStatus}`);
  if (result.batchStatus === 'held') {
    console.log(
      `\nHELD by the mass-leaver brake: its ${result.counts.terminate} terminations wait; everything else went through.\n` +
        `  release: jml release ${result.batchId}\n  discard: jml discard ${result.batchId} --reason "..."`,
    );
  }
}

export function registerImportCommand(program: Command): void {
  program
    .command('import <file>')
    .description('import a full HR extract (CSV): emits hire, update, terminate, rehire and leave events; terminations go through the mass-leaver brake')
    .option('--dry-run', 'print what would happen, per person and per entitlement, and change nothing')
    .option('--full-snapshot', 'the file lists everyone: terminate known people absent from it (behind the brake)')
    .option('--json', 'print the result as JSON')
    .action(async (file: string, options: { dryRun?: boolean; fullSnapshot?: boolean; json?: boolean }) => {
      const size = statSync(file).size; // fails here, naming the file, when it is missing
      await withContext(async (context) => {
        const progress = options.json ? { update: () => undefined, stop: () => undefined } : progressReporter(size);
        const started = Date.now();
        let result: CsvImportResult;
        try {
          result = await importCsv(context, createReadStream(file), {
            actor: context.actor,
            dryRun: options.dryRun ?? false,
            fullSnapshot: options.fullSnapshot ?? false,
            onProgress: progress.update,
          });
        } finally {
          progress.stop();
        }
        if (options.json) {
          console.log(terminalSafeJson(result));
          return;
        }
        if (result.plan) printPlan(result.plan);
        printSummary(result);
        console.log(`(${((Date.now() - started) / 1000).toFixed(1)} s${options.dryRun ? '; dry run, nothing changed' : ''})`);
      });
    });
}
