// An operator retries a failed grant now (`POST /api/v1/grants/{id}/retry`, `jml retry-grant`),
// the operator's side of a `grant_failed` or `revoke_failed` alert, instead of waiting for the
// end of the workflow's `afterFailure` backoff. The request is audited with who asked, and the
// workflow that owns the grant is woken:
// - the person's lifecycle (birthright grants, and whatever a leaver, rescind or move revokes),
//   through signalWithStart, so a lifecycle that has ended is started again (it rebuilds the
//   person from the database);
// - the access-request or JIT workflow of every live request for that access, whose grant
//   loop or revocation loop waits on its backoff.
// The grant's own alert resolves itself when the retried grant is proven (activities/grants.ts).
import type { Client } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/client';
import { eq } from 'drizzle-orm';
import { liveRequestsOf } from '../db/access-context.js';
import type { Db } from '../db/client.js';
import { writeAudit } from '../db/audit.js';
import { accessRequests, grants, identities } from '../db/schema.js';
import { lifecycle, retryGrantsSignal } from '../workflows/lifecycle.js';
import { accessRequestWorkflowId, jitElevationWorkflowId, retryGrantSignal } from '../workflows/request-messages.js';
import { lifecycleWorkflowId } from './dispatch.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Revocations the lifecycle itself runs (the rest are a request's own: expiry, withdrawal, review). */
const LIFECYCLE_REVOKE_REASONS: ReadonlySet<string> = new Set(['leaver', 'rescinded', 'mover']);

/** Why a grant retry was refused: no such grant, or it has not failed. */
export class GrantRetryRefused extends Error {
  constructor(
    readonly grantId: string,
    readonly code: 'not_found' | 'not_failed',
    readonly status: string | null,
  ) {
    super(code === 'not_found' ? `no grant ${grantId}` : `grant ${grantId} is ${status}, not failed`);
    this.name = 'GrantRetryRefused';
  }
}

export interface GrantRetryDeps {
  db: Db;
  temporal: Client;
  taskQueue: string;
}

export interface GrantRetried {
  grantId: string;
  identityId: string;
  employeeId: string;
  entitlementId: string;
  /** The workflows told to try now. */
  woke: string[];
}

/**
 * Retries a failed grant (or failed revocation) now. Only a `failed` grant can be retried; an
 * id that is not a UUID is simply not found (it never reaches Postgres).
 */
export async function retryGrant(deps: GrantRetryDeps, grantId: string, actor: string): Promise<GrantRetried> {
  if (!UUID.test(grantId)) throw new GrantRetryRefused(grantId, 'not_found', null);
  const id = grantId.toLowerCase();
  const found = await deps.db.transaction(async (tx) => {
    const [row] = await tx
      .select({ grant: grants, employeeId: identities.employeeId, identityStatus: identities.status, ownerKind: accessRequests.kind })
      .from(grants)
      .innerJoin(identities, eq(identities.id, grants.identityId))
      .innerJoin(accessRequests, eq(accessRequests.id, grants.requestId))
      .where(eq(grants.id, id))
      .for('update', { of: grants });
    if (!row) throw new GrantRetryRefused(id, 'not_found', null);
    if (row.grant.status !== 'failed') throw new GrantRetryRefused(id, 'not_failed', row.grant.status);
    await writeAudit(tx, {
      actor,
      action: 'grant.retry_requested',
      subjectType: 'grant',
      subjectId: id,
      before: { status: row.grant.status, attempts: row.grant.attempts },
      after: { status: row.grant.status, lastError: row.grant.lastError, revokeReason: row.grant.revokeReason },
      correlationId: row.grant.requestId,
    });
    return row;
  });
  const { grant, employeeId } = found;

  const woke: string[] = [];
  // Every live request for this access: the one that made the grant, and any that share it.
  const requests = await deps.db
    .select({ id: accessRequests.id, kind: accessRequests.kind })
    .from(accessRequests)
    .where(liveRequestsOf(grant));
  for (const request of requests) {
    const workflowId = request.kind === 'jit' ? jitElevationWorkflowId(request.id) : accessRequestWorkflowId(request.id);
    try {
      await deps.temporal.workflow.getHandle(workflowId).signal(retryGrantSignal, { grantId: id });
      woke.push(workflowId);
    } catch (err) {
      // That request's workflow has ended: it waits on nothing.
      if (!(err instanceof WorkflowNotFoundError)) throw err;
    }
  }

  const terminal = found.identityStatus === 'terminated' || found.identityStatus === 'rescinded';
  const lifecycleOwns = found.ownerKind === 'birthright' || terminal || (grant.revokeReason !== null && LIFECYCLE_REVOKE_REASONS.has(grant.revokeReason));
  // Nobody else waits on it: the lifecycle's next decision is the one that can still act on it.
  if (lifecycleOwns || woke.length === 0) {
    const workflowId = lifecycleWorkflowId(employeeId);
    await deps.temporal.workflow.signalWithStart(lifecycle, {
      workflowId,
      taskQueue: deps.taskQueue,
      args: [{ employeeId }],
      signal: retryGrantsSignal,
      signalArgs: [{ grantId: id }],
    });
    woke.push(workflowId);
  }
  return { grantId: id, identityId: grant.identityId, employeeId, entitlementId: grant.entitlementId, woke };
}
