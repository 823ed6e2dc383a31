// Submitting an access request: the use case behind POST /api/v1/access-requests (and the
// CLI through it). The policy of domain/access-policy.ts decides first, inside the same
// transaction that would record the request, so a refused request records nothing and two
// requests for one person cannot both pass a check the other would have failed (already
// pending, SoD with a pending request): they take turns on an advisory lock on the subject.
//
// The accessRequest workflow is started after the commit. Postgres is the record: if
// Temporal is down or the start fails, the request is still accepted, and the sweeper
// (startRequestSweeper) starts every request whose workflow_started_at is still empty.
// JIT elevations (services/jit.ts) are recorded and started by the same skeleton
// (submitRequest), with their own policy and the jitElevation workflow.
import type { Client } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { and, asc, eq, inArray, isNull, lt, ne, sql } from 'drizzle-orm';
import { checkAccessRequest, type AccessRefusal } from '../domain/access-policy.js';
import type { JmlConfig } from '../domain/config.js';
import { canonicalEmployeeId } from '../domain/employee-id.js';
import { loadAccessContext } from '../db/access-context.js';
import { writeAudit } from '../db/audit.js';
import { sqlStateOf, type Db, type Tx } from '../db/client.js';
import { accessRequests, identities } from '../db/schema.js';
import { safeErrorInfo } from '../api/problem.js';
import type { RequestKind } from '../domain/types.js';
import { accessRequestWorkflowId, jitElevationWorkflowId } from '../workflows/request-messages.js';
import { runPeriodically } from './periodic.js';

/** The Temporal workflow types of requests (workflows/ registers them under these names). */
export const ACCESS_REQUEST_WORKFLOW = 'accessRequest';
export const JIT_ELEVATION_WORKFLOW = 'jitElevation';

/** The kinds of request that run a workflow of their own (birthright grants are the lifecycle's). */
export type WorkflowKind = Extract<RequestKind, 'requested' | 'jit'>;

/** The workflow type and id that run a request of this kind. */
export function requestWorkflow(kind: WorkflowKind, requestId: string): { type: string; workflowId: string } {
  return kind === 'jit' ? { type: JIT_ELEVATION_WORKFLOW, workflowId: jitElevationWorkflowId(requestId) } : { type: ACCESS_REQUEST_WORKFLOW, workflowId: accessRequestWorkflowId(requestId) };
}

/** The id of the workflow that runs the request: `access-request:<id>`, or `jit:<id>` for an elevation. */
export const workflowIdOf = (kind: WorkflowKind, requestId: string): string => requestWorkflow(kind, requestId).workflowId;

const isWorkflowKind = (kind: string): kind is WorkflowKind => kind === 'requested' || kind === 'jit';

/** What the shell needs to warn with: pino's and Fastify's loggers both fit. */
export interface WarnLogger {
  warn(obj: object, msg: string): void;
}

export interface SubmitDeps {
  db: Db;
  config: JmlConfig;
  /** Absent: the request is recorded and the sweeper starts its workflow later. */
  temporal?: Client;
  taskQueue: string;
  logger?: WarnLogger;
}

/** Who asks, and under which key: what the shell adds to any kind's input (an access request's, an elevation's). */
export interface Submitter {
  /** The requester's employee id, or `api:<token name>` for a token bound to nobody. */
  requestedBy: string;
  /** The requester's employee id when the token is bound to a person; the policy's self-approval check uses it. */
  requestedByEmployeeId: string | null;
  /** Unique per requester (the route prefixes the caller's key with the kind and its token id). */
  idempotencyKey: string;
}

export interface SubmitInput extends Submitter {
  /** The subject: who the access is for (any case; folded). */
  employeeId: string;
  entitlementId: string;
  justification: string;
  durationMs?: number;
}

export type SubmitResult = { created: boolean; requestId: string } | { refused: AccessRefusal };

/** The idempotency key was used before for a request that is not this one. */
export class IdempotencyKeyReused extends Error {
  constructor() {
    super('idempotency key reused with a different request');
    this.name = 'IdempotencyKeyReused';
  }
}

const UNIQUE_VIOLATION = '23505';

/**
 * Checks and records a request in one transaction, then starts its workflow. A key seen
 * before answers the request it made (created: false) when the body is the same one, and
 * throws IdempotencyKeyReused when it is not.
 */
