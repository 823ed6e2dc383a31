// A whole engine in the test process: a Temporal worker on a unique task queue, the BullMQ
// ingestion worker on a unique key prefix, the LDAP connector to the run's slapd, and the
// run's database. Every part is the real one; only the wiring is shared with `npm start`.
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Runtime, type Worker } from '@temporalio/worker';
import type { Worker as BullWorker, Queue } from 'bullmq';
import { pino } from 'pino';
import { closeConnectors, createConnectors } from '../../activities/connectors/index.js';
import { pausableConnector } from '../../activities/connectors/pausable.js';
import { pausedCheck } from '../../services/target-controls.js';
import type { Connector } from '../../activities/connectors/types.js';
import { createDb, dropDatabase, ensureDatabase, runMigrations, type DbHandle } from '../../db/client.js';
import { syncEntitlements } from '../../db/entitlements.js';
import { storeHrEvent } from '../../db/inbox.js';
import type { JmlConfig } from '../../domain/config.js';
import { canonicalEmployeeId } from '../../domain/employee-id.js';
import type { HrEventType, IdentityAttributes } from '../../domain/types.js';
import { createHrEventQueue, enqueueHrEvent, type HrEventJob } from '../../services/hr-event-queue.js';
import { createMailer } from '../../services/mailer.js';
import { ensureWatchdogSchedule, watchdogScheduleId } from '../../services/watchdog-schedule.js';
import { createMetricsRegistry, type Registry } from '../../api/metrics.js';
import { createIngestWorker, startDispatcher } from '../../worker/ingest-worker.js';
import { redisConnection } from '../../services/redis.js';
import { createTemporalWorker, WORKFLOWS_PATH } from '../../worker/temporal-worker.js';
import { testConfig } from './config.js';
import { testEnv, uniqueName } from './env.js';

export interface TestEngine {
  db: DbHandle['db'];
  databaseUrl: string;
  client: Client;
  config: JmlConfig;
  /** The first target's connector, raw (no kill switch): for tests to look at the target itself. */
  connector: Connector;
  /** Every target's connector by target id, raw like `connector`. */
  connectors: Map<string, Connector>;
  /** The registry the workers count on (what /metrics would serve). */
  metrics: Registry;
  queue: Queue<HrEventJob>;
  taskQueue: string;
  /** Stores an event in the inbox and nudges the queue, as the API does. */
  submit(event: { id?: string; type: HrEventType; employeeId: string; effectiveAt?: Date; attributes?: IdentityAttributes }): Promise<string>;
  stop(): Promise<void>;
}

// Worker state changes at INFO drown the test output; warnings and errors still show.
try {
  Runtime.install({ logger: new DefaultLogger('WARN') });
} catch {
  // already installed in this process
}

let bundle: Promise<{ code: string }> | undefined;
/** One workflow bundle per test file (webpack takes a few seconds). */
export function workflowBundle(): Promise<{ code: string }> {
  bundle ??= bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: { info() {}, warn() {}, error() {}, debug() {}, trace() {}, log() {} } as never });
  return bundle;
}

/** A database of its own (migrated) on `server`, for a test file whose checks count rows across the whole database. */
export async function freshDatabase(server: string): Promise<string> {
  const url = new URL(server);
  url.pathname = `${url.pathname}_${Math.random().toString(36).slice(2, 10)}`;
  await ensureDatabase(url.toString());
  await runMigrations(url.toString());
  return url.toString();
}

