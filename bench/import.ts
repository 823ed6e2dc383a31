// CSV snapshot import, end to end through the real engine:
//   npx tsx bench/import.ts [--file ../shared/data/hr-samples/csv-with-1000-records.csv] [--synthetic N] [--wait 600] [--health-only]
// Starts its own Temporal dev server, slapd (temporary folder), a fresh database
// jml_bench_imp_<random>, a unique Redis prefix and task queue, writes a config from
// jml.config.example.yaml aimed at that slapd (its birthright rules fit the HR samples),
// and runs startRuntime (API, Temporal worker, ingestion worker) in this process.
// First it measures how responsive the engine stays while a file is parsed, since the API
// and the workers share one event loop: a worker thread calls GET /api/health over and over
// (each call as soon as the last answered) while the largest file the import allows
// (CSV_LIMITS: the sample's rows, renumbered, up to the row and size limits) is dry-run
// through the API, and prints p50 / p95 / max of the answer times, next to the same with
// the engine idle; and how fast a 100,000-column file is refused. --health-only stops there.
// Then it POSTs the extract to /api/v1/hr/imports, as an HR integration would, and measures:
//   - the import request itself (parse, plan, one transaction for the feed),
//   - until every hired person's grants are all active with verified_at (read back),
//   - until every event of the import is settled (applied), leaves of absence included.
// --synthetic N imports N distinct people made from the sample's rows instead (the sample
// has 1000 rows but only ~170 usable active workers: many WorkerIDs name several people).
// Everything it started is stopped and dropped at the end.
import { dropDatabase } from '../db/client.js';
import { benchResources, cleanupStep, sleep, waitForWorker, writeBenchConfig } from './support.js';
import { freePort } from '../scripts/free-port.js';
import { deleteKeysWithPrefix } from '../services/redis.js';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { DefaultLogger, Runtime as TemporalRuntime } from '@temporalio/worker';
import { and, count, eq, inArray, sql } from 'drizzle-orm';
import { createApiToken } from '../api/auth.js';
import { createDb, type DbHandle } from '../db/client.js';
import { grants, hrEvents } from '../db/schema.js';
import { startSlapd, type SlapdServer } from '../scripts/slapd.js';
import { startTemporalDevServer, type TemporalDevServer } from '../scripts/temporal-server.js';
import { CSV_LIMITS } from '../domain/csv-import.js';
import type { CsvImportResult } from '../services/csv-import.js';
import { readEnv } from '../services/env.js';
import { createLogger } from '../services/logger.js';
import { startRuntime, type Runtime } from '../worker/runtime.js';

