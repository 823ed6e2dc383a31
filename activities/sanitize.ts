// What leaves an activity is logged by the Temporal worker and stored in the workflow's
// history. A failed database query's error (drizzle's DrizzleQueryError) carries the SQL and
// its parameters, which hold employee ids, names and emails: replace it by one that says what
// failed without the data. Retryability is kept (a plain Error retries; ApplicationFailures
// pass through untouched).
import type { ActivityExecuteInput, ActivityInboundCallsInterceptor, Next } from '@temporalio/worker';

interface QueryError extends Error {
  query: unknown;
  params: unknown;
}

function isQueryError(err: unknown): err is QueryError {
  return err instanceof Error && 'query' in err && 'params' in err;
}

export function sanitizeActivityError(err: unknown): unknown {
  if (!isQueryError(err)) return err;
  const cause = err.cause as { code?: unknown; message?: unknown } | undefined;
  const code = typeof cause?.code === 'string' ? ` (${cause.code})` : '';
  const reason = typeof cause?.message === 'string' ? `: ${cause.message}` : '';
  return new Error(`database query failed${code}${reason}`);
}

export class SanitizingActivityInterceptor implements ActivityInboundCallsInterceptor {
  async execute(input: ActivityExecuteInput, next: Next<ActivityInboundCallsInterceptor, 'execute'>): Promise<unknown> {
    try {
      return await next(input);
    } catch (err) {
      throw sanitizeActivityError(err);
    }
  }
}