export async function startTestEngine(
  options: {
    config?: JmlConfig;
    redisUrl?: string;
    /** A Postgres other than the run's (one a test stops and starts); the engine's own database is made there. */
    databaseUrl?: string;
    /** Where mail goes (an in-process SMTP server, test/support/smtp.ts); absent: sending mail fails and is retried. */
    smtpUrl?: string;
    /** Base of the links in emails; the API of these tests answers at http://jml.test. */
    publicUrl?: string;
    /** Runs the SLA watchdog's Temporal Schedule on this engine's task queue (deleted at stop). */
    watchdog?: boolean;
  } = {},
): Promise<TestEngine> {
  const config = options.config ?? testConfig(testEnv.ldap);
  const logger = pino({ level: 'silent' });
  const taskQueue = uniqueName('jml');
  const prefix = `${testEnv.redisPrefix}:${uniqueName('q')}`;
  const redisUrl = options.redisUrl ?? testEnv.redisUrl;
  // Each engine gets its own database: its dispatcher scans the whole inbox, and must not
  // pick up rows that other test files leave `received` on purpose.
  const databaseUrl = await freshDatabase(options.databaseUrl ?? testEnv.databaseUrl);
  const handle = createDb(databaseUrl, { max: 5 });
  await syncEntitlements(handle.db, config);

  // LDAP targets without a url use the run's slapd, as `npm start` would use its own.
  const connectors = createConnectors(config.targets, Object.fromEntries(config.targets.filter((t) => t.type === 'ldap' && !t.url).map((t) => [t.id, testEnv.ldap.url])));
  const connector = connectors.get(config.targets[0]!.id)!;
  const mailer = createMailer({ smtpUrl: options.smtpUrl, from: config.mail.from });
  const metrics = createMetricsRegistry({ defaultMetrics: false });
  const nativeConnection = await NativeConnection.connect({ address: testEnv.temporalAddress });
  const clientConnection = await Connection.connect({ address: testEnv.temporalAddress });
  const client = new Client({ connection: clientConnection });

  const worker: Worker = await createTemporalWorker({
    connection: nativeConnection,
    namespace: 'default',
    taskQueue,
    // The worker's connectors honour the kill switch; `connectors` above stay raw, for tests to look at the targets.
    deps: { db: handle.db, config, connectors: new Map([...connectors].map(([id, raw]) => [id, pausableConnector(raw, pausedCheck(handle.db))])), logger, mailer, publicUrl: options.publicUrl ?? 'http://jml.test', metrics },
    workflowBundle: await workflowBundle(),
  });
  const running = worker.run();
  if (options.watchdog) await ensureWatchdogSchedule(client, taskQueue, config.lifecycle.grantSla);

  const queue = createHrEventQueue(redisConnection(redisUrl, 'producer'), prefix);
  const ingest: BullWorker<HrEventJob> = createIngestWorker({ db: handle.db, temporal: client, taskQueue, logger, connection: redisConnection(redisUrl, 'worker'), prefix });
  // Short interval and grace: tests wait seconds, not minutes, for a stranded event.
  const dispatcher = startDispatcher(handle.db, queue, logger, 500, 500);

  return {
    db: handle.db,
    databaseUrl,
    client,
    config,
    connector,
    connectors,
    metrics,
    queue,
    taskQueue,
    async submit(input) {
      // As every input does: the employee id in its canonical spelling.
      const event = { ...input, employeeId: canonicalEmployeeId(input.employeeId) };
      const id = event.id ?? uniqueName('evt');
      const effectiveAt = event.effectiveAt ?? new Date();
      await storeHrEvent(
        handle.db,
        { id, employeeId: event.employeeId, type: event.type, effectiveAt, source: 'api', payload: { type: event.type, employeeId: event.employeeId, effectiveAt: effectiveAt.toISOString(), attributes: event.attributes ?? {} } },
        'test',
      );
      await enqueueHrEvent(queue, id).catch(() => undefined); // Redis may be down on purpose
      return id;
    },
    async stop() {
      if (options.watchdog) await client.schedule.getHandle(watchdogScheduleId(taskQueue)).delete().catch(() => undefined);
      await dispatcher.stop();
      await ingest.close();
      await queue.close();
      worker.shutdown();
      await running;
      await nativeConnection.close();
      await clientConnection.close();
      await closeConnectors(connectors);
      await mailer.close();
      await handle.close();
      await dropDatabase(databaseUrl);
    },
  };
}

/** Polls until `check` returns a value (not undefined/false), or fails with the last one. */
export async function eventually<T>(check: () => Promise<T | undefined | false>, timeoutMs = 20_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
      last = value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
