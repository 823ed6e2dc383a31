// `jml target list | pause <id> [--reason …] | resume <id>`: the kill switch, from the shell.
// Writes Postgres directly like `jml release` (audited with the operating system user); the
// workers see a change within a second.
import type { Command } from 'commander';
import { safe } from '../../domain/terminal-safe.js';
import { setTargetPaused, targetControlsOf } from '../../services/target-controls.js';
import { withContext } from './context.js';
import { table, when } from './format.js';

export function registerTargetCommands(program: Command): void {
  const target = program.command('target').description('targets and their kill switches');
  target
    .command('list')
    .description('each target, and whether it is paused')
    .action(() =>
      withContext(async ({ db, config }) => {
        const controls = await targetControlsOf(db, config.targets.map((t) => t.id));
        for (const line of table(['TARGET', 'STATE', 'SINCE', 'BY', 'REASON'], controls.map((c) => [c.targetId, c.paused ? 'paused' : 'running', when(c.changedAt ? new Date(c.changedAt) : null), c.changedBy ?? '-', c.reason ?? '']))) console.log(line);
      }),
    );
  for (const action of ['pause', 'resume'] as const) {
    target
      .command(`${action} <id>`)
      .description(action === 'pause' ? 'stop calling the target: its grants and revocations wait, in order' : 'call the target again: what waited drains, leavers first')
      .option('--reason <text>', 'why (kept in the audit log)')
      .action((id: string, options: { reason?: string }) =>
        withContext(async ({ db, config, actor }) => {
          if (!config.targets.some((t) => t.id === id)) {
            console.error(safe`no target "${id}" in the config`);
            process.exitCode = 1;
            return;
          }
          const control = await setTargetPaused(db, id, action === 'pause', { actor, reason: options.reason ?? null });
          console.log(safe`${id}: ${control.paused ? 'paused' : 'running'}`);
        }),
      );
  }
}