const { values: args } = parseArgs({
  options: {
    file: { type: 'string', default: path.resolve(import.meta.dirname, '../../shared/data/hr-samples/csv-with-1000-records.csv') },
    synthetic: { type: 'string' },
    wait: { type: 'string', default: '600' },
    'health-only': { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log(
    [
      'usage: npx tsx bench/import.ts [--file <extract.csv>] [--synthetic N] [--wait SECONDS] [--health-only]',
      '  /api/health answer times while the largest allowed CSV is dry-run, then the extract imported and provisioned',
      '  --health-only  stop after the /api/health measurement',
    ].join('\n'),
  );
  process.exit(0);
}
const { databaseName, databaseUrl, redisUrl, redisPrefix, taskQueue } = benchResources('imp');
const waitMs = Number(args.wait) * 1000;
const synthetic = args.synthetic === undefined ? undefined : Number(args.synthetic);
if (synthetic !== undefined && !(synthetic > 0)) throw new Error('--synthetic must be a positive number');

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

/** The largest file the import takes: the sample's rows, renumbered and active, until the next row would pass a limit. */
function largestExtract(sample: string): { csv: string; rows: number } {
  const [header, ...rows] = sample.split(/\r?\n/).filter(Boolean);
  const lines = [header!];
  let bytes = Buffer.byteLength(header!) + 1;
  for (let i = 0; i < CSV_LIMITS.rows; i++) {
    const fields = rows[i % rows.length]!.split(',');
    fields[0] = `L${String(i).padStart(6, '0')}`;
    fields[1] = 'Active';
    const line = fields.join(',');
    if (bytes + Buffer.byteLength(line) + 1 > CSV_LIMITS.fileBytes) break;
    bytes += Buffer.byteLength(line) + 1;
    lines.push(line);
  }
  return { csv: `${lines.join('\n')}\n`, rows: lines.length - 1 };
}

// The health prober runs in a worker thread, on an event loop of its own: what it measures
// is the engine's loop, not its own (this thread also reads the dry run's large answer).
const PROBER = `
const { parentPort, workerData } = require('node:worker_threads');
let stop = false;
parentPort.on('message', () => { stop = true; });
(async () => {
  const times = [];
  const statuses = {};
  while (!stop) {
    const started = performance.now();
    const response = await fetch(workerData.url);
    await response.arrayBuffer();
    times.push(performance.now() - started);
    statuses[response.status] = (statuses[response.status] ?? 0) + 1;
  }
  parentPort.postMessage({ times, statuses });
})();
`;

interface Latencies {
  times: number[];
  statuses: Record<string, number>;
  /** The engine's event loop delay meanwhile (ms, sampled every millisecond): how long a due timer waited for its turn. */
  loopDelay: { p50: number; p99: number; max: number };
}

/** Calls /api/health back to back from a worker thread until `during` settles; the answer times. */
async function healthLatencies(url: string, during: Promise<unknown>): Promise<Latencies> {
  const loop = monitorEventLoopDelay({ resolution: 1 });
  const worker = new Worker(PROBER, { eval: true, workerData: { url } });
  const result = new Promise<Omit<Latencies, 'loopDelay'>>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  loop.enable();
  try {
    await during;
  } finally {
    loop.disable();
    worker.postMessage('stop');
  }
  const latencies = await result;
  await worker.terminate();
  const ms = (ns: number) => ns / 1e6;
  return { ...latencies, loopDelay: { p50: ms(loop.percentile(50)), p99: ms(loop.percentile(99)), max: ms(loop.max) } };
}

function describeLatencies({ times, statuses, loopDelay }: Latencies): string {
  const sorted = [...times].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
  const answers = Object.entries(statuses).map(([status, n]) => `${n}x ${status}`).join(', ');
  return (
    `p50 ${at(0.5).toFixed(1)} ms, p95 ${at(0.95).toFixed(1)} ms, max ${(sorted.at(-1) ?? NaN).toFixed(1)} ms (${times.length} calls: ${answers}); ` +
    `event loop delay p50 ${loopDelay.p50.toFixed(1)} ms, p99 ${loopDelay.p99.toFixed(1)} ms, max ${loopDelay.max.toFixed(1)} ms`
  );
}

/** How responsive /api/health stays while the import parses the largest file it allows, and how a very wide file is refused. */
async function measureResponsiveness(baseUrl: string, token: string, sample: string): Promise<void> {
  // The body is encoded before and the answer decoded after the measurement: this thread
  // shares the engine's event loop, and decoding a 60 MiB answer at once would be a stall
  // of the bench's own making.
  const post = async (csv: Buffer) => {
    const started = performance.now();
    const response = await fetch(`${baseUrl}/api/v1/hr/imports?dryRun=true`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'text/csv' }, body: csv });
    const chunks: Uint8Array[] = [];
    for await (const chunk of response.body ?? []) chunks.push(chunk as Uint8Array);
    return { status: response.status, ms: performance.now() - started, bytes: Buffer.concat(chunks) };
  };
  const healthUrl = `${baseUrl}/api/health`;

  const idle = await healthLatencies(healthUrl, sleep(3_000));

  const wide = Array.from({ length: 100_000 }, (_, i) => `C${i}`);
  const wideCsv = Buffer.from([['WorkerID', 'WorkerStatus', 'FirstName', 'LastName', ...wide].join(','), ...Array.from({ length: 20 }, (_, i) => [`W${i}`, 'Active', 'A', 'B', ...wide].join(','))].join('\n'));
  const refused = await post(wideCsv);
  const problem = JSON.parse(refused.bytes.toString('utf8')) as { errors?: Array<{ field: string; message: string }> };

  const largest = largestExtract(sample);
  const largestCsv = Buffer.from(largest.csv);
  let dryRun: Awaited<ReturnType<typeof post>> | undefined;
  const during = await healthLatencies(
    healthUrl,
    post(largestCsv).then((answer) => (dryRun = answer)),
  );
  const answer = dryRun!.bytes.toString('utf8');
  if (dryRun!.status !== 200) throw new Error(`the dry run answered ${dryRun!.status}: ${answer.slice(0, 500)}`);
  const plan = JSON.parse(answer) as CsvImportResult;

  const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
  console.log(
    [
      ``,
      `/api/health, engine idle          ${describeLatencies(idle)}`,
      `/api/health, during the dry run   ${describeLatencies(during)}`,
      `  the dry run                     ${largest.rows} rows, ${mib(Buffer.byteLength(largest.csv))} (limits: ${CSV_LIMITS.rows} rows, ${mib(CSV_LIMITS.fileBytes)}): ` +
        `${dryRun!.status} in ${(dryRun!.ms / 1000).toFixed(1)} s, ${mib(dryRun!.bytes.length)} of JSON; ${plan.counts.hire} hires, ${plan.errors.length} refused rows`,
      `100,000 columns x 20 rows         ${refused.status} in ${refused.ms.toFixed(0)} ms (${mib(wideCsv.length)}): ${problem.errors?.map((e) => `${e.field}: ${e.message}`).join('; ') ?? '(no errors)'}`,
      ``,
    ].join('\n'),
  );
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
  const configFile = path.join(tmp, 'jml.config.yaml');
  writeBenchConfig(configFile, slapd, {
    // The config file names ${JML_WEBHOOK_SECRET}; this bench sends no webhooks, any secret does.
    webhook: { secrets: `whsec_${randomBytes(32).toString('base64')}` },
    // The health prober calls back to back: the rate limits are not what this bench measures.
    api: { rateLimit: { max: 100_000_000 } },
  });

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
  await waitForWorker(temporal.address, taskQueue, 180_000);
  measure = createDb(databaseUrl, { max: 2 });
  const { token } = await createApiToken(measure.db, { name: 'bench-import', scopes: ['events:write'] });
  console.log(`bench: engine up in ${seconds(Date.now() - startup)} (database ${databaseName})`);
  await measureResponsiveness(env.publicUrl, token, sample);
  if (args['health-only']) return;
  console.log(`bench: importing ${synthetic ? `${synthetic} synthetic people` : args.file}`);

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
