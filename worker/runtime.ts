// Composes the processes of DESIGN.md: `jml start` (a supervisor running the embedded
// servers and, in one child process, the API and the workers), `jml api` and `jml worker`
// (apart, for scale). Whatever can run, runs: without Temporal, events are still accepted
// and kept, and dispatch retries until Temporal is there.
import { fork } from 'node:child_process';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, type Worker } from '@temporalio/worker';
import type { Worker as BullWorker } from 'bullmq';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { createConnectors, closeConnectors } from '../activities/connectors/index.js';
import { buildApp } from '../api/app.js';
import { createMetricsRegistry } from '../api/metrics.js';
import { createDb, ensureDatabase, runMigrations } from '../db/client.js';
import { syncEntitlements } from '../db/entitlements.js';
import { ownChild } from '../scripts/child-process.js';
import { freePort } from '../scripts/free-port.js';
import { startSlapd, slapdAvailable } from '../scripts/slapd.js';
import { startTemporalDevServer, TemporalUnavailable } from '../scripts/temporal-server.js';
import { loadConfig } from '../services/config.js';
import type { LdapTargetConfig } from '../domain/config.js';
import { startMailCatcher } from '../services/mail-catcher.js';
import { MAILBOX_PATH } from '../api/routes/mailbox.js';
import { webhookSecrets } from '../services/setup.js';
import { temporalAddressOf, type Env } from '../services/env.js';
import { createHrEventQueue } from '../services/hr-event-queue.js';
import { createMailer } from '../services/mailer.js';
import { runPeriodically } from '../services/periodic.js';
import { pausedCheck } from '../services/target-controls.js';
import { ensureWatchdogSchedule } from '../services/watchdog-schedule.js';
import { ensureReconcileSchedule } from '../services/schedules.js';
import { startRequestSweeper } from '../services/access-requests.js';
import { createIngestWorker, startDispatcher } from './ingest-worker.js';
import { createAlertQueue } from '../services/alert-delivery.js';
import { createAlertWorker, startAlertDispatcher } from './alert-worker.js';
import { redisConnection } from '../services/redis.js';
import { createTemporalWorker } from './temporal-worker.js';

// For the processes that run a worker (the CLI), before startRuntime.
export { installTemporalRuntime } from './temporal-worker.js';

export interface RuntimeRoles {
  api: boolean;
  worker: boolean;
  /**
   * Under `jml start`: without TEMPORAL_ADDRESS Temporal is the embedded dev server, and
   * targets without a url are the embedded slapd, both run by the supervisor.
   */
  embedded: boolean;
}

/** Where the embedded servers listen: one rule for the supervisor and the engine that uses them. */
export const embeddedLdapUrl = (env: Env) => `ldap://127.0.0.1:${env.slapdPort}`;

export interface Runtime {
  /** What runs where, for the start-up banner. */
  endpoints: Record<string, string>;
  warnings: string[];
  stop(): Promise<void>;
}