export function submitAccessRequest(deps: SubmitDeps, input: SubmitInput): Promise<SubmitResult> {
  const durationMs = input.durationMs ?? null;
  return submitRequest<AccessRefusal>(deps, {
    kind: 'requested',
    input,
    sameAs: (existing, subjectId) => existing.entitlementId === input.entitlementId && existing.subjectId === subjectId && existing.justification === input.justification && existing.durationMs === durationMs,
    async decide(tx, subjectId) {
      const context = await loadAccessContext(tx, deps.config, subjectId);
      const decision = checkAccessRequest(
        {
          employeeId: subjectId,
          entitlementId: input.entitlementId,
          justification: input.justification,
          ...(input.durationMs !== undefined ? { durationMs: input.durationMs } : {}),
          requestedBy: input.requestedByEmployeeId,
        },
        context,
      );
      if (!decision.ok) return { refused: decision };
      // The policy refuses an unknown subject, so a passing request has one.
      if (!context.subjectIdentityId) throw new Error('policy passed a request without a subject identity');
      return {
        identityId: context.subjectIdentityId,
        values: { entitlementId: input.entitlementId, justification: input.justification, durationMs },
        // The justification is the requester's free text: it stays in the request row only.
        audit: { status: 'pending_approval', entitlementId: input.entitlementId, employeeId: subjectId, durationMs, requestedBy: input.requestedBy, approvers: decision.stages.map((s) => s.approverId) },
      };
    },
  });
}

// --- the submission skeleton, shared by access requests and JIT elevations (services/jit.ts) ---

/** A request row found under an idempotency key: what a replay is compared with. */
export type RecordedRequest = Pick<typeof accessRequests.$inferSelect, 'id' | 'kind' | 'entitlementId' | 'justification' | 'durationMs' | 'ticket' | 'breakGlass' | 'workflowStartedAt'> & {
  /** The subject's canonical employee id. */
  subjectId: string;
};

/** The columns a kind's policy sets on a new request row (the skeleton sets the rest). */
export type RequestValues = Pick<typeof accessRequests.$inferInsert, 'entitlementId' | 'justification' | 'durationMs' | 'ticket' | 'breakGlass'>;

/** What a policy decided inside the transaction: a refusal (nothing is written), or the row and its audit entry. */
export type RequestDecision<Refusal> = { refused: Refusal } | { identityId: string; values: RequestValues; audit: Record<string, unknown> };

export interface RequestSubmission<Refusal> {
  kind: WorkflowKind;
  /**
   * The subject (any case; folded), the requester as recorded (and the audit actor) and the
   * key; the rest of the kind's input is its policy's (`sameAs`, `decide`).
   */
  input: { employeeId: string } & Pick<Submitter, 'requestedBy' | 'idempotencyKey'>;
  /** Whether the row recorded under the key is this same submission, i.e. this is a replay. */
  sameAs(existing: RecordedRequest, subjectId: string): boolean;
  /** The policy, run under the subject's lock in the transaction that records the request. */
  decide(tx: Tx, subjectId: string): Promise<RequestDecision<Refusal>>;
}

/**
 * The one way a request is recorded and started: the subject's advisory lock, the
 * idempotency key, the kind's policy, the insert with its audit entry, all in one
 * transaction; then its workflow, under the id its request id determines.
 */
export async function submitRequest<Refusal>(deps: SubmitDeps, submission: RequestSubmission<Refusal>): Promise<{ created: boolean; requestId: string } | { refused: Refusal }> {
  let result: RecordResult<Refusal>;
  try {
    result = await recordRequest(deps, submission);
  } catch (err) {
    // The same key for another subject: the subject locks did not serialise the two, the
    // unique index did. Once more, the transaction finds the row the other one committed.
    if (sqlStateOf(err) !== UNIQUE_VIOLATION) throw err;
    result = await recordRequest(deps, submission);
  }
  if ('refused' in result) return result;
  // A replay starts the workflow only if the first attempt could not (the sweeper would, later).
  if (result.unstarted) await startRequestWorkflow(deps, result.requestId, submission.kind);
  return { created: result.created, requestId: result.requestId };
}

type RecordResult<Refusal> = { created: boolean; requestId: string; unstarted: boolean } | { refused: Refusal };

