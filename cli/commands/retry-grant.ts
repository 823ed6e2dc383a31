// `jml retry-grant <grantId>`: retry a failed grant (or failed revocation) now, the operator's
// side of a `grant_failed` or `revoke_failed` alert, as `POST /api/v1/grants/{id}/retry` does
// (services/grant-retry.ts): audited with the operating system user as actor, and the
// workflow that owns the grant tries again at once instead of at the end of its backoff.
import type { Command } from 'commander';
import { safe, terminalSafeJson } from '../../domain/terminal-safe.js';
import { GrantRetryRefused, retryGrant } from '../../services/grant-retry.js';
import { withContext, withTemporal } from './context.js';

export function registerRetryGrantCommand(program: Command): void {
  program
    .command('retry-grant <grantId>')
    .description('retry a failed grant (or revocation) now; its workflow tries again at once')
    .option('--json', 'print JSON')
    .action(async (grantId: string, options: { json?: boolean }) => {
      await withContext(async ({ db, actor }) => {
        let retried;
        try {
          retried = await withTemporal((temporal, env) => retryGrant({ db, temporal, taskQueue: env.taskQueue }, grantId, actor));
        } catch (err) {
          if (err instanceof GrantRetryRefused) throw new Error(err.code === 'not_found' ? `no grant ${grantId}` : `grant ${grantId} is ${err.status}; only a failed grant can be retried`);
          throw err;
        }
        if (options.json) console.log(terminalSafeJson({ id: retried.grantId, grantStatus: 'failed', employeeId: retried.employeeId, entitlementId: retried.entitlementId, woke: retried.woke }));
        else console.log(safe`${retried.grantId}: retry requested (${retried.entitlementId} for ${retried.employeeId}); woke ${retried.woke.join(', ')}`);
      });
    });
}
