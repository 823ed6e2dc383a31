// The Temporal worker: runs lifecycle workflows and their activities.
import { createRequire } from 'node:module';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities, type ActivityDeps } from '../activities/index.js';
import { SanitizingActivityInterceptor } from '../activities/sanitize.js';

const require = createRequire(import.meta.url);
export const WORKFLOWS_PATH = require.resolve('../workflows/index.ts');

export interface TemporalWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  deps: ActivityDeps;
  /** A prebuilt bundle (tests build one per run); otherwise the worker bundles at start. */
  workflowBundle?: WorkerOptions['workflowBundle'];
}

export async function createTemporalWorker(options: TemporalWorkerOptions): Promise<Worker> {
  return Worker.create({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: options.taskQueue,
    ...(options.workflowBundle ? { workflowBundle: options.workflowBundle } : { workflowsPath: WORKFLOWS_PATH }),
    activities: createActivities(options.deps),
    // No SQL parameters (personal data) in worker logs or workflow histories.
    interceptors: { activity: [() => ({ inbound: new SanitizingActivityInterceptor() })] },
    // 2-core machines: modest concurrency keeps LDAP and Postgres from being flooded.
    maxConcurrentActivityTaskExecutions: 50,
  });
}
