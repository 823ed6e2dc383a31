// Every workflow the worker runs. This file is the bundle entry point.
export { lifecycle, hrEventSignal, retryEventSignal, lifecycleStateQuery } from './lifecycle.js';
export { targetRecovery, targetWaitingSignal, targetAttemptedSignal, targetRecoveredSignal, targetWaitingQuery } from './target-recovery.js';
export { accessRequest, jitElevation } from './access-request.js';
export { approval } from './approval.js';
export { slaWatchdog } from './sla-watchdog.js';
export { reconcile } from './reconcile.js';
