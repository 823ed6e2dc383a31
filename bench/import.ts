// CSV snapshot import, end to end through the real engine:
//   npx tsx bench/import.ts [--file ../shared/data/hr-samples/csv-with-1000-records.csv] [--synthetic N] [--wait 600]
// Starts its own Temporal dev server, slapd (temporary folder), a fresh database
// jml_bench_imp_<random>, a unique Redis prefix and task queue, writes a config from
// jml.config.example.yaml aimed at that slapd (its birthright rules fit the HR samples),
// and runs startRuntime (API, Temporal worker, ingestion worker) in this process. Then it
// POSTs the extract to /api/v1/hr/imports, as an HR integration would, and measures:
//   - the import request itself (parse, plan, one transaction for the feed),
//   - until every hired person's grants are all active with verified_at (read back),
//   - until every event of the import is settled (applied), leaves of absence included.
// --synthetic N imports N distinct people made from the sample's rows instead (the sample
// has 1000 rows but only ~170 usable active workers: many WorkerIDs name several people).
// Everything it started is stopped and dropped at the end.
import { dropDatabase } from '../db/client.js';
import { benchResources, cleanupStep } from './support.js';
import { freePort } from '../scripts/free-port.js';
import { deleteKeysWithPrefix } from '../services/redis.js';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Connection } from '@temporalio/client';
import { DefaultLogger, Runtime as TemporalRuntime } from '@temporalio/worker';
import { and, count, eq, inArray, sql } from 'drizzle-orm';
import YAML from 'yaml';
import { createApiToken } from '../api/auth.js';
import { createDb, type DbHandle } from '../db/client.js';
import { grants, hrEvents } from '../db/schema.js';
import { startSlapd, type SlapdServer } from '../scripts/slapd.js';
import { startTemporalDevServer, type TemporalDevServer } from '../scripts/temporal-server.js';
import type { CsvImportResult } from '../services/csv-import.js';
import { readEnv } from '../services/env.js';
import { createLogger } from '../services/logger.js';
import { startRuntime, type Runtime } from '../worker/runtime.js';

const { values: args } = parseArgs({
  options: {
    file: { type: 'string', default: path.resolve(import.meta.dirname, '../../shared/data/hr-samples/csv-with-1000-records.csv') },
    synthetic: { type: 'string' },
    wait: { type: 'string', default: '600' },
  },
});
const { databaseName, databaseUrl, redisUrl, redisPrefix, taskQueue } = benchResources('imp');
const waitMs = Number(args.wait) * 1000;
const synthetic = args.synthetic === undefined ? undefined : Number(args.synthetic);
if (synthetic !== undefined && !(synthetic > 0)) throw new Error('--synthetic must be a positive number');

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

let temporal: TemporalDevServer | undefined;
let slapd: SlapdServer | undefined;
let runtime: Runtime | undefined;
let measure: DbHandle | undefined;
let tmp: string | undefined;

async function cleanup(): Promise<void> {
  if (runtime) await cleanupStep('stopping the runtime', () => runtime!.stop());
  if (measure) await cleanupStep('closing the measuring connection', () => measure!.close());
  if (slapd) await cleanupStep('stopping slapd', () => slapd!.stop());
  if (temporal) await cleanupStep('stopping Temporal', () => temporal!.stop());
  await cleanupStep(`dropping ${databaseName}`, () => dropDatabase(databaseUrl));
  await cleanupStep(`deleting Redis keys ${redisPrefix}:*`, async () => {
    await deleteKeysWithPrefix(redisUrl, `${redisPrefix}:`);
  });
  if (tmp) rmSync(tmp, { recursive: true, force: true });
}

/** The runtime's Temporal worker bundles workflow code first: wait until it polls our task queue. */
async function waitForWorker(address: string, timeoutMs = 180_000): Promise<void> {
  const connection = await Connection.connect({ address });
  try {
    for (const deadline = Date.now() + timeoutMs; ; await sleep(250)) {
      const pollers = await Promise.all(
        [1, 2].map(async (taskQueueType) => {
          const res = await connection.workflowService.describeTaskQueue({ namespace: 'default', taskQueue: { name: taskQueue, kind: 1 }, taskQueueType });
          return res.pollers?.length ?? 0;
        }),
      );
      if (pollers.every((n) => n > 0)) return;
      if (Date.now() > deadline) throw new Error(`the Temporal worker did not poll ${taskQueue} within ${timeoutMs / 1000} s`);
    }
  } finally {
    await connection.close();
  }
}

/** N distinct people from the sample's rows: ids renumbered, the rest of each row kept. */
function syntheticExtract(sample: string, n: number): string {
  const [header, ...rows] = sample.split(/\r?\n/).filter(Boolean);
  const lines = [header!];
  for (let i = 0; i < n; i++) {
    const fields = rows[i % rows.length]!.split(',');
    fields[0] = `S${String(i).padStart(6, '0')}`;
    fields[1] = 'Active'; // everyone a joiner, so N is the number provisioned
    lines.push(fields.join(','));
  }
  return `${lines.join('\n')}\n`;
}

