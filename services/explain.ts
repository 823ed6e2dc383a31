// `GET /identities/{id}/plan` and `jml explain`: the person's pending steps, read from their
// lifecycle workflow, explained by replaying the lifecycle core against the current policy
// and what they hold.
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { eq } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { loadHoldings } from '../db/holdings.js';
import { identities } from '../db/schema.js';
import type { JmlConfig } from '../domain/config.js';
import type { LifecycleState } from '../domain/lifecycle.js';
import { explainPlan, type ExplainedStep } from '../domain/plan.js';
import { policySnapshot } from '../domain/policy.js';
import type { IdentityStatus } from '../domain/types.js';
import { lifecycleStateQuery } from '../workflows/index.js';
import { lifecycleWorkflowId } from './dispatch.js';

export interface IdentityPlan {
  employeeId: string;
  status: IdentityStatus | 'unknown';
  /** False when no lifecycle workflow runs for the person (nothing pending). */
  workflow: boolean;
  steps: ExplainedStep[];
}

export async function explainIdentity(deps: { db: Db; temporal: Client; config: JmlConfig }, employeeId: string): Promise<IdentityPlan> {
  const [identity] = await deps.db.select().from(identities).where(eq(identities.employeeId, employeeId));
  let state: LifecycleState | undefined;
  try {
    state = await deps.temporal.workflow.getHandle(lifecycleWorkflowId(employeeId)).query(lifecycleStateQuery);
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) throw err;
  }
  const held = identity ? await loadHoldings(deps.db, identity.id) : { holdings: [], requestedEntitlements: [] };
  const steps = state ? explainPlan({ state, held, policy: policySnapshot(deps.config), now: Date.now() }) : [];
  return { employeeId, status: (identity?.status as IdentityStatus | undefined) ?? 'unknown', workflow: state !== undefined, steps };
}
