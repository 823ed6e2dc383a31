// What the access-request workflows accept from outside, and their ids: the API, the approval
// page and the CLI address them through these definitions only. Decisions and withdrawals
// are Temporal Updates with validators, so the caller learns the outcome in the same call,
// and a second or unauthorised decision is refused before anything is written to history.
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { GrantStatus, RequestStatus } from '../domain/types.js';

export const accessRequestWorkflowId = (requestId: string) => `access-request:${requestId}`;
/** A JIT elevation is an access request of kind `jit`, run by the jitElevation workflow. */
export const jitElevationWorkflowId = (requestId: string) => `jit:${requestId}`;
export const approvalWorkflowId = (requestId: string, stage: number) => `approval:${requestId}:${stage}`;

/** How a decision reached us. */
export type DecisionChannel = 'email' | 'api' | 'cli';

export interface DecisionInput {
  /** Canonical employee id of the person deciding: the token's holder, or the token-bound API caller. */
  approverId: string;
  decision: 'approved' | 'denied';
  comment?: string | null;
  via: DecisionChannel;
  /** The emailed link's token hash when the decision came through the page (it is used up). */
  tokenHash?: string;
}

export interface DecisionOutcome {
  requestId: string;
  stage: number;
  decision: 'approved' | 'denied';
  decidedBy: string;
  decidedAt: string;
}

/** Refusal types an update validator or handler throws (ApplicationFailure type). */
export const DECISION_REFUSALS = {
  notApprover: 'NotApprover',
  alreadyDecided: 'AlreadyDecided',
  selfApproval: 'SelfApproval',
  stageClosed: 'StageClosed',
  notWithdrawable: 'NotWithdrawable',
  /** An extension the JIT policy refuses; details: [rule, field]. */
  extensionRefused: 'ExtensionRefused',
} as const;

/** The decision on one approval stage (the approval child workflow). */
export const decideUpdate = defineUpdate<DecisionOutcome, [DecisionInput]>('decide');

export interface ApprovalStageState {
  requestId: string;
  stage: number;
  /** Everyone who may decide this stage now: the approver, and whoever it escalated to. */
  approvers: string[];
  decided: DecisionOutcome | null;
  closed: boolean;
}
export const approvalStateQuery = defineQuery<ApprovalStageState>('approvalState');

export interface WithdrawInput {
  /** Who asks (the requester's employee id, or `api:<token>` for an admin). */
  by: string;
  reason?: string | null;
}

export interface WithdrawOutcome {
  requestStatus: RequestStatus;
  grantStatus: GrantStatus | null;
  /** null: there was nothing granted to remove (a pending request was withdrawn). */
  revocationStatus: 'pending' | 'retained' | null;
  /** What keeps the access due when it stays (`birthright rule everyone`, `request <id>`). */
  retainedBy: string[];
}

export interface ExtendInput {
  /** Who asks (the requester's employee id, or `api:<token>` for an admin). */
  by: string;
  /** How much longer than the current expiry. */
  durationMs: number;
}

export type ExtendOutcome = { status: 'extended'; expiresAt: string; extensions: number } | { status: 'pending_approval'; stage: number };

/** Extends a granted elevation: through policy again, and through approval again when its policy says so. */
export const extendUpdate = defineUpdate<ExtendOutcome, [ExtendInput]>('extend');

/** Withdraws a pending request, or removes granted access (reference-counted). */
export const withdrawUpdate = defineUpdate<WithdrawOutcome, [WithdrawInput]>('withdraw');

/**
 * The person moved: the new manager reviews this requested access (keep or remove). Sent by
 * the lifecycle workflow for each requested grant a move lists for review.
 */
export const moverReviewSignal = defineSignal<[{ eventId: string }]>('moverReview');

/**
 * An operator retries this request's failed grant, or its failed revocation (`POST
 * /grants/{id}/retry`, `jml retry-grant`): the next attempt starts now, not at the end of the
 * backoff.
 */
export const retryGrantSignal = defineSignal<[{ grantId: string }]>('retryGrant');
