// `jml retry <eventId>`: retry an HR event whose step failed (the operator's side of an
// `event_failed` alert). The event goes back to `dispatched`, audited with the operating
// system user as actor, and the person's workflow decides it afresh.
import type { Command } from 'commander';
import { retryHrEvent, RetryRefused } from '../../services/dispatch.js';
import { getHrEvent } from '../../db/inbox.js';
import { safe, terminalSafeJson } from '../../domain/terminal-safe.js';
import { withContext, withTemporal } from './context.js';

export function registerRetryCommand(program: Command): void {
  program
    .command('retry <eventId>')
    .description('retry an HR event whose step failed; its person is decided afresh')
    .option('--json', 'print JSON')
    .action(async (eventId: string, options: { json?: boolean }) => {
      await withContext(async ({ db, actor }) => {
        try {
          await withTemporal((temporal, env) => retryHrEvent({ db, temporal, taskQueue: env.taskQueue }, eventId, actor));
        } catch (err) {
          if (err instanceof RetryRefused) throw new Error(err.code === 'not_found' ? `no HR event ${eventId}` : `event ${eventId} is ${err.status}; only a failed event can be retried`);
          throw err;
        }
        const row = await getHrEvent(db, eventId);
        if (options.json) console.log(terminalSafeJson({ id: eventId, status: row?.status, reason: row?.reason }));
        else console.log(safe`${eventId}: ${row?.status} (${row?.reason ?? ''})`);
      });
    });
}
