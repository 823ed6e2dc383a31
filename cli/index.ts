// The `jml` command. `npm start` is `jml start`.
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { Command, InvalidArgumentError } from 'commander';
import { Webhook } from 'standardwebhooks';
import { createApiToken, revokeApiToken } from '../api/auth.js';
import { createDb, ensureDatabase, runMigrations } from '../db/client.js';
import { ConfigError } from '../domain/config.js';
import { EMPLOYEE_ID_RULE, parseEmployeeId } from '../domain/employee-id.js';
import { SCOPES, type Scope } from '../domain/types.js';
import { loadConfig } from '../services/config.js';
import { readEnv } from '../services/env.js';
import { explainIdentity } from '../services/explain.js';
import { createLogger } from '../services/logger.js';
import { prepareLocalSetup, webhookSecrets } from '../services/setup.js';
import { startRuntime, type RuntimeRoles } from '../worker/runtime.js';
import { registerBatchCommands } from './commands/batches.js';
import { registerImportCommand } from './commands/import.js';
import { registerRetryCommand } from './commands/retry.js';

const program = new Command('jml').description('jml-engine: joiner / mover / leaver engine').showHelpAfterError();

/** An employee id in any spelling, as its canonical one; the rule of every other input. */
function parseEmployeeIdArgument(value: string): string {
  const id = parseEmployeeId(value);
  if (!id) throw new InvalidArgumentError(`an employee id ${EMPLOYEE_ID_RULE}`);
  return id;
}

function parseScopes(value: string): Scope[] {
  const scopes = value.split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = scopes.filter((s) => !(SCOPES as readonly string[]).includes(s));
  if (unknown.length || scopes.length === 0) throw new InvalidArgumentError(`unknown scope(s) ${unknown.join(', ') || '(none)'}; known: ${SCOPES.join(', ')}`);
  return scopes as Scope[];
}

async function run(roles: RuntimeRoles): Promise<void> {
  const env = readEnv();
  const logger = createLogger(env.logLevel);
  if (roles.embedded) prepareLocalSetup(env, logger);
  const runtime = await startRuntime(readEnv(), roles, logger);
  const width = Math.max(...Object.keys(runtime.endpoints).map((k) => k.length));
  console.log(`\njml-engine is running (${Object.entries(roles).filter(([, on]) => on).map(([r]) => r).join(', ')})`);
  for (const [name, where] of Object.entries(runtime.endpoints)) console.log(`  ${name.padEnd(width)}  ${where}`);
  for (const warning of runtime.warnings) console.log(`  ! ${warning}`);
  if (roles.embedded) console.log(`\nTry it: npm run jml -- send-event examples/hire.json   (Ctrl-C stops everything)\n`);
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    // Closing waits for Postgres, Redis and Temporal; if they are gone, do not hang forever.
    setTimeout(() => {
      logger.warn('shutdown took over 15s; exiting anyway');
      process.exit(1);
    }, 15_000).unref();
    runtime.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}

program
  .command('start')
  .description('everything in one process: migrations, API, workers, and a dev Temporal server and slapd when none is configured')
  .action(() => run({ api: true, worker: true, embedded: true }));
program
  .command('api')
  .description('the HTTP API only (scale out: run many)')
  .action(() => run({ api: true, worker: false, embedded: false }));
program
  .command('worker')
  .description('the Temporal worker and the ingestion worker only (scale out: run many)')
  .action(() => run({ api: false, worker: true, embedded: false }));

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
  .action(async (options: { name: string; scopes: Scope[] }) => {
    const env = readEnv();
    await runMigrations(env.databaseUrl);
    const { db, close } = createDb(env.databaseUrl, { max: 1 });
    try {
      const created = await createApiToken(db, { name: options.name, scopes: options.scopes, actor: 'cli' });
      console.error(`token ${created.id} for "${options.name}" with ${options.scopes.join(', ')} (shown once; only its hash is stored):`);
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
  .argument('<employeeId>', 'the HR employee id, in any case', parseEmployeeIdArgument)
  .description("show the person's pending events and scheduled steps, when each is due, and what each will grant or revoke")
  .option('--json', 'print JSON')
  .action(async (employeeId: string, options: { json?: boolean }) => {
    const env = readEnv();
    prepareLocalSetup(env, createLogger('warn'));
    const config = loadConfig(env.configPath);
    const { db, close } = createDb(env.databaseUrl, { max: 1 });
    const connection = await Connection.connect({ address: env.temporalAddress ?? '127.0.0.1:7233' });
    try {
      const plan = await explainIdentity({ db, temporal: new Client({ connection, namespace: env.temporalNamespace }), config }, employeeId);
      if (options.json) return console.log(JSON.stringify(plan, null, 2));
      console.log(`${plan.employeeId}: ${plan.status}${plan.workflow ? '' : ' (no lifecycle workflow: nothing pending)'}`);
      if (plan.workflow && plan.steps.length === 0) console.log('  nothing pending');
      for (const step of plan.steps) {
        console.log(`  ${step.dueAt}  ${step.step}${step.eventId ? ` (${step.eventId})` : ''}: ${step.effect}`);
        for (const g of step.grants) console.log(`      + ${g.entitlementId}   (rule ${g.rules.join(', ')})`);
        for (const r of step.revokes) console.log(`      - ${r.entitlementId}   (${r.why})`);
      }
    } finally {
      await connection.close();
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
    console.log(`${response.status} ${response.statusText}`);
    console.log(JSON.stringify(await response.json(), null, 2));
    if (!response.ok) process.exitCode = 1;
  });

registerImportCommand(program);
registerBatchCommands(program);
registerRetryCommand(program);

program.parseAsync().catch((err: unknown) => {
  // Config problems name the bad path; everything else gets its first line.
  console.error(err instanceof ConfigError ? err.message : `jml: ${(err as Error).message}`);
  process.exit(1);
});
