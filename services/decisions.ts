// Sends a human decision (approve / deny a stage, withdraw a request) to its workflow as a
// Temporal Update and turns what the workflow refused into one typed error, so the API, the
// approval page and the CLI tell people the same thing.
import { ApplicationFailure } from '@temporalio/common';
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import {
  accessRequestWorkflowId,
  approvalWorkflowId,
  decideUpdate,
  DECISION_REFUSALS,
  withdrawUpdate,
  type DecisionInput,
  type DecisionOutcome,
  type WithdrawInput,
  type WithdrawOutcome,
} from '../workflows/request-messages.js';

export type DecisionRefusalCode = 'not_approver' | 'already_decided' | 'self_approval' | 'stage_closed' | 'not_withdrawable';

/** The workflow said no; `message` is the workflow's own words (no personal data beyond ids). */
export class DecisionRefused extends Error {
  constructor(
    readonly code: DecisionRefusalCode,
    message: string,
  ) {
    super(message);
    this.name = 'DecisionRefused';
  }
}

const CODES: Record<string, DecisionRefusalCode> = {
  [DECISION_REFUSALS.notApprover]: 'not_approver',
  [DECISION_REFUSALS.alreadyDecided]: 'already_decided',
  [DECISION_REFUSALS.selfApproval]: 'self_approval',
  [DECISION_REFUSALS.stageClosed]: 'stage_closed',
  [DECISION_REFUSALS.notWithdrawable]: 'not_withdrawable',
};

async function refusalsTyped<T>(call: () => Promise<T>, closed: DecisionRefusalCode, closedMessage: string): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw new DecisionRefused(closed, closedMessage);
    if (err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure) {
      const code = err.cause.type ? CODES[err.cause.type] : undefined;
      if (code) throw new DecisionRefused(code, err.cause.message);
    }
    throw err;
  }
}

/** Decides one stage of a request. Throws DecisionRefused when the workflow refuses it. */
export function decideStage(temporal: Client, requestId: string, stage: number, input: DecisionInput): Promise<DecisionOutcome> {
  const handle = temporal.workflow.getHandle(approvalWorkflowId(requestId, stage));
  return refusalsTyped(() => handle.executeUpdate(decideUpdate, { args: [input] }), 'stage_closed', 'This approval is closed: it was decided, withdrawn or expired.');
}

/** Withdraws a pending request or removes granted access. Throws DecisionRefused when there is nothing to withdraw. */
export function withdrawRequest(temporal: Client, requestId: string, input: WithdrawInput): Promise<WithdrawOutcome> {
  const handle = temporal.workflow.getHandle(accessRequestWorkflowId(requestId));
  return refusalsTyped(() => handle.executeUpdate(withdrawUpdate, { args: [input] }), 'not_withdrawable', 'This request has ended: there is nothing left to withdraw or remove.');
}
