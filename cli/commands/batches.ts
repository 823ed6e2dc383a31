// `jml batches [--status held]`, `jml release <batch>`, `jml discard <batch> --reason ...`:
// the admin's side of the mass-leaver brake (services/feeds.ts). A held batch holds every
// termination that arrived while the brake was tripped, from any feed; one decision covers
// them all and starts the brake's count afresh. Decisions are audited with the
// operating-system user as actor.
import { desc, eq } from 'drizzle-orm';
import { InvalidArgumentError, type Command } from 'commander';
import { BatchStateError, discardBatch, releaseBatch } from '../../services/feeds.js';
import { hrBatches } from '../../db/schema.js';
import { safe } from '../../domain/terminal-safe.js';
import { withContext } from './context.js';

const STATUSES = ['accepted', 'held', 'released', 'discarded'];

function explain(err: unknown): never {
  if (err instanceof BatchStateError) throw new Error(err.code === 'not_found' ? `no batch ${err.batchId}` : `batch ${err.batchId} is ${err.status}; only a held batch can be released or discarded`);
  throw err;
}

const uuid = (value: string) => {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value)) throw new InvalidArgumentError('expected a batch id (a UUID)');
  return value;
};

export function registerBatchCommands(program: Command): void {
  program
    .command('batches')
    .description('list feeds of HR events (CSV imports, SCIM bulks, API feeds, held webhook terminations), newest first')
    .option('--status <status>', `only these: ${STATUSES.join(', ')}`, (value: string) => {
      if (!STATUSES.includes(value)) throw new InvalidArgumentError(`expected one of ${STATUSES.join(', ')}`);
      return value;
    })
    .option('--limit <n>', 'how many', (value: string) => Number.parseInt(value, 10), 20)
    .action(async (options: { status?: string; limit: number }) => {
      await withContext(async ({ db }) => {
        const rows = await db
          .select()
          .from(hrBatches)
          .where(options.status ? eq(hrBatches.status, options.status) : undefined)
          .orderBy(desc(hrBatches.createdAt))
          .limit(options.limit);
        if (rows.length === 0) console.log('no batches');
        for (const b of rows) {
          console.log(
            safe`${b.id}  ${b.createdAt.toISOString()}  ${b.source.padEnd(7)}  ${b.status.padEnd(9)}  events ${b.events}, terminations ${b.terminations} of ${b.activeIdentities} active` +
              (b.decidedBy ? safe`  (${b.status} by ${b.decidedBy})` : ''),
          );
          if (b.status === 'held' && b.reason) console.log(safe`    ${b.reason}`);
        }
      });
    });

  program
    .command('release <batch>')
    .description("let a held batch's terminations go on (the brake counts afresh from here)")
    .action(async (batch: string) => {
      await withContext(async (context) => {
        const { released } = await releaseBatch(context, uuid(batch), context.actor).catch(explain);
        console.log(safe`batch ${batch} released: ${released} terminations go on`);
      });
    });

  program
    .command('discard <batch>')
    .description("reject a held batch's terminations (they stay recorded as rejected, with the reason; the brake counts afresh from here)")
    .requiredOption('--reason <text>', 'why, for the audit log')
    .action(async (batch: string, options: { reason: string }) => {
      await withContext(async (context) => {
        const { discarded } = await discardBatch(context.db, uuid(batch), context.actor, options.reason).catch(explain);
        console.log(safe`batch ${batch} discarded: ${discarded} terminations rejected`);
      });
    });
}