export async function startRuntime(env: Env, roles: RuntimeRoles, logger: Logger): Promise<Runtime> {
  const stops: Array<() => Promise<unknown>> = [];
  const endpoints: Record<string, string> = {};
  const warnings: string[] = [];
  const stop = async () => {
    for (const fn of stops.reverse()) await fn().catch((err: Error) => logger.warn({ err: err.message }, 'error during shutdown'));
  };

  try {
    const config = loadConfig(env.configPath);

    await ensureDatabase(env.databaseUrl);
    await runMigrations(env.databaseUrl);
    const database = createDb(env.databaseUrl);
    stops.push(() => database.close());
    await syncEntitlements(database.db, config);
    endpoints.postgres = new URL(env.databaseUrl).host;

    // Under `jml start` the supervisor runs the embedded servers (startSupervisor below);
    // this process only uses them, at the addresses they were started on.
    const temporalAddress = temporalAddressOf(env);
    endpoints.temporal = temporalAddress;
    const ldapUrls: Record<string, string> = {};
    for (const target of config.targets) {
      if (target.url) continue;
      if (roles.embedded) {
        ldapUrls[target.id] = embeddedLdapUrl(env);
      } else {
        warnings.push(`target "${target.id}" has no url: its grants will wait and retry`);
        ldapUrls[target.id] = 'ldap://127.0.0.1:1';
      }
    }

    const queue = createHrEventQueue(redisConnection(env.redisUrl, 'producer'), env.redisPrefix);
    stops.push(() => queue.close());
    const redis = new Redis(env.redisUrl, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1 });
    redis.on('error', () => {}); // health reports it; ioredis would otherwise log every retry
    stops.push(async () => redis.disconnect());
    // A lazy connection: the API starts and answers even while Temporal is unreachable.
    const clientConnection = Connection.lazy({ address: temporalAddress });
    stops.push(() => clientConnection.close());
    const temporal = new Client({ connection: clientConnection, namespace: env.temporalNamespace });
    const metrics = createMetricsRegistry();

    if (roles.api) {
      const app = await buildApp({
        db: database.db,
        hrEventQueue: queue,
        webhookSecrets: webhookSecrets(env, config),
        config,
        temporal,
        taskQueue: env.taskQueue,
        publicUrl: env.publicUrl,
        mailCatcherDir: env.mailCatcherDir,
        metrics,
        // The health probes reach each target where the workers do.
        targetUrls: ldapUrls,
        logger,
        health: {
          redis: async () => {
            if (redis.status !== 'ready') await redis.connect().catch(() => undefined);
            await redis.ping();
          },
          temporal: async () => {
            await clientConnection.workflowService.getSystemInfo({});
          },
        },
      });
      await app.listen({ port: env.port, host: env.host });
      stops.push(() => app.close());
      endpoints.api = `${env.publicUrl}/api/v1`;
      endpoints.health = `${env.publicUrl}/api/health`;
      endpoints.metrics = `${env.publicUrl}/metrics`;
      const dispatcher = startDispatcher(database.db, queue, logger);
      stops.push(() => dispatcher.stop());
      // Access requests the API recorded but could not hand to Temporal (it was down).
      const requestSweeper = startRequestSweeper(database.db, temporal, env.taskQueue, logger);
      stops.push(() => requestSweeper.stop());
    }

    if (roles.worker) {
      // Counted on the registry the API serves: /metrics shows the workers' calls when both run here (`jml start`).
      // The kill switch: a paused target is called by nobody (services/target-controls.ts).
      const connectors = createConnectors(config.targets, ldapUrls, { metrics, paused: pausedCheck(database.db), logger });
      stops.push(() => closeConnectors(connectors));
      const ingest: BullWorker = createIngestWorker({ db: database.db, temporal, taskQueue: env.taskQueue, logger, connection: redisConnection(env.redisUrl, 'worker'), prefix: env.redisPrefix });
      stops.push(() => ingest.close());
      // Without SMTP_URL (and outside `jml start`, whose catcher sets it) mail waits, retrying, until one is set.
      if (!env.smtpUrl) warnings.push('SMTP_URL is not set: approval requests and notices wait (retrying) until it is');
      const mailer = createMailer({ smtpUrl: env.smtpUrl, from: config.mail.from });
      stops.push(() => mailer.close());
      // Alerts reach people: the outbox pass hands pending alerts to the queue, the worker sends them (shared mailer).
      const alertQueue = createAlertQueue(redisConnection(env.redisUrl, 'producer'), env.redisPrefix);
      stops.push(() => alertQueue.close());
      const alertWorker = createAlertWorker({ db: database.db, alerts: config.alerts, mailer, logger, connection: redisConnection(env.redisUrl, 'worker'), prefix: env.redisPrefix });
      stops.push(() => alertWorker.close());
      const alertDispatcher = startAlertDispatcher(database.db, alertQueue, config.alerts, logger);
      stops.push(() => alertDispatcher.stop());
      const worker = startTemporalWorkerWhenReachable({
        address: temporalAddress,
        namespace: env.temporalNamespace,
        taskQueue: env.taskQueue,
        deps: { db: database.db, config, connectors, logger, mailer, publicUrl: env.publicUrl, metrics },
        logger,
      });
      stops.push(() => worker.stop());
      // The SLA watchdog's schedule, made (or its interval updated) once Temporal answers.
      let scheduled = false;
      const ensureSchedule = async () => {
        if (scheduled) return;
        await ensureWatchdogSchedule(temporal, env.taskQueue, config.lifecycle.grantSla);
        // Reconcile every target every `reconcile.interval` (workflows/reconcile.ts).
        await ensureReconcileSchedule(temporal, env.taskQueue, config.reconcile.interval);
        scheduled = true;
      };
      void ensureSchedule().catch(() => undefined); // retried below
      const schedule = runPeriodically(ensureSchedule, 10_000, (err) => logger.warn({ err: (err as Error).message }, 'SLA watchdog or reconcile schedule not created yet; retrying'));
      stops.push(() => schedule.stop());
      // Ready (and so the banner) once the worker runs or has said why it cannot yet: its
      // start-up, bundling the workflows, then logs nothing after the banner.
      await worker.firstAttempt;
    }
    return { endpoints, warnings, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * Connects and runs the Temporal worker, retrying in the background while Temporal is down.
 * `firstAttempt` settles once the worker runs, or the first attempt has failed (and said why).
 */
function startTemporalWorkerWhenReachable(options: {
  address: string;
  namespace: string;
  taskQueue: string;
  deps: Parameters<typeof createTemporalWorker>[0]['deps'];
  logger: Logger;
}): { firstAttempt: Promise<void>; stop(): Promise<void> } {
  let stopped = false;
  let firstAttemptOver: () => void = () => {};
  const firstAttempt = new Promise<void>((resolve) => (firstAttemptOver = resolve));
  let worker: Worker | undefined;
  let connection: NativeConnection | undefined;
  let running: Promise<void> = Promise.resolve();
  const loop = async () => {
    for (let attempt = 0; !stopped; attempt += 1) {
      try {
        connection = await NativeConnection.connect({ address: options.address });
        worker = await createTemporalWorker({ connection, namespace: options.namespace, taskQueue: options.taskQueue, deps: options.deps });
        if (stopped) return;
        options.logger.info({ taskQueue: options.taskQueue }, 'temporal worker running');
        firstAttemptOver();
        await worker.run();
        return;
      } catch (err) {
        if (attempt === 0 || attempt % 30 === 0) options.logger.warn({ err: (err as Error).message }, 'temporal worker cannot start yet; retrying every 10s');
        firstAttemptOver();
        await connection?.close().catch(() => undefined);
        connection = undefined;
        await new Promise((resolve) => setTimeout(resolve, 10_000));
      }
    }
  };
  running = loop().finally(firstAttemptOver);
  return {
    firstAttempt,
    async stop() {
      stopped = true;
      if (worker && worker.getState() === 'RUNNING') worker.shutdown();
      await running;
      await connection?.close().catch(() => undefined);
    },
  };
}

// ---- `jml start`: the supervisor ------------------------------------------------------

/** What the engine process tells the supervisor once it runs (over the IPC channel). */
export interface EngineReady {
  type: 'ready';
  endpoints: Record<string, string>;
  warnings: string[];
}

export interface Supervisor {
  /**
   * Settles once everything runs, with what runs where (and what does not) for the start-up
   * banner, or undefined when stop() came first. Rejects when start-up fails; everything is
   * stopped by then.
   */
  started: Promise<{ endpoints: Record<string, string>; warnings: string[] } | undefined>;
  /** Settles when supervision had to give up (an embedded port taken by another process); everything is stopped by then. */
  failed: Promise<Error>;
  /** Stops everything, at any moment: a start-up still under way too. */
  stop(): Promise<void>;
}

/** A process the supervisor keeps running. */
interface Supervised {
  pid?: number;
  /** Settles when the process ends, saying how. */
  exited: Promise<string>;
  stop(): Promise<void>;
}

/** A port someone else holds: never waited out, lest we talk to a server we did not start. */
class PortTaken extends Error {}

const RESTART_FIRST_DELAY_MS = 1_000;
const RESTART_MAX_DELAY_MS = 30_000;
/** A process that stayed up this long starts the backoff afresh when it dies. */
const RESTART_STABLE_MS = 60_000;
/** The engine's own shutdown is bounded at 15 s; the supervisor's whole stop stays within that. */
const ENGINE_STOP_TIMEOUT_MS = 9_000;

/** Bind test before a start: a taken port fails with the variable that moves it. */
async function ensurePortsFree(ports: Array<{ port: number; variable: string }>): Promise<void> {
  for (const { port, variable } of ports) {
    await freePort(port).catch((err: Error) => {
      if (/in use/.test(err.message)) throw new PortTaken(`port ${port} is in use (set ${variable} to another port)`);
      throw new Error(`port ${port} (${variable}) cannot be used: ${err.message}`);
    });
  }
}

/**
 * `jml start`: checks the ports, starts the embedded Temporal and slapd (each kept with its
 * data under JML_DATA_DIR), then the engine (API and workers) in a child process running
 * `engineCommand` (module path, then arguments). Whatever dies is restarted with backoff.
 * Returns at once, so that a signal can stop a start-up still under way.
 */
export function startSupervisor(env: Env, logger: Logger, engineCommand: string[]): Supervisor {
  const config = loadConfig(env.configPath);
  const endpoints: Record<string, string> = {};
  const warnings: string[] = [];

  const embedTemporal = !env.temporalAddress;
  const temporalPorts = [
    { port: env.temporalPort, variable: 'JML_TEMPORAL_PORT' },
    { port: env.temporalUiPort, variable: 'JML_TEMPORAL_UI_PORT' },
  ];
  // Only an LDAP target may leave its url empty (scim targets require one): the embedded slapd stands in for it.
  const ldapTargets = config.targets.filter((target): target is LdapTargetConfig => target.type === 'ldap' && !target.url);
  if (ldapTargets.length > 1) throw new Error(`targets ${ldapTargets.map((t) => t.id).join(', ')} have no url; only one target can use the embedded slapd`);
  const ldapTarget = ldapTargets[0];
  if (ldapTarget && !slapdAvailable()) warnings.push(`target "${ldapTarget.id}" has no url and slapd is not installed (apt-get install slapd ldap-utils): its grants will wait and retry`);
  const embedSlapd = ldapTarget !== undefined && slapdAvailable();
  const slapdPorts = [{ port: env.slapdPort, variable: 'JML_SLAPD_PORT' }];
  // Without SMTP_URL, mail is caught here and shown at /dev/mail, so that a new user can
  // follow an approval link; the engine sends to the catcher like to any SMTP server.
  const catchMail = !env.smtpUrl;
  const mailCatcherPorts = [{ port: env.mailCatcherPort, variable: 'JML_MAIL_CATCHER_PORT' }];
  const mailCatcherDir = path.join(env.dataDir, 'mail');

  const startTemporal = async () => {
    await ensurePortsFree(temporalPorts);
    return startTemporalDevServer({
      dbFilename: path.join(env.dataDir, 'temporal.sqlite'),
      port: env.temporalPort,
      uiPort: env.temporalUiPort,
      namespace: env.temporalNamespace,
      log: (line) => logger.info(line),
    });
  };
  const startLdap = async () => {
    await ensurePortsFree(slapdPorts);
    return startSlapd({ dir: path.join(env.dataDir, 'slapd'), port: env.slapdPort, suffix: ldapTarget!.baseDN, adminPassword: ldapTarget!.bindPassword, keep: true });
  };

  let fail: (err: Error) => void = () => {};
  const failed = new Promise<Error>((resolve) => (fail = resolve));
  // Aborted once stopping begins: from then on every exit is expected, even one that a
  // Ctrl-C (which reaches the whole process group) causes before its turn below.
  const stopping = new AbortController();
  const servers: Array<{ stop(): Promise<void> }> = [];
  let engine: { stop(): Promise<void> } | undefined;
  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      stopping.abort();
      // Start-up ends first (a server it is starting once that is up, the engine at once), so
      // everything it started is in `servers` and `engine` below.
      await starting.catch(() => undefined);
      // The engine first, so it finishes what it is doing while Temporal and LDAP still answer.
      await engine?.stop();
      await Promise.all(servers.map((server) => server.stop()));
    })());
  const onFatal = (err: Error) => {
    logger.error({ err: err.message }, 'giving up: stopping everything');
    void stop().then(() => fail(err));
  };
  const supervise = <T extends Supervised>(name: string, first: T, start: () => Promise<T>) => keepRunning(name, first, start, { logger, stopping: stopping.signal, onFatal });

  /** What runs where, for the banner; undefined when stop() came before the end. */
  const startUp = async () => {
    await ensurePortsFree([{ port: env.port, variable: 'PORT' }, ...(embedTemporal ? temporalPorts : []), ...(embedSlapd ? slapdPorts : []), ...(catchMail ? mailCatcherPorts : [])]);
    if (stopping.signal.aborted) return undefined;
    if (embedTemporal || embedSlapd) logger.info({ temporalPort: embedTemporal ? env.temporalPort : undefined, slapdPort: embedSlapd ? env.slapdPort : undefined }, 'starting the embedded servers');
    const [temporal, slapd] = await Promise.allSettled([embedTemporal ? startTemporal() : undefined, embedSlapd ? startLdap() : undefined]);
    // Kept (and so stopped by stop()) even when stopping began while they started.
    if (temporal.status === 'fulfilled' && temporal.value) {
      servers.push(supervise('embedded Temporal', temporal.value, startTemporal));
      if (temporal.value.uiUrl) endpoints['temporal ui'] = temporal.value.uiUrl;
      if (temporal.value.pid === undefined) warnings.push('the Temporal dev server downloaded by @temporalio/testing is not restarted if it dies: install Go or set TEMPORAL_CLI_PATH');
    }
    if (slapd.status === 'fulfilled' && slapd.value) {
      servers.push(supervise('embedded slapd', slapd.value, startLdap));
      endpoints[`ldap (${ldapTarget!.id})`] = slapd.value.url;
    }
    if (stopping.signal.aborted) return undefined;
    if (slapd.status === 'rejected') throw slapd.reason;
    if (temporal.status === 'rejected') {
      if (!(temporal.reason instanceof TemporalUnavailable)) throw temporal.reason;
      warnings.push(`Temporal is not running (${temporal.reason.message}): install Go (to build the Temporal CLI) or set TEMPORAL_ADDRESS; events are accepted and kept until it is there`);
    }

    let engineEnv: NodeJS.ProcessEnv | undefined;
    if (catchMail) {
      // In this process, not supervised: it is a small in-process server that only stop() ends.
      const catcher = await startMailCatcher({ dir: mailCatcherDir, port: env.mailCatcherPort });
      servers.push(catcher);
      logger.info({ port: catcher.port }, 'embedded mail catcher started (SMTP_URL is not set)');
      if (stopping.signal.aborted) return undefined;
      endpoints['mail (caught, no SMTP_URL)'] = `${env.publicUrl}${MAILBOX_PATH}`;
      engineEnv = { ...process.env, SMTP_URL: catcher.url, JML_MAIL_CATCHER_DIR: mailCatcherDir };
    }

    const startEngine = () => startEngineProcess(engineCommand, stopping.signal, engineEnv);
    const first = await startEngine();
    engine = supervise('engine', first, startEngine);
    Object.assign(endpoints, first.endpoints);
    warnings.push(...first.warnings);
    return { endpoints, warnings };
  };

  const starting = startUp();
  const started = starting.catch(async (err: unknown) => {
    // Failing once stopping has begun is the stop's doing (it ended a start under way, or a
    // Ctrl-C reached a child first), not a failure to report.
    const cutShort = stopping.signal.aborted;
    await stop();
    if (cutShort) return undefined;
    throw err;
  });
  return { started, failed, stop };
}

