// `GET /identities/{id}/plan` and `jml explain`: the person's pending steps, read from their
// lifecycle workflow, explained against the current policy and what they hold.
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { eq } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { loadHoldings } from '../db/holdings.js';
import { identities } from '../db/schema.js';
import type { JmlConfig } from '../domain/config.js';
import { explainPlan, type ExplainedStep, type PlanStep } from '../domain/plan.js';
import { policySnapshot } from '../domain/policy.js';
import type { HrEventSignal, IdentityAttributes, IdentityStatus } from '../domain/types.js';

export interface IdentityPlan {
  employeeId: string;
  status: IdentityStatus | 'unknown';
  /** False when no lifecycle workflow runs for the person (nothing pending). */
  workflow: boolean;
  steps: ExplainedStep[];
}

interface WorkflowState {
  steps: PlanStep[];
  parked: HrEventSignal[];
  person: { status: IdentityStatus | 'none'; attributes: IdentityAttributes; lastEffectiveAt?: string };
}

export async function explainIdentity(deps: { db: Db; temporal: Client; config: JmlConfig }, employeeId: string): Promise<IdentityPlan> {
  const [identity] = await deps.db.select().from(identities).where(eq(identities.employeeId, employeeId));
  let state: WorkflowState | undefined;
  try {
    state = await deps.temporal.workflow.getHandle(`lifecycle:${employeeId}`).query<WorkflowState>('state');
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) throw err;
  }
  const { holdings, requestedEntitlements } = identity ? await loadHoldings(deps.db, identity.id) : { holdings: [], requestedEntitlements: [] };
  const steps = state
    ? explainPlan({ steps: state.steps, parked: state.parked, person: state.person, held: holdings, requested: requestedEntitlements, policy: policySnapshot(deps.config) })
    : [];
  return { employeeId, status: (identity?.status as IdentityStatus | undefined) ?? 'unknown', workflow: state !== undefined, steps };
}