async function recordRequest<Refusal>(deps: SubmitDeps, submission: RequestSubmission<Refusal>): Promise<RecordResult<Refusal>> {
  const { input } = submission;
  const subjectId = canonicalEmployeeId(input.employeeId);
  return deps.db.transaction(async (tx) => {
    // Requests for one person take turns: what is held and pending is read and acted on as one.
    await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${subjectId}))`);

    const [existing] = await tx
      .select({
        id: accessRequests.id,
        kind: accessRequests.kind,
        entitlementId: accessRequests.entitlementId,
        justification: accessRequests.justification,
        durationMs: accessRequests.durationMs,
        ticket: accessRequests.ticket,
        breakGlass: accessRequests.breakGlass,
        subjectId: identities.employeeId,
        workflowStartedAt: accessRequests.workflowStartedAt,
      })
      .from(accessRequests)
      .innerJoin(identities, eq(identities.id, accessRequests.identityId))
      .where(eq(accessRequests.idempotencyKey, input.idempotencyKey));
    if (existing) {
      if (existing.kind !== submission.kind || !submission.sameAs(existing, subjectId)) throw new IdempotencyKeyReused();
      return { created: false, requestId: existing.id, unstarted: existing.workflowStartedAt === null };
    }

    const decision = await submission.decide(tx, subjectId);
    if ('refused' in decision) return { refused: decision.refused };

    const [row] = await tx
      .insert(accessRequests)
      .values({
        ...decision.values,
        idempotencyKey: input.idempotencyKey,
        identityId: decision.identityId,
        kind: submission.kind,
        status: 'pending_approval',
        requestedBy: input.requestedBy,
      })
      .returning({ id: accessRequests.id });
    if (!row) throw new Error('access request insert returned nothing');
    await writeAudit(tx, {
      actor: input.requestedBy,
      action: 'access_request.submitted',
      subjectType: 'access_request',
      subjectId: row.id,
      after: decision.audit,
      correlationId: row.id,
    });
    return { created: true, requestId: row.id, unstarted: true };
  });
}

/**
 * Starts (or finds) the request's workflow and records that it runs. Never throws: without
 * Temporal, or when the start fails, the row stays unstarted and the sweeper tries again.
 * Returns whether the workflow is known to run.
 */
export async function startRequestWorkflow(deps: { db: Db; temporal?: Client; taskQueue: string; logger?: WarnLogger }, requestId: string, kind: WorkflowKind = 'requested'): Promise<boolean> {
  if (!deps.temporal) {
    deps.logger?.warn({ requestId, kind }, 'no Temporal client: the request workflow will be started by the sweeper');
    return false;
  }
  const { type, workflowId } = requestWorkflow(kind, requestId);
  try {
    await deps.temporal.workflow.start(type, {
      workflowId,
      taskQueue: deps.taskQueue,
      args: [{ requestId }],
      // A retried start finds the running workflow; a finished one is never run again.
      workflowIdConflictPolicy: 'USE_EXISTING',
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
    });
  } catch (err) {
    // It ran, and has ended: it was started, all the same.
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) {
      deps.logger?.warn({ requestId, kind, err: safeErrorInfo(err) }, 'could not start the request workflow; the sweeper will retry');
      return false;
    }
  }
  try {
    await deps.db
      .update(accessRequests)
      .set({ workflowStartedAt: sql`now()` })
      .where(and(eq(accessRequests.id, requestId), isNull(accessRequests.workflowStartedAt)));
  } catch (err) {
    // The workflow runs; a later sweep starts it again (USE_EXISTING) and records it then.
    deps.logger?.warn({ requestId, kind, err: safeErrorInfo(err) }, 'could not record the start of the request workflow');
    return false;
  }
  return true;
}

/**
 * Starts the request's workflow now if it was never started (the sweeper has not come by
 * yet), so that a withdrawal or decision has a workflow to address. Never throws.
 */
export async function ensureRequestWorkflow(deps: { db: Db; temporal: Client; taskQueue: string; logger?: WarnLogger }, requestId: string): Promise<void> {
  const [row] = await deps.db
    .select({ startedAt: accessRequests.workflowStartedAt, kind: accessRequests.kind })
    .from(accessRequests)
    .where(eq(accessRequests.id, requestId));
  if (row && row.startedAt === null && isWorkflowKind(row.kind)) await startRequestWorkflow(deps, requestId, row.kind);
}

/** One sweep: starts the workflows of requests recorded more than `graceMs` ago and not yet started. */
export async function startUnstartedRequests(
  deps: { db: Db; temporal: Client; taskQueue: string; logger?: WarnLogger },
  options: { graceMs?: number; batch?: number } = {},
): Promise<{ scanned: number; started: number }> {
  const cutoff = new Date(Date.now() - (options.graceMs ?? 10_000));
  // The predicate of access_requests_unstarted_idx, so the scan is that index; requested
  // access runs the accessRequest workflow, an elevation the jitElevation workflow.
  const rows = await deps.db
    .select({ id: accessRequests.id, kind: accessRequests.kind })
    .from(accessRequests)
    .where(and(isNull(accessRequests.workflowStartedAt), ne(accessRequests.kind, 'birthright'), inArray(accessRequests.kind, ['requested', 'jit']), lt(accessRequests.createdAt, cutoff)))
    .orderBy(asc(accessRequests.createdAt))
    .limit(options.batch ?? 100);
  let started = 0;
  for (const row of rows) {
    if (isWorkflowKind(row.kind) && (await startRequestWorkflow(deps, row.id, row.kind))) started += 1;
  }
  return { scanned: rows.length, started };
}

/**
 * Every `intervalMs`, starts the workflows of requests the API recorded but could not start
 * (Temporal was down, the process died between commit and start). One pass at a time.
 */
export function startRequestSweeper(db: Db, temporal: Client, taskQueue: string, logger: WarnLogger & { info(obj: object, msg: string): void }, intervalMs = 10_000, graceMs = 10_000): { stop(): Promise<void> } {
  return runPeriodically(
    async () => {
      const { started } = await startUnstartedRequests({ db, temporal, taskQueue, logger }, { graceMs });
      if (started > 0) logger.info({ started }, 'started access request and elevation workflows the API had left unstarted');
    },
    intervalMs,
    (err) => logger.warn({ err: safeErrorInfo(err) }, 'access request sweep failed; will retry'),
  );
}