/**
 * Keeps a process running: when it ends on its own, logs how and starts it again after
 * 1 s, doubling up to 30 s while restarts keep failing or dying early. A restart that finds
 * its port taken by someone else is fatal (onFatal) rather than retried.
 */
function keepRunning<T extends Supervised>(
  name: string,
  first: T,
  start: () => Promise<T>,
  options: { logger: Logger; stopping: AbortSignal; onFatal(err: Error): void },
): { stop(): Promise<void> } {
  const { logger, stopping } = options;
  let current = first;
  // Cut short when stopping begins.
  const pause = (ms: number) => sleep(ms, undefined, { signal: stopping }).catch(() => undefined);
  logger.info({ pid: current.pid }, `${name} started`);
  const loop = async () => {
    let delay = RESTART_FIRST_DELAY_MS;
    let startedAt = Date.now();
    for (;;) {
      const how = await current.exited;
      if (stopping.aborted) return;
      if (Date.now() - startedAt >= RESTART_STABLE_MS) delay = RESTART_FIRST_DELAY_MS;
      logger.error({ pid: current.pid, exit: how, restartInMs: delay }, `${name} exited unexpectedly; restarting it`);
      for (;;) {
        await pause(delay);
        if (stopping.aborted) return;
        delay = Math.min(delay * 2, RESTART_MAX_DELAY_MS);
        try {
          current = await start();
          break;
        } catch (err) {
          if (stopping.aborted) return; // the stop ended this start (see startEngineProcess)
          if (err instanceof PortTaken) return options.onFatal(err);
          logger.error({ err: (err as Error).message.split('\n')[0], retryInMs: delay }, `${name} did not restart; trying again`);
        }
      }
      // Stopping began while it was starting: stop() below may have missed this one.
      if (stopping.aborted) return current.stop();
      startedAt = Date.now();
      logger.info({ pid: current.pid }, `${name} restarted`);
    }
  };
  const running = loop();
  return {
    async stop() {
      await current.stop();
      await running;
    },
  };
}

