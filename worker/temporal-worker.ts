// The Temporal worker: runs lifecycle workflows and their activities.
import { createRequire } from 'node:module';
import { DefaultLogger, NativeConnection, Runtime, Worker, type LogLevel, type WorkerOptions } from '@temporalio/worker';
import type { Logger } from 'pino';
import { createActivities, type ActivityDeps } from '../activities/index.js';
import { HeartbeatingActivityInterceptor } from '../activities/heartbeat.js';
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
    // Heartbeats while an activity runs (a dead worker's activities are retried within the
    // heartbeat timeout); no SQL parameters (personal data) in worker logs or histories.
    interceptors: { activity: [(context) => ({ inbound: new HeartbeatingActivityInterceptor(context) }), () => ({ inbound: new SanitizingActivityInterceptor() })] },
    // 2-core machines: modest concurrency keeps LDAP and Postgres from being flooded.
    maxConcurrentActivityTaskExecutions: 50,
  });
}

const PINO_LEVELS = { TRACE: 'trace', DEBUG: 'debug', INFO: 'info', WARN: 'warn', ERROR: 'error' } as const satisfies Record<LogLevel, string>;
/** Components whose messages are our own code's (workflow `log`, activity `Context.log`); the SDK never uses them. */
const OWN_COMPONENTS = new Set(['workflow', 'activity', 'nexus']);

/**
 * The Temporal runtime of a process that runs a worker; once, before the first NativeConnection.
 * It sends the SDK's logs, the native core's included, to the process logger (JSON or pretty
 * like every other line, redacted, errors through its serializer) rather than to stderr in the
 * SDK's own format: the SDK's own messages (worker state, the webpack report of the workflow
 * bundle, core) from warn up only; what our workflows log, at the process level.
 */
export function installTemporalRuntime(logger: Logger): void {
  Runtime.install({
    logger: new DefaultLogger('TRACE', ({ level, message, meta }) => {
      if (!OWN_COMPONENTS.has(String(meta?.sdkComponent)) && level !== 'WARN' && level !== 'ERROR') return;
      logger[PINO_LEVELS[level]]({ ...meta }, message);
    }),
    telemetryOptions: { logging: { filter: { core: 'WARN', other: 'ERROR' }, forward: {} } },
    // The CLI's own handlers stop the worker with everything else; the SDK's would take
    // SIGTERM from a process still starting up and keep it running.
    shutdownSignals: [],
  });
}
