// The `jml` command. `npm start` is `jml start`.
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { Command, InvalidArgumentError } from 'commander';
import type { Logger } from 'pino';
import { Webhook } from 'standardwebhooks';
import { createApiToken, revokeApiToken } from '../api/auth.js';
import { createDb, ensureDatabase, runMigrations } from '../db/client.js';
import { ConfigError } from '../domain/config.js';
import { safe, terminalSafe, terminalSafeJson } from '../domain/terminal-safe.js';
import { SCOPES, type Scope } from '../domain/types.js';
import { loadConfig } from '../services/config.js';
import { readEnv } from '../services/env.js';
import { explainIdentity } from '../services/explain.js';
import { createLogger, databaseErrorSummary } from '../services/logger.js';
import { prepareLocalSetup, webhookSecrets } from '../services/setup.js';
import { installTemporalRuntime, startRuntime, startSupervisor, type EngineReady, type RuntimeRoles } from '../worker/runtime.js';
import { registerBatchCommands } from './commands/batches.js';
import { registerImportCommand } from './commands/import.js';
import { registerRetryCommand } from './commands/retry.js';
import { registerRetryGrantCommand } from './commands/retry-grant.js';
import { registerAuditCommands } from './commands/audit.js';
import { registerGrantsCommand } from './commands/grants.js';
import { registerAlertCommands } from './commands/alerts.js';
import { registerTargetCommands } from './commands/targets.js';
import { registerRequestCommands } from './commands/requests.js';
import { registerJitCommands } from './commands/jit.js';
import { registerReconcileCommand } from './commands/reconcile.js';
import { withTemporal } from './commands/context.js';
import { employeeIdArgument, planStepLines, registerStatusCommand } from './commands/status.js';

const program = new Command('jml')
  .description('jml-engine: joiner / mover / leaver engine')
  .showHelpAfterError()
  // Commander's own errors quote the argument as typed (perhaps pasted from HR data).
  .configureOutput({ outputError: (text, write) => write(text.split('\n').map(terminalSafe).join('\n')) });

function parseScopes(value: string): Scope[] {
  const scopes = value.split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = scopes.filter((s) => !(SCOPES as readonly string[]).includes(s));
  if (unknown.length || scopes.length === 0) throw new InvalidArgumentError(`unknown scope(s) ${unknown.join(', ') || '(none)'}; known: ${SCOPES.join(', ')}`);
  return scopes as Scope[];
}

function printBanner(title: string, endpoints: Record<string, string>, warnings: string[]): void {
  const width = Math.max(...Object.keys(endpoints).map((k) => k.length));
  console.log(safe`\njml-engine is running (${title})`);
  for (const [name, where] of Object.entries(endpoints)) console.log(safe`  ${name.padEnd(width)}  ${where}`);
  for (const warning of warnings) console.log(safe`  ! ${warning}`);
}

/**
 * An error as the operator sees it. A database error is its summary only (its message has
 * the query's values: names); any other message is shown line by line, each line made
 * terminal-safe (an id or a value in it may come from HR data).
 */
function describeError(err: unknown): string {
  const database = databaseErrorSummary(err);
  if (database) return `jml: ${database}`;
  const message = err instanceof Error ? err.message : String(err);
  const text = message.split('\n').map(terminalSafe).join('\n');
  // Config problems name the bad path and need no prefix.
  return err instanceof ConfigError ? text : `jml: ${text}`;
}