async function main(): Promise<void> {
  try {
    TemporalRuntime.install({ logger: new DefaultLogger('WARN') });
  } catch {
    // already installed
  }
  tmp = mkdtempSync(path.join(tmpdir(), 'jml-bench-import-'));
  const sample = readFileSync(args.file, 'utf8');
  const csv = synthetic ? syntheticExtract(sample, synthetic) : sample;

  const startup = Date.now();
  [temporal, slapd] = await Promise.all([startTemporalDevServer({ forTests: true }), startSlapd({ dir: path.join(tmp, 'slapd') })]);
  const config = YAML.parse(readFileSync(new URL('../jml.config.example.yaml', import.meta.url), 'utf8')) as Record<string, unknown> & { targets: Array<Record<string, unknown>> };
  Object.assign(config.targets[0]!, { url: slapd.url, bindDN: slapd.bindDN, bindPassword: slapd.bindPassword, baseDN: slapd.baseDN, usersDN: slapd.usersDN, groupsDN: slapd.groupsDN });
  config.lifecycle = { ...(config.lifecycle as object), preProvisionLead: '0s' };
  // The config file names ${JML_WEBHOOK_SECRET}; this bench sends no webhooks, any secret does.
  config.webhook = { secrets: `whsec_${randomBytes(32).toString('base64')}` };
  const configFile = path.join(tmp, 'jml.config.yaml');
  writeFileSync(configFile, YAML.stringify(config), { mode: 0o600 });

  const port = await freePort();
  const env = readEnv({
    ...process.env,
    PORT: String(port),
    HOST: '127.0.0.1',
    DATABASE_URL: databaseUrl,
    REDIS_URL: redisUrl,
    JML_REDIS_PREFIX: redisPrefix,
    TEMPORAL_ADDRESS: temporal.address,
    JML_TASK_QUEUE: taskQueue,
    JML_CONFIG: configFile,
    JML_DATA_DIR: tmp,
    PUBLIC_URL: `http://127.0.0.1:${port}`,
  });
  runtime = await startRuntime(env, { api: true, worker: true, embedded: false }, createLogger('warn'));
  await waitForWorker(temporal.address);
  measure = createDb(databaseUrl, { max: 2 });
  const { token } = await createApiToken(measure.db, { name: 'bench-import', scopes: ['events:write'] });
  console.log(`bench: engine up in ${seconds(Date.now() - startup)} (database ${databaseName}); importing ${synthetic ? `${synthetic} synthetic people` : args.file}`);

  const started = Date.now();
  const response = await fetch(`${env.publicUrl}/api/v1/hr/imports`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'text/csv' }, body: csv });
  const imported = Date.now();
  const result = (await response.json()) as CsvImportResult;
  if (response.status !== 202) throw new Error(`import answered ${response.status}: ${JSON.stringify(result)}`);
  const hires = await measure.db.select({ employeeId: hrEvents.employeeId }).from(hrEvents).where(and(eq(hrEvents.batchId, result.batchId!), eq(hrEvents.type, 'hire')));
  const hired = hires.map((h) => h.employeeId);

  // Provisioned: every grant of every hired person active and read back (verified_at).
  const db = measure.db;
  async function progress() {
    const [row] = await db
      .select({
        total: count(),
        done: sql<number>`count(*) filter (where ${grants.status} = 'active' and ${grants.verifiedAt} is not null)::int`,
        failed: sql<number>`count(*) filter (where ${grants.status} = 'failed')::int`,
        people: sql<number>`count(distinct ${grants.identityId}) filter (where ${grants.status} = 'active')::int`,
      })
      .from(grants);
    const [open] = await db
      .select({ n: count(), queued: sql<number>`count(*) filter (where ${hrEvents.status} = 'received')::int` })
      .from(hrEvents)
      .where(and(eq(hrEvents.batchId, result.batchId!), inArray(hrEvents.status, ['received', 'dispatched'])));
    return { ...row!, openEvents: open!.n, queuedEvents: open!.queued };
  }
  let provisionedAt: number | undefined;
  let settledAt: number | undefined;
  let last = await progress();
  let lastPrint = 0;
  while (Date.now() - started < waitMs) {
    last = await progress();
    const allPeople = last.people >= hired.length;
    if (!provisionedAt && allPeople && last.total > 0 && last.done + last.failed === last.total) provisionedAt = Date.now();
    if (!settledAt && last.openEvents === 0) settledAt = Date.now();
    if (provisionedAt && settledAt) break;
    if (Date.now() - lastPrint > 5_000) {
      lastPrint = Date.now();
      console.log(`  ${seconds(Date.now() - started)}: ${last.people}/${hired.length} people with grants, ${last.done}/${last.total} grants active, ${last.openEvents} events open (${last.queuedEvents} not yet with their workflow)`);
    }
    await sleep(250);
  }

  const grantsPerPerson = last.total / Math.max(1, hired.length);
  console.log(
    [
      ``,
      `rows in the extract       ${result.rows} (refused ${result.errors.length}, inactive and unknown ${result.skippedInactive})`,
      `events emitted            ${Object.entries(result.counts).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', ')}`,
      `import request            ${imported - started} ms (parse, plan, store ${result.stored} events in one transaction; batch ${result.batchStatus})`,
      `everyone provisioned      ${provisionedAt ? `${seconds(provisionedAt - started)}  (${hired.length} people, ${last.total} grants, ${grantsPerPerson.toFixed(1)} per person, failed ${last.failed}; ${(hired.length / ((provisionedAt - started) / 1000)).toFixed(1)} people/s)` : `NOT within ${seconds(waitMs)}: ${last.done}/${last.total} grants active`}`,
      `every event applied       ${settledAt ? seconds(settledAt - started) : `NOT within ${seconds(waitMs)}: ${last.openEvents} still open`}`,
    ].join('\n'),
  );
  if (!provisionedAt || !settledAt || last.failed > 0) process.exitCode = 1;
}

main()
  .catch((err: unknown) => {
    console.error(`bench: ${(err as Error).stack ?? String(err)}`);
    process.exitCode = 1;
  })
  .finally(() => cleanup().finally(() => process.exit()));