/** Forks the engine (API and workers) and waits for its ready message; an exit before it fails the start. */
async function startEngineProcess([modulePath, ...args]: string[], stopping: AbortSignal, env?: NodeJS.ProcessEnv): Promise<Supervised & Omit<EngineReady, 'type'>> {
  // Logs go straight to the terminal; the IPC channel carries the ready message and, should
  // the supervisor die, tells the engine to stop (it exits on 'disconnect').
  // `env`: the supervisor's environment plus what it started for the engine (the mail catcher's SMTP_URL).
  const child = fork(modulePath!, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], ...(env ? { env } : {}) });
  const { exited, stop } = ownChild(child, ENGINE_STOP_TIMEOUT_MS);
  const ready = new Promise<EngineReady>((resolve) => {
    child.on('message', (message: EngineReady) => {
      if (message?.type === 'ready') resolve(message);
    });
  });
  // Stopping ends the start at once: until it is ready, nobody else holds the child to stop it.
  const stopEarly = () => void stop();
  stopping.addEventListener('abort', stopEarly);
  const outcome = await Promise.race([ready, exited]).finally(() => stopping.removeEventListener('abort', stopEarly));
  if (typeof outcome === 'string') throw new Error(`the engine stopped during start-up (${outcome}); its error is logged above`);
  return { pid: child.pid, exited, stop, endpoints: outcome.endpoints, warnings: outcome.warnings };
}
