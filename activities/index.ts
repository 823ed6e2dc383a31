// The one activity factory the worker registers (samples-typescript style): workflows
// import only its type.
import { policySnapshot, type PolicySnapshot } from '../domain/policy.js';
import type { ActivityDeps } from './deps.js';
import { createEventActivities } from './events.js';
import { createGrantActivities } from './grants.js';
import { createIdentityActivities } from './identities.js';
import { createLifecycleActivities } from './lifecycle.js';
import { createJitActivities } from './jit.js';
import { createWatchdogActivities } from './watchdog.js';
import { createReconcileActivities } from './reconcile.js';
import { createRequestActivities } from './requests.js';
import { createTargetActivities } from './targets.js';

export function createActivities(deps: ActivityDeps) {
  return {
    ...createIdentityActivities(deps),
    ...createEventActivities(deps),
    ...createGrantActivities(deps),
    ...createLifecycleActivities(deps),
    ...createTargetActivities(deps),
    ...createRequestActivities(deps),
    ...createJitActivities(deps),
    ...createWatchdogActivities(deps),
    ...createReconcileActivities(deps),
    async getPolicy(): Promise<PolicySnapshot> {
      return policySnapshot(deps.config);
    },
  };
}

export type Activities = ReturnType<typeof createActivities>;
export type { ActivityDeps } from './deps.js';
