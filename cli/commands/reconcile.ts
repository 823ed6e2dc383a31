// `jml reconcile [--target X] [--repair]`: reconcile now (workflows/reconcile.ts) instead of
// waiting for the schedule, and print what it found per target. Needs Temporal and a running
// worker; the run is recorded (reconcile_runs) and its findings are alerts like any other.
import type { Command } from 'commander';
import type { ReconcileResult } from '../../activities/reconcile.js';
import { safe, terminalSafeJson } from '../../domain/terminal-safe.js';
import { withTemporal } from './context.js';

export function registerReconcileCommand(program: Command): void {
  program
    .command('reconcile')
    .description('compare the targets with what the engine believes now; alert on drift (and repair it with --repair)')
    .option('--target <id>', 'only this target')
    .option('--repair', 'repair what is found (missing access granted again, unexpected access removed), verified and audited')
    .option('--json', 'print JSON')
    .action(async (options: { target?: string; repair?: boolean; json?: boolean }) => {
      await withTemporal(async (client, env) => {
        const results = await client.workflow.execute<(input: { target?: string; repair?: boolean }) => Promise<ReconcileResult[]>>('reconcile', {
          taskQueue: env.taskQueue,
          workflowId: `reconcile-now:${Date.now()}`,
          args: [{ ...(options.target ? { target: options.target } : {}), repair: options.repair === true }],
        });
        if (options.json) {
          console.log(terminalSafeJson(results));
          return;
        }
        for (const { target, repair, counts: c, error } of results) {
          const found = `${c.drift_missing} missing, ${c.drift_unexpected} unexpected`;
          const repaired = repair ? `, ${c.repaired} repaired, ${c.repairFailed} not repaired` : '';
          console.log(safe`${target}: ${found}${repaired}, ${c.resolved} resolved; ${c.accounts} accounts, ${c.groups} groups in ${c.durationMs} ms${error ? `; error: ${error}` : ''}`);
        }
        if (results.some((r) => r.error)) process.exitCode = 1;
      });
    });
}
