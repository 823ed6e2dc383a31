// One approval stage (child of accessRequest, id `approval:<requestId>:<stage>`): the approver
// is emailed a link, reminded once, the stage escalates once to the approver's manager, and
// it ends `expired` at its deadline. Decisions arrive as the `decide` Update; its validator
// refuses self-approval, anyone who is not an approver of the stage and a second decision
// before anything is written to history. Waiting is a durable timer, never polling.
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  proxyActivities,
  setHandler,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { StageRole } from '../activities/requests.js';
import { canonicalEmployeeId } from '../domain/employee-id.js';
import { approvalStateQuery, decideUpdate, DECISION_REFUSALS, type DecisionOutcome } from './request-messages.js';

export interface ApprovalInput {
  requestId: string;
  stage: number;
  role: StageRole;
  subjectId: string;
  /** The requester's employee id (never their own approver); null when no person asked. */
  requesterId: string | null;
  timeoutMs: number;
  reminderAfterMs: number;
  escalateAfterMs: number;
  /** For a mover's review: what happens when nobody answers (said in the email). */
  moverDefault?: 'remove' | 'keep';
}

export interface ApprovalResult {
  decision: 'approved' | 'denied' | 'expired' | 'cancelled';
  decidedBy: string | null;
  /** Why a stage was cancelled (nobody to approve it, the request closed under it). */
  reason: string | null;
}

// Quick database writes that retry until Postgres answers; mail retries as long (an SMTP
// outage delays a message and loses none).
const db = proxyActivities<Activities>({ startToCloseTimeout: '30s', heartbeatTimeout: '20s', retry: { initialInterval: '1s', maximumInterval: '1m', backoffCoefficient: 2 } });
const mail = proxyActivities<Activities>({ startToCloseTimeout: '1m', heartbeatTimeout: '20s', retry: { initialInterval: '5s', maximumInterval: '5m', backoffCoefficient: 2 } });

function refusalOf(err: unknown): ApplicationFailure | undefined {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  return cause instanceof ApplicationFailure && Object.values(DECISION_REFUSALS).includes(cause.type as never) ? cause : undefined;
}

