// `jml grants --status <status> [--target X] [--limit N] [--json]`: grants in one status
// across everyone (failed ones to look into, pending or provisioning ones waiting on a
// target), each with whose it is and its request status beside its grant status.
import { InvalidArgumentError, Option, type Command } from 'commander';
import { createDb } from '../../db/client.js';
import { grantsInStatus, knownTargets } from '../../db/operator-views.js';
import { safe, terminalSafeJson } from '../../domain/terminal-safe.js';
import { GRANT_STATUSES, type GrantStatus } from '../../domain/types.js';
import { readEnv } from '../../services/env.js';
import { clip, table, when } from './format.js';

const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 10_000;

function parseLimit(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > MAX_LIMIT) throw new InvalidArgumentError(`expected a whole number from 1 to ${MAX_LIMIT}`);
  return n;
}

export function registerGrantsCommand(program: Command): void {
  program
    .command('grants')
    .description('list grants in one status, least recently changed first, with their request status beside the grant status')
    .addOption(new Option('--status <status>', 'the grant status').choices(GRANT_STATUSES).makeOptionMandatory())
    .option('--target <id>', 'only grants on this target')
    .option('--limit <n>', `at most this many (1..${MAX_LIMIT})`, parseLimit, DEFAULT_LIMIT)
    .option('--json', 'print JSON')
    .action(async (options: { status: GrantStatus; target?: string; limit: number; json?: boolean }) => {
      const { db, close } = createDb(readEnv().databaseUrl, { max: 1 });
      try {
        const { items, total } = await grantsInStatus(db, options);
        // An empty list for a target nobody knows is a typo, not good news.
        if (items.length === 0 && options.target !== undefined) {
          const targets = await knownTargets(db);
          if (!targets.includes(options.target)) throw new Error(`no entitlement is on a target "${options.target}"; known targets: ${targets.join(', ') || '(none)'}`);
        }
        if (options.json) {
          console.log(terminalSafeJson({ status: options.status, target: options.target ?? null, total, more: total > items.length, items }));
          return;
        }
        const on = options.target === undefined ? '' : safe` on ${options.target}`;
        if (items.length === 0) return console.log(`no ${options.status} grants${on}`);
        console.log(`${total} ${options.status} grant${total === 1 ? '' : 's'}${on}` + (total > items.length ? `; the first ${items.length} shown (--limit to see more)` : ''));
        const rows = items.map((g) => [g.employeeId, g.entitlementId, g.target, g.requestStatus, g.grantStatus, g.revocationStatus ?? '-', g.attempts, when(g.updatedAt), clip(g.lastError)]);
        for (const line of table(['EMPLOYEE', 'ENTITLEMENT', 'TARGET', 'REQUEST', 'GRANT', 'REVOCATION', 'ATTEMPTS', 'UPDATED AT', 'LAST ERROR'], rows)) console.log(line);
      } finally {
        await close();
      }
    });
}
