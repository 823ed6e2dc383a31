// One access request (`access-request:<requestId>`): approval stage by stage (child
// workflows), then the grant through the verified path birthright uses, then a durable timer
// to its expiry, and removal through the verified revocation path, reference-counted with
// birthright and other requests. The three statuses stay apart: the request status moves on
// decisions, the grant status on read-backs, the revocation status on proven removal. An
// approved request whose grant fails is retried on a backoff, with an alert and a mail that
// says it is being fixed, until it is granted or withdrawn: it never looks done.
import {
  ActivityFailure,
  allHandlersFinished,
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  log,
  ParentClosePolicy,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  sleep,
  startChild,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { PlannedGrant } from '../activities/grants.js';
import type { RemovalPlan, RequestSnapshot, StageRole } from '../activities/requests.js';
import type { RevokeReason } from '../domain/lifecycle.js';
import type { RequestStatus } from '../domain/types.js';
import { failureMessage, isNotVerified } from './activity-failures.js';
import { approval, type ApprovalResult } from './approval.js';
import {
  approvalWorkflowId,
  DECISION_REFUSALS,
  extendUpdate,
  moverReviewSignal,
  retryGrantSignal,
  withdrawUpdate,
  type ExtendInput,
  type ExtendOutcome,
  type WithdrawInput,
  type WithdrawOutcome,
} from './request-messages.js';

export interface AccessRequestInput {
  requestId: string;
}

const DB_RETRY = { initialInterval: '1s', maximumInterval: '1m', backoffCoefficient: 2 };
const db = proxyActivities<Activities>({ startToCloseTimeout: '30s', heartbeatTimeout: '20s', retry: DB_RETRY });
const mail = proxyActivities<Activities>({ startToCloseTimeout: '1m', heartbeatTimeout: '20s', retry: { initialInterval: '5s', maximumInterval: '5m', backoffCoefficient: 2 } });
const read = proxyLocalActivities<Activities>({ startToCloseTimeout: '30s', retry: DB_RETRY });

/** An access request (`access-request:<id>`). */
export async function accessRequest(input: AccessRequestInput): Promise<void> {
  return runRequest(input);
}

/**
 * A just-in-time elevation (`jit:<id>`): an access request of kind `jit`, with its own
 * approval route (possibly none, or break-glass), a required end, extensions, and a warning
 * before the end. One body for both, so overlap, removal and proof follow one set of rules.
 */
export async function jitElevation(input: AccessRequestInput): Promise<void> {
  return runRequest(input);
}

async function runRequest(input: AccessRequestInput): Promise<void> {
  const { requestId } = input;
  let phase: 'approval' | 'granting' | 'granted' | 'removing' | 'ended' = 'approval';
  let withdraw: WithdrawInput | null = null;
  let withdrawOutcome: WithdrawOutcome | null = null;
  let requestStatus: RequestStatus = 'pending_approval';
  const reviews: string[] = [];
  let loaded: RequestSnapshot | undefined = undefined; // set once the request is read; handlers may run before
  let expiresAt: number | null = null;
  /** Extensions that wait for approval, oldest first. */
  const extensionsAsked: ExtendInput[] = [];
  /** The owner's review of a break-glass elevation said it was not justified. */
  let reviewEnds = false;

  const refuseExtension = (detail: string, rule: string, field: string) =>
    ApplicationFailure.create({ message: detail, type: DECISION_REFUSALS.extensionRefused, nonRetryable: true, details: [rule, field] });
  setHandler(
    extendUpdate,
    async (asked): Promise<ExtendOutcome> => {
      // Asked while the grant is being proven (the API may already show it): wait for it.
      await condition(() => phase !== 'granting');
      if (phase !== 'granted' || withdraw !== null || reviewEnds) throw refuseExtension('only an active elevation can be extended', 'not_extendable', 'id');
      const check = await db.checkElevationExtension({ requestId, durationMs: asked.durationMs, now: new Date().toISOString() });
      if (!check.ok) throw refuseExtension(check.detail, check.rule, check.field);
      if (check.needsApproval && !loaded?.breakGlass) {
        extensionsAsked.push(asked);
        return { status: 'pending_approval', stage: stage + extensionsAsked.length };
      }
      const applied = await db.applyElevationExtension({ requestId, expiresAt: check.newExpiresAt, by: asked.by });
      expiresAt = Date.parse(applied.expiresAt);
      return { status: 'extended', ...applied };
    },
    {
      validator: (asked) => {
        if (loaded?.kind !== 'jit' || (phase !== 'granted' && phase !== 'granting') || withdraw !== null || reviewEnds) throw refuseExtension('only an active elevation can be extended', 'not_extendable', 'id');
        if (!asked.by || !(Number.isSafeInteger(asked.durationMs) && asked.durationMs > 0)) throw refuseExtension('an extension names who asks and a duration longer than 0', 'duration_invalid', 'duration');
      },
    },
  );

  setHandler(
    withdrawUpdate,
    async (asked) => {
      withdraw = asked;
      await condition(() => withdrawOutcome !== null);
      return withdrawOutcome as WithdrawOutcome;
    },
    {
      validator: (asked) => {
        if (!asked.by) throw ApplicationFailure.create({ message: 'a withdrawal names who asks', type: DECISION_REFUSALS.notWithdrawable, nonRetryable: true });
        if (phase === 'ended' || phase === 'removing' || withdraw !== null) {
          throw ApplicationFailure.create({ message: 'this request has ended or is being removed already', type: DECISION_REFUSALS.notWithdrawable, nonRetryable: true });
        }
      },
    },
  );
  setHandler(moverReviewSignal, ({ eventId }) => {
    reviews.push(eventId);
  });
  /** An operator asked to retry the failed grant (or revocation) now; cleared as each attempt starts. */
  let retryAsked = false;
  setHandler(retryGrantSignal, () => {
    retryAsked = true;
  });

  // Mail goes out beside the work: an SMTP outage delays it and never the access itself.
  const notices: Array<Promise<unknown>> = [];
  const notify = (kind: Parameters<Activities['notifyRequester']>[0]['kind']) => notices.push(mail.notifyRequester({ requestId, kind }).catch(() => undefined));
  const setStatus = async (status: RequestStatus, reason?: string | null, actor?: string | null) => {
    requestStatus = await db.setRequestStatus({ requestId, status, reason: reason ?? null, ...(actor ? { actor } : {}) });
    return requestStatus === status;
  };
  const finish = async () => {
    phase = 'ended';
    await breakGlassReview;
    // A withdrawal that came as the request ended on its own hears how it ended.
    withdrawOutcome ??= { requestStatus, grantStatus: null, revocationStatus: null, retainedBy: [] };
    await Promise.all(notices);
    await condition(allHandlersFinished);
  };

  const request = await read.loadRequest(requestId);
  loaded = request;
  requestStatus = request.status;
  // Closed before its workflow ran (a leaver's requests are cancelled): nothing to do.
  if (request.status !== 'pending_approval') return finish();

  // --- approval, stage by stage ---------------------------------------------------------
  let stage = 0;
  // Break-glass: granted at once, a critical alert now, and the owner's review afterwards
  // (it runs beside the elevation, and outlives it: the owner must close it).
  let breakGlassReview: Promise<unknown> = Promise.resolve();
  if (request.breakGlass) {
    await db.raiseBreakGlassAlert(requestId);
    stage += 1;
    const reviewStage = stage;
    breakGlassReview = runStage(request, reviewStage, 'break_glass_review', false).then(async (result) => {
      if (result === 'withdrawn') return;
      await db.closeBreakGlassReview({ requestId, decision: result.decision, decidedBy: result.decidedBy });
      if (result.decision === 'denied') reviewEnds = true;
    });
  }
  for (const role of request.roles) {
    stage += 1;
    const result = await runStage(request, stage, role);
    if (result === 'withdrawn') {
      const asked = withdraw as WithdrawInput | null;
      if (await setStatus('cancelled', `withdrawn by ${asked?.by ?? 'the requester'}${asked?.reason ? `: ${asked.reason}` : ''}`, asked?.by)) notify('cancelled');
      return finish();
    }
    if (result.decision !== 'approved') {
      const status = result.decision;
      if (await setStatus(status, status === 'denied' ? `denied by ${result.decidedBy}` : result.reason, result.decidedBy)) notify(status);
      return finish();
    }
  }
  // No stage (an elevation its policy lets through, or break-glass): approved by the policy itself.
  const approvedAs = request.roles.length === 0 ? 'auto_approved' : 'approved';
  if (!(await setStatus(approvedAs))) return finish(); // closed meanwhile (the person left)
  if (approvedAs === 'approved') notify('approved');

  // --- the grant, proven by read-back; retried until it holds or is withdrawn ----------
  phase = 'granting';
  const connector = proxyActivities<Activities>({
    startToCloseTimeout: '1m',
    heartbeatTimeout: '20s',
    retry: { initialInterval: request.retries.initialInterval, maximumInterval: request.retries.maximumInterval, maximumAttempts: request.retries.maximumAttempts, backoffCoefficient: 2 },
  });
  let granted = false;
  let backoff = request.retries.afterFailure.initialInterval;
  let failureMailed = false;
  let reason: RevokeReason | null = null;
  /** Set when the workflow itself is cancelled: the access still goes, and then it ends cancelled. */
  let cancelled: unknown = null;
  try {
    while (withdraw === null) {
      retryAsked = false;
      // Asked afresh each attempt: the grant may have been replaced meanwhile.
      const planned = await db.createRequestedGrant(requestId);
      if (planned === null) {
        // Another request's removal of this access is under way: once proven, a grant of its own.
        await condition(() => withdraw !== null, 1_000);
        continue;
      }
      granted = await provision(planned);
      if (granted) break;
      if (!failureMailed) notify('grant_failed');
      failureMailed = true;
      // An operator's retry ends the wait at once (a signal that changes no command when it never comes).
      await condition(() => withdraw !== null || retryAsked, backoff);
      backoff = Math.min(backoff * 2, request.retries.afterFailure.maximumInterval);
    }
    if (granted) {
      const end = await db.markRequestGranted(requestId);
      expiresAt = end === null ? null : Date.parse(end);
      notify('granted');
      phase = 'granted';
    }

    // --- held until its expiry, a withdrawal, or a review that says remove ------------------
    if (withdraw !== null) reason = 'withdrawn';
    /** The end an elevation's "ends soon" mail was sent for. */
    let warnedFor: number | null = null;
    while (reason === null) {
      const end = expiresAt;
      // An elevation's requester hears `warnBefore` ahead of the end (again after an extension).
      const warnAt = request.kind === 'jit' && end !== null && request.warnBeforeMs > 0 && warnedFor !== end ? end - request.warnBeforeMs : null;
      const wake = warnAt !== null && warnAt > Date.now() ? warnAt : end;
      const wait = wake === null ? undefined : wake - Date.now();
      const interrupted = () => withdraw !== null || reviews.length > 0 || extensionsAsked.length > 0 || reviewEnds || expiresAt !== end;
      if (wait === undefined) await condition(interrupted);
      else if (wait > 0) await condition(interrupted, wait);
      if (withdraw !== null) reason = 'withdrawn';
      else if (reviewEnds) reason = 'review';
      else if (expiresAt !== end) continue; // extended: the timers start again from the new end
      else if (extensionsAsked.length > 0) {
        const asked = extensionsAsked.shift()!;
        const result = await approveAgain(asked);
        if (result === 'withdrawn') reason = 'withdrawn';
      } else if (warnAt !== null && end !== null && Date.now() < end) {
        warnedFor = end;
        notify('expiring');
      } else if (reviews.length > 0) {
        reviews.splice(0);
        stage += 1;
        const result = await runStage(request, stage, 'mover_review');
        if (result === 'withdrawn') reason = 'withdrawn';
        else {
          const keep = result.decision === 'approved' || (result.decision === 'expired' && request.approval.moverReview.default === 'keep');
          await db.recordReviewOutcome({ requestId, stage, keep, decision: result.decision, decidedBy: result.decidedBy });
          if (!keep) reason = 'review';
        }
      } else if (expiresAt !== null && Date.now() >= expiresAt) reason = 'expired';
    }
  } catch (err) {
    if (!isCancellation(err)) throw err;
    // Cancelling the workflow never leaves the access behind: it is removed, proven, first.
    cancelled = err;
    reason = 'manual';
  }

  // --- removal, reference-counted ---------------------------------------------------------
  phase = 'removing';
  const removing: RevokeReason = reason ?? 'withdrawn';
  const plan: RemovalPlan = await CancellationScope.nonCancellable(() => db.planRemoval({ requestId, reason: removing }));
  if (withdraw !== null && withdrawOutcome === null) {
    withdrawOutcome = {
      requestStatus: 'approved',
      grantStatus: plan.grantStatus,
      revocationStatus: plan.action === 'retain' ? 'retained' : plan.action === 'revoke' ? 'pending' : null,
      retainedBy: plan.action === 'retain' ? plan.retainedBy : [],
    };
  }
  if (plan.action === 'retain') notify('retained');
  if (plan.action === 'revoke') {
    let wait = request.retries.afterFailure.initialInterval;
    let mailed = false;
    // v2: an operator's retry ends the wait between revocation attempts at once (a condition
    // with a timeout instead of a sleep). Histories recorded before replay the sleep.
    const retrySignalled = patched('grant-retry-signal');
    // Cleanup that must happen: nothing cancels a revocation under way.
    await CancellationScope.nonCancellable(async () => {
      for (;;) {
        retryAsked = false;
        try {
          await connector.revokeGrant(plan.grantId, removing);
          await connector.verifyRevoked(plan.grantId);
          break;
        } catch (err) {
          if (!(err instanceof ActivityFailure)) throw err;
          log.warn('revocation failed', { requestId });
          // revoke_failed is raised at once (markGrantFailed); the revocation is retried until proven.
          await db.markGrantFailed(plan.grantId, failureMessage(err), 'revoke');
          if (!mailed) notify('revoke_failed');
          mailed = true;
          if (retrySignalled) await condition(() => retryAsked, wait);
          else await sleep(wait);
          wait = Math.min(wait * 2, request.retries.afterFailure.maximumInterval);
        }
      }
    });
    notify('removed');
  } else if (plan.action === 'none' && granted) {
    notify('removed');
  }
  if (cancelled !== null) {
    phase = 'ended';
    throw cancelled;
  }
  return finish();

  /**
   * An extension that needs approval again: its stages run as the elevation's did, and once
   * approved it is checked against the policy once more (time has passed) and applied.
   */
  async function approveAgain(asked: ExtendInput): Promise<'withdrawn' | 'done'> {
    for (const role of request.roles) {
      stage += 1;
      const result = await runStage(request, stage, role);
      if (result === 'withdrawn') return 'withdrawn';
      if (result.decision !== 'approved') return 'done';
    }
    const check = await db.checkElevationExtension({ requestId, durationMs: asked.durationMs, now: new Date().toISOString() });
    if (check.ok) expiresAt = Date.parse((await db.applyElevationExtension({ requestId, expiresAt: check.newExpiresAt, by: asked.by })).expiresAt);
    return 'done';
  }

  /** Runs one approval stage as a child workflow; a withdrawal cancels it (unless it is a review that outlives the access). */
  async function runStage(snapshot: RequestSnapshot, n: number, role: StageRole, cancelOnWithdraw = true): Promise<ApprovalResult | 'withdrawn'> {
    const review = role === 'mover_review';
    const timing = review
      ? { timeoutMs: snapshot.approval.moverReview.timeoutMs, reminderAfterMs: snapshot.approval.reminderAfterMs, escalateAfterMs: snapshot.approval.escalateAfterMs }
      : { timeoutMs: snapshot.approval.timeoutMs, reminderAfterMs: snapshot.approval.reminderAfterMs, escalateAfterMs: snapshot.approval.escalateAfterMs };
    const scope = new CancellationScope();
    const child = await scope.run(() =>
      startChild(approval, {
        workflowId: approvalWorkflowId(requestId, n),
        parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
        args: [
          {
            requestId,
            stage: n,
            role,
            subjectId: snapshot.employeeId,
            requesterId: review ? null : snapshot.requesterId,
            ...timing,
            ...(review ? { moverDefault: snapshot.approval.moverReview.default } : {}),
          },
        ],
      }),
    );
    const result = child.result();
    if (!cancelOnWithdraw) return result;
    const outcome = await Promise.race([result.then((r) => ({ done: r })), condition(() => withdraw !== null).then(() => 'withdrawn' as const)]);
    if (outcome !== 'withdrawn') return outcome.done;
    // The withdrawal wins, even over a decision that landed a moment before it.
    scope.cancel();
    await result.catch(() => undefined);
    return 'withdrawn';
  }

  /** pending -> provisioning -> read back -> active; false (with an alert) when it fails. */
  async function provision(grant: PlannedGrant): Promise<boolean> {
    try {
      await connector.provisionGrant(grant.grantId);
      await connector.verifyGrant(grant.grantId);
      return true;
    } catch (err) {
      if (!(err instanceof ActivityFailure)) throw err;
      log.warn('grant failed', { requestId });
      await db.markGrantFailed(grant.grantId, failureMessage(err), 'grant', isNotVerified(err));
      return false;
    }
  }
}