export async function approval(input: ApprovalInput): Promise<ApprovalResult> {
  const { requestId, stage } = input;
  const started = Date.now();
  const dueAt = new Date(started + input.timeoutMs).toISOString();
  const opened = await db.openApprovalStage({ requestId, stage, role: input.role, dueAt });
  if (!opened.ok) {
    // Nobody can decide: the request is refused with the reason rather than waiting for nobody.
    return { decision: 'cancelled', decidedBy: null, reason: opened.reason };
  }

  const approvers = [opened.approverId];
  const excluded = [input.subjectId, input.requesterId].filter((id): id is string => id !== null).map(canonicalEmployeeId);
  let decided: DecisionOutcome | null = null;
  let deciding = false;
  let closed: string | null = null;

  setHandler(approvalStateQuery, () => ({ requestId, stage, approvers: [...approvers], decided, closed: closed !== null }));
  setHandler(
    decideUpdate,
    async (decision) => {
      deciding = true;
      try {
        const approverId = canonicalEmployeeId(decision.approverId);
        const { decidedAt } = await db.recordDecision({ requestId, stage, approverId, decision: decision.decision, comment: decision.comment ?? null, via: decision.via, ...(decision.tokenHash ? { tokenHash: decision.tokenHash } : {}) });
        decided = { requestId, stage, decision: decision.decision, decidedBy: approverId, decidedAt };
        return decided;
      } catch (err) {
        const refusal = refusalOf(err);
        if (!refusal) throw err;
        // The request closed under the stage (a leaver's requests are cancelled): so does the stage.
        if (refusal.type === DECISION_REFUSALS.stageClosed) closed = refusal.message;
        throw ApplicationFailure.create({ message: refusal.message, type: refusal.type ?? undefined, nonRetryable: true });
      } finally {
        deciding = false;
      }
    },
    {
      validator: (decision) => {
        const approverId = canonicalEmployeeId(decision.approverId);
        if (decided !== null || deciding) throw ApplicationFailure.create({ message: 'this stage has already been decided', type: DECISION_REFUSALS.alreadyDecided, nonRetryable: true });
        if (closed !== null) throw ApplicationFailure.create({ message: 'this approval is closed', type: DECISION_REFUSALS.stageClosed, nonRetryable: true });
        if (excluded.includes(approverId)) throw ApplicationFailure.create({ message: 'nobody approves access for themselves or their own request', type: DECISION_REFUSALS.selfApproval, nonRetryable: true });
        if (!approvers.includes(approverId)) throw ApplicationFailure.create({ message: 'you are not an approver of this stage', type: DECISION_REFUSALS.notApprover, nonRetryable: true });
      },
    },
  );

  // Mail goes out beside the waiting: a slow SMTP server never delays a decision or a
  // deadline, and once the stage is over what is still unsent is dropped (it asks nothing).
  const mailing = new CancellationScope();
  const sending: Array<Promise<unknown>> = [];
  const send = (approvalId: string, kind: 'request' | 'reminder' | 'escalation' | 'mover_review' | 'break_glass_review', reminder?: number) =>
    sending.push(
      mailing.run(() => mail.sendApprovalMail({ approvalId, kind, ...(reminder ? { reminder } : {}), ...(input.moverDefault ? { moverDefault: input.moverDefault } : {}) })).catch(() => undefined),
    );
  send(opened.approvalId, input.role === 'mover_review' || input.role === 'break_glass_review' ? input.role : 'request');

  const deadlines: Array<{ at: number; step: 'remind' | 'escalate' | 'expire' }> = [
    ...(input.reminderAfterMs > 0 && input.reminderAfterMs < input.timeoutMs ? [{ at: started + input.reminderAfterMs, step: 'remind' as const }] : []),
    ...(input.escalateAfterMs > 0 && input.escalateAfterMs < input.timeoutMs ? [{ at: started + input.escalateAfterMs, step: 'escalate' as const }] : []),
    { at: started + input.timeoutMs, step: 'expire' as const },
  ].sort((a, b) => a.at - b.at);

  try {
    for (const deadline of deadlines) {
      const wait = deadline.at - Date.now();
      if (wait > 0) await condition(() => decided !== null || closed !== null, wait);
      if (decided !== null || closed !== null) break;
      if (deadline.step === 'remind') {
        send(opened.approvalId, 'reminder', 1);
      } else if (deadline.step === 'escalate') {
        const escalated = await db.escalateStage({ approvalId: opened.approvalId, dueAt });
        if (escalated.ok) {
          approvers.push(escalated.approverId);
          send(escalated.approvalId, 'escalation');
        }
      } else {
        // A decision under way when the deadline strikes is let finish: it was made in time.
        await condition(() => !deciding);
        if (decided !== null) break;
        closed = 'no decision before the deadline';
        await db.closeStage({ requestId, stage, decision: 'expired', reason: closed });
      }
    }
    await condition(() => decided !== null || closed !== null);
  } catch (err) {
    if (!isCancellation(err)) throw err;
    // Withdrawn: the stage closes, its links stop working, and nothing more is sent.
    mailing.cancel();
    await CancellationScope.nonCancellable(() => db.closeStage({ requestId, stage, decision: 'cancelled', reason: 'the request was withdrawn' }));
    throw err;
  }
  await condition(() => !deciding);
  mailing.cancel();
  await Promise.all(sending);
  const outcome = decided as DecisionOutcome | null;
  if (outcome) return { decision: outcome.decision, decidedBy: outcome.decidedBy, reason: null };
  const expired = closed === 'no decision before the deadline';
  if (!expired) await db.closeStage({ requestId, stage, decision: 'cancelled', reason: closed ?? 'closed' });
  return { decision: expired ? 'expired' : 'cancelled', decidedBy: null, reason: closed };
}
