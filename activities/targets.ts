// A target's health, for the workflow that waits out its outage (workflows/target-recovery.ts).
import { Context } from '@temporalio/activity';
import { targetRecovery, targetRecoveryWorkflowId, targetWaitingSignal, type TargetWaiter } from '../workflows/target-recovery.js';
import type { ActivityDeps } from './deps.js';

export function createTargetActivities({ connectors, logger }: ActivityDeps) {
  return {
    /** Whether the target answers now. Never throws: "no" is an answer. */
    async probeTarget(target: string): Promise<boolean> {
      const connector = connectors.get(target);
      if (!connector) return false;
      try {
        await connector.ping();
        return true;
      } catch {
        return false;
      }
    },

    /**
     * Puts a person's workflow on the target's waiting list, starting the target's recovery
     * workflow if none runs. Idempotent: waiting twice is waiting once.
     */
    async awaitTargetRecovery(input: { target: string } & TargetWaiter): Promise<void> {
      const { client, info } = Context.current();
      const handle = await client.workflow.signalWithStart(targetRecovery, {
        workflowId: targetRecoveryWorkflowId(info.taskQueue, input.target),
        taskQueue: info.taskQueue,
        args: [{ target: input.target }],
        signal: targetWaitingSignal,
        signalArgs: [{ workflowId: input.workflowId, revoking: input.revoking }],
      });
      logger.debug({ target: input.target, recovery: handle.workflowId, revoking: input.revoking }, 'a step waits for the target to answer again');
    },
  };
}
