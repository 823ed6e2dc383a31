// Ingest throughput of the HR webhook, end to end through the real API:
//   npx tsx bench/ingest.ts [--duration 20] [--connections 50] [--store batched|single] [--pool 10]
// Starts buildApp in this process against a fresh, migrated database and a Redis queue
// with a unique prefix, runs autocannon in a child process (bench/ingest-load.ts) where
// every request is a freshly signed webhook, then prints accepted events/s, latency, and
// the rows and jobs that exist afterwards (nothing accepted may be missing), and cleans up.
//
// --store picks the inbox write:
//   batched   what the API does (db/inbox.ts createInboxWriter): events arriving while a
//             write is in flight share one transaction and one turn at the audit chain lock
//   single    storeHrEvent: one transaction, one lock turn per event (the cost of the chain)
import { dropDatabase } from '../db/client.js';
import { benchResources } from './support.js';
import { deleteKeysWithPrefix } from '../services/redis.js';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { sql } from 'drizzle-orm';
import { buildApp } from '../api/app.js';
import { createMetricsRegistry } from '../api/metrics.js';
import type { StoreHrEvent } from '../api/routes/hr-events.js';
import { verifyAuditChain } from '../db/audit.js';
import { createDb, ensureDatabase, runMigrations } from '../db/client.js';
import { storeHrEvent } from '../db/inbox.js';
import { auditLog, hrEvents } from '../db/schema.js';
import { parseConfig } from '../domain/config.js';
import { createHrEventQueue } from '../services/hr-event-queue.js';
import { redisConnection } from '../services/redis.js';

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '20' },
    connections: { type: 'string', default: '50' },
    store: { type: 'string', default: 'batched' },
    pool: { type: 'string', default: '10' },
  },
});
const { databaseName, databaseUrl, redisUrl, redisPrefix } = benchResources('ing');
const duration = Number(args.duration);
const connections = Number(args.connections);
const poolSize = Number(args.pool);
const STORE_MODES = ['batched', 'single'] as const;
const storeMode = args.store as (typeof STORE_MODES)[number];
if (!STORE_MODES.includes(storeMode)) throw new Error(`--store must be one of ${STORE_MODES.join(', ')}, not ${storeMode}`);

const secret = `whsec_${randomBytes(32).toString('base64')}`;

// The real route batches (group commit); `single` stores each event in its own
// transaction, to show what the batching buys.
const stores: Record<typeof storeMode, StoreHrEvent | undefined> = {
  batched: undefined,
  single: storeHrEvent,
};

interface LoadResult {
  duration: number;
  latency: { p50: number; p99: number; average: number; max: number };
  requests: { total: number; average: number };
  '2xx': number;
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCodeStats: Record<string, { count: number }>;
  signed: number;
}

function runLoad(url: string): Promise<LoadResult> {
  const script = fileURLToPath(new URL('./ingest-load.ts', import.meta.url));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script], {
      env: { ...process.env, BENCH_URL: url, BENCH_SECRET: secret, BENCH_DURATION: String(duration), BENCH_CONNECTIONS: String(connections) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`load generator exited with ${code}`));
      try {
        resolve(JSON.parse(out.trim().split('\n').at(-1) ?? '') as LoadResult);
      } catch (err) {
        reject(err as Error);
      }
    });
  });
}


async function main(): Promise<void> {
  await ensureDatabase(databaseUrl);
  await runMigrations(databaseUrl);
  const handle = createDb(databaseUrl, { max: poolSize });
  const queue = createHrEventQueue(redisConnection(redisUrl, 'producer'), redisPrefix);
  const config = parseConfig({
    targets: [{ id: 'directory', type: 'ldap', bindDN: 'cn=admin,dc=example,dc=com', bindPassword: 'x', baseDN: 'dc=example,dc=com', usersDN: 'ou=people,dc=example,dc=com', groupsDN: 'ou=groups,dc=example,dc=com' }],
    entitlements: [{ id: 'directory-account', target: 'directory', kind: 'account' }],
    // One load generator is one client: the per-client limit would measure itself.
    api: { rateLimit: { max: 1_000_000_000 } },
  });
  const app = await buildApp({
    db: handle.db,
    hrEventQueue: queue,
    webhookSecrets: [secret],
    config,
    publicUrl: 'http://127.0.0.1',
    health: { redis: async () => void (await queue.getWaitingCount()), temporal: async () => {} },
    logger: false,
    metrics: createMetricsRegistry(),
    ...(stores[storeMode] ? { storeHrEvent: stores[storeMode] } : {}),
  });
  try {
    const address = await app.listen({ host: '127.0.0.1', port: 0 });
    console.log(`bench: ${connections} connections for ${duration} s against ${address}, store=${storeMode}, pool=${poolSize}, database ${databaseName}, redis prefix ${redisPrefix}`);
    const result = await runLoad(address);
    // Let requests still in flight when autocannon stopped finish before counting.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const [{ rows } = { rows: 0 }] = await handle.db.select({ rows: sql<number>`count(*)::int` }).from(hrEvents);
    const [{ audit } = { audit: 0 }] = await handle.db.select({ audit: sql<number>`count(*)::int` }).from(auditLog);
    const chain = await verifyAuditChain(handle.db);
    const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'completed', 'failed', 'prioritized');
    const jobs = Object.values(counts).reduce((a, b) => a + b, 0);
    const ok = result['2xx'];
    console.log(
      [
        `accepted events/s   ${(ok / result.duration).toFixed(0)}  (${ok} x 2xx in ${result.duration.toFixed(1)} s)`,
        `latency             p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms, avg ${result.latency.average} ms, max ${result.latency.max} ms`,
        `non-2xx             ${result.non2xx}  errors ${result.errors}  timeouts ${result.timeouts}  status codes ${JSON.stringify(Object.fromEntries(Object.entries(result.statusCodeStats).map(([k, v]) => [k, v.count])))}`,
        `requests signed     ${result.signed}`,
        `hr_events rows      ${rows}`,
        `audit rows          ${audit}${chain ? `  (hash chain ${chain.ok ? 'intact' : `BROKEN at seq ${chain.brokenAt}`})` : ''}`,
        `queue jobs          ${jobs}  ${JSON.stringify(counts)}`,
        `lost                ${ok - Math.min(rows, jobs) > 0 ? `${ok - Math.min(rows, jobs)} accepted events missing!` : 'none (every 2xx has a row and a job)'}`,
      ].join('\n'),
    );
  } finally {
    await app.close();
    await queue.close();
    await handle.close();
    await deleteKeysWithPrefix(redisUrl, `${redisPrefix}:`);
    await dropDatabase(databaseUrl);
  }
}

await main();
