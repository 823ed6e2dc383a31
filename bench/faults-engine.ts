// The engine under test of bench/faults.ts: the API, the Temporal worker and the ingestion
// worker in one process, as `jml start` runs them, so the bench can SIGKILL all of it and
// start it again. Configured by the environment the bench gives it (DATABASE_URL, REDIS_URL,
// TEMPORAL_ADDRESS, JML_CONFIG, ...); says `ready` over IPC once the runtime has started.
// Nothing here catches the engine's own errors: a crash is what the bench must see.
import { DefaultLogger, Runtime as TemporalRuntime } from '@temporalio/worker';
import { readEnv } from '../services/env.js';
import { createLogger } from '../services/logger.js';
import { startRuntime } from '../worker/runtime.js';

// The worker's start-up chatter (webpack, state changes) would bury the engine's warnings.
TemporalRuntime.install({ logger: new DefaultLogger('WARN') });
const env = readEnv();
const logger = createLogger(env.logLevel);
const runtime = await startRuntime(env, { api: true, worker: true, embedded: false }, logger);
process.send?.({ type: 'ready' });

let stopping = false;
const shutdown = (reason: string) => {
  if (stopping) return;
  stopping = true;
  logger.info({ reason }, 'shutting down');
  runtime.stop().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.once('SIGTERM', () => shutdown('SIGTERM'));
// The bench is gone (it crashed or was killed): nobody will stop this engine otherwise.
process.once('disconnect', () => shutdown('the bench is gone'));