/** Ctrl-C / SIGTERM run `stop` once; closing waits for Postgres, Redis and Temporal, so it is bounded. */
function stopOnSignals(logger: Logger, stop: () => Promise<void>): (reason: string, exitCode?: number) => void {
  let stopping = false;
  const shutdown = (reason: string, exitCode = 0) => {
    if (stopping) return;
    stopping = true;
    logger.info({ reason }, 'shutting down');
    setTimeout(() => {
      logger.warn('shutdown took over 15s; exiting anyway');
      process.exit(1);
    }, 15_000).unref();
    stop().then(
      () => process.exit(exitCode),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  return shutdown;
}

/** `jml api`, `jml worker`, and the engine process that `jml start` supervises (`supervised`). */
async function run(roles: RuntimeRoles, options: { supervised?: boolean } = {}): Promise<void> {
  const env = readEnv();
  const logger = createLogger(env.logLevel);
  if (roles.worker) installTemporalRuntime(logger);
  const runtime = await startRuntime(env, roles, logger);
  const shutdown = stopOnSignals(logger, () => runtime.stop());
  if (options.supervised && process.send) {
    // The supervisor prints the banner. Should it die, nothing would restart this process: stop too.
    process.send({ type: 'ready', endpoints: runtime.endpoints, warnings: runtime.warnings } satisfies EngineReady);
    process.once('disconnect', () => shutdown('the supervisor is gone'));
  } else {
    printBanner(Object.entries(roles).filter(([, on]) => on).map(([r]) => r).join(', '), runtime.endpoints, runtime.warnings);
  }
}

/**
 * `jml start`: a small supervisor. It runs the embedded Temporal and slapd itself and the
 * API and workers in one child process (this CLI's hidden `engine` command), and restarts
 * whichever dies, with backoff.
 */
async function start(): Promise<void> {
  // Everything this process and its children (Temporal, slapd, the engine) create under
  // ./data is the owner's only: Temporal's SQLite holds names, slapd's folder the directory
  // and its root password hash. prepareLocalSetup tightens what is already there.
  process.umask(0o077);
  const env = readEnv();
  const logger = createLogger(env.logLevel);
  prepareLocalSetup(env, logger);
  // Read again: prepareLocalSetup put the generated secrets into the environment.
  const supervisor = startSupervisor(readEnv(), logger, [process.argv[1]!, 'engine']);
  // From the first child on: a signal during start-up stops whatever has started so far.
  const shutdown = stopOnSignals(logger, () => supervisor.stop());
  void supervisor.failed.then((err) => {
    console.error(describeError(err));
    shutdown('an embedded server cannot run', 1);
  });
  const running = await supervisor.started;
  if (!running) return; // stopped during start-up: the shutdown exits
  printBanner('api, worker, embedded servers; each restarted if it stops', running.endpoints, running.warnings);
  console.log(`\nTry it: npm run jml -- send-event examples/hire.json   (Ctrl-C stops everything)\n`);
}

program
  .command('start')
  .description('everything: migrations, API, workers, and a dev Temporal server and slapd when none is configured, each restarted if it stops')
  .action(start);
program
  .command('api')
  .description('the HTTP API only (scale out: run many)')
  .action(() => run({ api: true, worker: false, embedded: false }));
program
  .command('worker')
  .description('the Temporal worker and the ingestion worker only (scale out: run many)')
  .action(() => run({ api: false, worker: true, embedded: false }));
// The child process of `jml start`; not for direct use.
program.command('engine', { hidden: true }).action(() => run({ api: true, worker: true, embedded: true }, { supervised: true }));

program
  .command('migrate')
  .description('apply database migrations')
  .action(async () => {
    const env = readEnv();
    await ensureDatabase(env.databaseUrl);
    await runMigrations(env.databaseUrl);
    console.log('migrations applied');
  });

const token = program.command('token').description('API bearer tokens');
token
  .command('create')
  .requiredOption('--name <name>', 'who or what uses the token')
  .requiredOption('--scopes <list>', `comma-separated: ${SCOPES.join(', ')}`, parseScopes)
  .option('--employee <id>', 'bind the token to this person: it requests for them and decides as them', employeeIdArgument)
  .action(async (options: { name: string; scopes: Scope[]; employee?: string }) => {
    const env = readEnv();
    await runMigrations(env.databaseUrl);
    const { db, close } = createDb(env.databaseUrl, { max: 1 });
    try {
      const created = await createApiToken(db, { name: options.name, scopes: options.scopes, actor: 'cli', employeeId: options.employee ?? null });
      const boundTo = options.employee ? safe`, bound to ${options.employee}` : '';
      console.error(safe`token ${created.id} for "${options.name}" with ${options.scopes.join(', ')}` + boundTo + ' (shown once; only its hash is stored):');
      console.log(created.token);
    } finally {
      await close();
    }
  });
token
  .command('revoke <id>')
  .action(async (id: string) => {
    const { db, close } = createDb(readEnv().databaseUrl, { max: 1 });
    try {
      console.log((await revokeApiToken(db, id, 'cli')) ? 'revoked' : 'no such active token');
    } finally {
      await close();
    }
  });

program
  .command('explain')
  .argument('<employeeId>', 'the HR employee id, in any case', employeeIdArgument)
  .description("show the person's pending events and scheduled steps, when each is due, and what each will grant or revoke")
  .option('--json', 'print JSON')
  .action(async (employeeId: string, options: { json?: boolean }) => {
    const env = readEnv();
    prepareLocalSetup(env, createLogger('warn'));
    const config = loadConfig(env.configPath);
    const { db, close } = createDb(env.databaseUrl, { max: 1 });
    try {
      const plan = await withTemporal((temporal) => explainIdentity({ db, temporal, config }, employeeId));
      if (options.json) return console.log(terminalSafeJson(plan));
      console.log(safe`${plan.employeeId}: ${plan.status}` + (plan.workflow ? '' : ' (no lifecycle workflow: nothing pending)'));
      if (plan.workflow && plan.steps.length === 0) console.log('  nothing pending');
      for (const line of planStepLines(plan.steps)) console.log(line);
    } finally {
      await close();
    }
  });

program
  .command('send-event <file>')
  .description('sign an HR event (JSON file) with the configured webhook secret and post it')
  .option('--url <url>', 'API base URL (default PUBLIC_URL)')
  .option('--id <id>', 'webhook-id (default: a new one)')
  .action(async (file: string, options: { url?: string; id?: string }) => {
    const env = readEnv();
    prepareLocalSetup(env, createLogger('warn'));
    const secrets = webhookSecrets(readEnv(), loadConfig(env.configPath));
    if (!secrets[0]) throw new Error('no webhook secret: set JML_WEBHOOK_SECRET or webhook.secrets in the config');
    const body = readFileSync(file, 'utf8');
    JSON.parse(body); // fail here, not at the server, on a broken file
    const id = options.id ?? `msg_${randomUUID()}`;
    const timestamp = new Date();
    const signature = new Webhook(secrets[0]).sign(id, timestamp, body);
    const url = `${options.url ?? env.publicUrl}/api/v1/hr/events`;
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'webhook-id': id, 'webhook-timestamp': String(Math.floor(timestamp.getTime() / 1000)), 'webhook-signature': signature },
      body,
    });
    console.log(safe`${response.status} ${response.statusText}`);
    // The answer may quote what was sent (a validation problem names the field and value).
    console.log(terminalSafeJson(await response.json()));
    if (!response.ok) process.exitCode = 1;
  });

registerImportCommand(program);
registerBatchCommands(program);
registerRetryCommand(program);
registerRetryGrantCommand(program);
registerStatusCommand(program);
registerGrantsCommand(program);
registerAlertCommands(program);
registerTargetCommands(program);
registerAuditCommands(program);
registerRequestCommands(program);
registerJitCommands(program);
registerReconcileCommand(program);

program.parseAsync().catch((err: unknown) => {
  console.error(describeError(err));
  process.exit(1);
});
