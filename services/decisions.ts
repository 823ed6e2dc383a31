// Sends a human decision (approve / deny a stage, withdraw a request, extend an elevation) to
// its workflow as a Temporal Update and turns what the workflow refused into one typed error,
// so the API, the approval page and the CLI tell people the same thing.
import { ApplicationFailure } from '@temporalio/common';
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import {
  approvalWorkflowId,
  decideUpdate,
  DECISION_REFUSALS,
  extendUpdate,
  withdrawUpdate,
  type DecisionInput,
  type DecisionOutcome,
  type ExtendInput,
  type ExtendOutcome,
  type WithdrawInput,
  type WithdrawOutcome,
} from '../workflows/request-messages.js';
import { workflowIdOf, type WorkflowKind } from './access-requests.js';

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

/**
 * Withdraws a pending request or removes granted access; for an elevation (kind `jit`), ends
 * it early. Throws DecisionRefused when there is nothing to withdraw.
 */
export function withdrawRequest(temporal: Client, requestId: string, input: WithdrawInput, kind: WorkflowKind = 'requested'): Promise<WithdrawOutcome> {
  const handle = temporal.workflow.getHandle(workflowIdOf(kind, requestId));
  return refusalsTyped(() => handle.executeUpdate(withdrawUpdate, { args: [input] }), 'not_withdrawable', 'This request has ended: there is nothing left to withdraw or remove.');
}

/**
 * The JIT policy (or the workflow) refused an extension: `rule` is one of domain/jit-policy.ts's
 * JIT_RULES (`not_extendable` when the elevation is not active), `field` the input it is about.
 */
export class ExtensionRefused extends Error {
  constructor(
    readonly rule: string,
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = 'ExtensionRefused';
  }
}

/**
 * Extends an active elevation: through its policy again, and through approval again when the
 * policy says so (then the outcome is `pending_approval`). Throws ExtensionRefused.
 */
export async function extendElevation(temporal: Client, requestId: string, input: ExtendInput): Promise<ExtendOutcome> {
  const handle = temporal.workflow.getHandle(workflowIdOf('jit', requestId));
  try {
    return await handle.executeUpdate(extendUpdate, { args: [input] });
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw new ExtensionRefused('not_extendable', 'id', 'This elevation has ended: it cannot be extended.');
    if (err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure && err.cause.type === DECISION_REFUSALS.extensionRefused) {
      const [rule, field] = err.cause.details ?? [];
      throw new ExtensionRefused(typeof rule === 'string' ? rule : 'not_extendable', typeof field === 'string' ? field : 'id', err.cause.message);
    }
    throw err;
  }
}
