// `jml audit verify [--json]`: recomputes the audit log's hash chain from the first row to
// the head (db/audit.ts) and says how many rows it checked, the head's hash (to compare with
// one noted earlier or kept elsewhere) and the first broken link. Exit code 1 when broken,
// so a scheduled job can alert on it.
import type { Command } from 'commander';
import { walkAuditChain } from '../../db/audit.js';
import { createDb } from '../../db/client.js';
import { terminalSafeJson } from '../../domain/terminal-safe.js';
import { readEnv } from '../../services/env.js';

export function registerAuditCommands(program: Command): void {
  const audit = program.command('audit').description('the hash-chained audit log');
  audit
    .command('verify')
    .description('walk the whole audit chain; exit code 1 when a row was changed, removed or inserted')
    .option('--json', 'print JSON')
    .action(async (options: { json?: boolean }) => {
      const { db, close } = createDb(readEnv().databaseUrl, { max: 1 });
      try {
        const report = await walkAuditChain(db);
        if (!report.ok) process.exitCode = 1;
        if (options.json) return console.log(terminalSafeJson(report));
        const head = report.head ? `head seq ${report.head.seq}, hash ${report.head.hash}` : 'the log is empty';
        if (report.broken) {
          console.log(`audit chain BROKEN at seq ${report.broken.seq}: ${report.broken.problem}`);
          console.log(`  rows checked: ${report.rows} (the walk stops at the first broken link); ${head}`);
        } else {
          console.log(`audit chain intact: ${report.rows} rows checked; ${head}`);
        }
      } finally {
        await close();
      }
    });
}
