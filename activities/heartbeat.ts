// Every activity heartbeats while it runs, so that when its worker dies (SIGKILL, a crash, a
// lost machine) Temporal notices within the heartbeat timeout the workflow sets, and retries
// it elsewhere, instead of waiting out the whole start-to-close timeout: that wait was most
// of the minute an engine restart took to drain (bench/faults.ts). A live activity needs no
// code of its own for it: the process being alive is what the heartbeat says.
import type { Context } from '@temporalio/activity';
import type { ActivityExecuteInput, ActivityInboundCallsInterceptor, Next } from '@temporalio/worker';

/** Well under every heartbeat timeout the workflows set (the SDK throttles what it sends). */
export const HEARTBEAT_EVERY_MS = 2_000;

export class HeartbeatingActivityInterceptor implements ActivityInboundCallsInterceptor {
  constructor(private readonly context: Context) {}

  async execute(input: ActivityExecuteInput, next: Next<ActivityInboundCallsInterceptor, 'execute'>): Promise<unknown> {
    // Local activities run inside the workflow task; they have no heartbeat of their own.
    if (this.context.info.isLocal) return next(input);
    this.context.heartbeat();
    const timer = setInterval(() => this.context.heartbeat(), HEARTBEAT_EVERY_MS);
    try {
      return await next(input);
    } finally {
      clearInterval(timer);
    }
  }
}
