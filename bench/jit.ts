// Just-in-time elevation at scale, end to end through the real engine:
//   npx tsx bench/jit.ts [--count 1000] [--people 200] [--groups 5] [--wait 300] [--seed 1]
// Starts its own Temporal dev server, its own slapd (temporary folder), a fresh database
// jml_bench_jit_<random>, a unique Redis prefix and task queue, an SMTP sink in this process
// (the engine mails each requester; without a server those mails would retry forever), and
// runs startRuntime (API, Temporal worker, ingestion worker) in this process, with a config
// like jml.config.example.yaml plus --groups JIT-eligible groups (`approval: none`). Then:
//   1. hires --people people through signed `hire` webhooks and waits until their birthright
//      grants are verified, so their LDAP accounts exist;
//   2. starts --count elevations at once: a random person, a random JIT group (so some
//      overlap on one person and group, which share one grant, reference-counted), for a
//      random 5 to 10 s. Each is recorded and started as the API would: an access_requests
//      row of kind `jit`, then the `jitElevation` workflow `jit:<id>`;
//   3. waits (at most --wait s after the start) until every elevation has ended: revoked
//      (proven gone by read-back) or retained (an overlapping one still held the access),
//      then until their workflows have closed, so nothing in flight can add access back;
//   4. reads OpenLDAP itself: for every person and group that was elevated, the group's
//      own `member` values must no longer name the person ("left behind", must be 0), and
//      no grant of a JIT group may still be live in the database.
// It prints the time to grant, the revocation lag (revoked_at - expires_at, recorded by the
// engine) at p50 / p99 / max, how many ended retained, left behind, wall time and this
// process's peak RSS (bench and engine share it). Figures are printed, never asserted in
// tests. Exit status 1 when access was left behind, a grant is still live or an elevation
// never ended; 2 when the bench itself failed. Everything it started is stopped and dropped.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, Runtime as TemporalRuntime, type LogEntry } from '@temporalio/worker';
import { Client as LdapClient } from 'ldapts';
import postgres from 'postgres';
import { SMTPServer } from 'smtp-server';
import { Webhook } from 'standardwebhooks';
import YAML from 'yaml';
import { parseDn } from '../activities/connectors/ldap.js';
import { dropDatabase } from '../db/client.js';
import { canonicalEmployeeId } from '../domain/employee-id.js';
import { freePort } from '../scripts/free-port.js';
import { startSlapd, type SlapdServer } from '../scripts/slapd.js';
import { startTemporalDevServer, type TemporalDevServer } from '../scripts/temporal-server.js';
import { deleteKeysWithPrefix } from '../services/redis.js';
import type { Runtime } from '../worker/runtime.js';
import { jitElevationWorkflowId } from '../workflows/request-messages.js';
import { benchResources, runBench, startBenchRuntime, cleanupStep, guardBench, postHrEvent, sleep, waitForWorker, writeBenchConfig } from './support.js';

const { values: args } = parseArgs({
  options: {
    count: { type: 'string', default: '1000' },
    people: { type: 'string', default: '200' },
    groups: { type: 'string', default: '5' },
    /** Seconds, from the start of the elevations, for all of them to end. */
    wait: { type: 'string', default: '300' },
    /** Seconds for the hires to be provisioned. */
    'hire-wait': { type: 'string', default: '180' },
    /** Seed of the random choices (person, group, duration), so a run can be repeated. */
    seed: { type: 'string', default: '1' },
  },
});
const count = Number(args.count);
const peopleCount = Number(args.people);
const groupCount = Number(args.groups);
const waitSeconds = Number(args.wait);
const hireWaitSeconds = Number(args['hire-wait']);
const seed = Number(args.seed);
for (const [name, value] of Object.entries({ count, people: peopleCount, groups: groupCount, wait: waitSeconds, 'hire-wait': hireWaitSeconds })) {
  if (!Number.isInteger(value) || value <= 0) throw new Error(`--${name} must be a positive whole number`);
}
if (!Number.isInteger(seed)) throw new Error('--seed must be a whole number');

const MIN_DURATION_MS = 5_000;
const MAX_DURATION_MS = 10_000;
/** Birthright of an Operations employee in jml.config.example.yaml: directory-account, all-staff, employees. */
const BIRTHRIGHT_GRANTS = 3;
/** How many workflow starts are in flight at once (the client's connection is shared). */
const START_CONCURRENCY = 50;
const HIRE_CONCURRENCY = 20;

const { runId, databaseName, databaseUrl, redisUrl, redisPrefix, taskQueue } = benchResources('jit');
const secret = `whsec_${randomBytes(32).toString('base64')}`;
// Canonical (upper case), as the webhook stores it, so the queries find them.
const employeePrefix = canonicalEmployeeId(`JIT${runId}-`);
const employeeId = (i: number) => `${employeePrefix}${String(i).padStart(4, '0')}`;
const jitGroupIds = Array.from({ length: groupCount }, (_, i) => `jit-admin-${i + 1}`);

// ---- what this run starts, and stops again --------------------------------------------

let temporal: TemporalDevServer | undefined;
let slapd: SlapdServer | undefined;
let smtp: MailSink | undefined;
let runtime: Runtime | undefined;
let temporalConnection: Connection | undefined;
let measure: postgres.Sql | undefined;
let tmp: string | undefined;
let databaseCreated = false;

let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  return (cleaning ??= (async () => {
    if (runtime) await cleanupStep('stopping the runtime', () => runtime!.stop());
    if (temporalConnection) await cleanupStep('closing the Temporal client', () => temporalConnection!.close());
    if (measure) await cleanupStep('closing the measuring connection', () => measure!.end({ timeout: 5 }));
    if (smtp) await cleanupStep('stopping the SMTP sink', () => smtp!.stop());
    if (slapd) await cleanupStep('stopping slapd', () => slapd!.stop());
    if (temporal) await cleanupStep('stopping Temporal', () => temporal!.stop());
    if (databaseCreated) await cleanupStep(`dropping ${databaseName}`, () => dropDatabase(databaseUrl));
    await cleanupStep(`deleting Redis keys ${redisPrefix}:*`, () => deleteKeysWithPrefix(redisUrl, `${redisPrefix}:`));
    if (tmp) await cleanupStep(`removing ${tmp}`, async () => rmSync(tmp!, { recursive: true, force: true }));
  })());
}

// Start-up (Temporal, worker bundling), the hires, the elevations' wait, the workflows
// closing and the checks. Past that, clean up what we can and leave.
const budgetMs = (240 + hireWaitSeconds + waitSeconds + 120) * 1000;
guardBench(budgetMs, cleanup);

// ---- helpers ---------------------------------------------------------------------------

/** mulberry32: a small seeded generator, so the same --seed draws the same elevations. */
function seededRandom(s: number): () => number {
  let a = s >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function percentile(sorted: number[], p: number): number {
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] as number;
}

function summary(values: number[]): string {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return 'n/a (no samples)';
  const f = (ms: number) => `${Math.round(ms)} ms`;
  return `p50 ${f(percentile(sorted, 50))}  p99 ${f(percentile(sorted, 99))}  max ${f(sorted.at(-1) as number)}  (n=${sorted.length})`;
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** Runs `fn` over `items`, at most `limit` at a time. */
async function pool<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      for (let i = next++; i < items.length; i = next++) results[i] = await fn(items[i] as T);
    }),
  );
  return results;
}

/** Worker warnings and errors, by what they say (level, message, activity, first line of the error). */
const workerLog = new Map<string, number>();
function recordWorkerLog(entry: LogEntry): void {
  const meta = entry.meta ?? {};
  const activity = typeof meta.activityType === 'string' ? ` (${meta.activityType})` : '';
  const error = meta.error instanceof Error ? `: ${meta.error.message.split('\n')[0]}` : '';
  const key = `${entry.level} ${entry.message}${activity}${error}`.slice(0, 300);
  workerLog.set(key, (workerLog.get(key) ?? 0) + 1);
}

interface MailSink {
  url: string;
  received(): number;
  stop(): Promise<void>;
}

/** An SMTP server on loopback that accepts every message and keeps only the count. */
async function startMailSink(): Promise<MailSink> {
  let received = 0;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, _session, callback) {
      stream.on('end', () => {
        received += 1;
        callback();
      });
      stream.resume();
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.server.address() as AddressInfo;
  return { url: `smtp://127.0.0.1:${port}`, received: () => received, stop: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/** Each JIT group's own `member` values, as canonical employee ids (memberOf is the overlay's opinion). */
async function readJitMembers(server: SlapdServer): Promise<Map<string, Set<string>>> {
  const client = new LdapClient({ url: server.url, timeout: 30_000, connectTimeout: 5_000 });
  const members = new Map<string, Set<string>>(jitGroupIds.map((id) => [id, new Set<string>()]));
  const list = (v: unknown) => (v === undefined ? [] : Array.isArray(v) ? v.map(String) : [String(v)]);
  try {
    await client.bind(server.bindDN, server.bindPassword);
    const { searchEntries } = await client.search(server.groupsDN, { scope: 'one', filter: '(&(objectClass=groupOfNames)(cn=jit-admin-*))', attributes: ['cn', 'member'] });
    for (const group of searchEntries) {
      const set = members.get(list(group.cn)[0] ?? '');
      if (!set) continue;
      for (const member of list(group.member)) {
        const [type, value] = parseDn(member)[0]?.[0] ?? [];
        if (type?.toLowerCase() === 'uid' && value) set.add(canonicalEmployeeId(value));
      }
    }
  } finally {
    await client.unbind().catch(() => {});
  }
  return members;
}

interface Elevation {
  id: string;
  employeeId: string;
  entitlementId: string;
  durationMs: number;
  /** When its workflow start was asked for (ms epoch); 0 until then. */
  startAt: number;
  started: boolean;
  startError?: string;
}

interface ElevationRow {
  id: string;
  status: string;
  durationMs: number;
  expiresAt: Date | null;
  revocationStatus: string | null;
  revokedAt: Date | null;
  revocationLagMs: number | null;
  retainedBy: string[] | null;
}

interface Progress {
  granted: number;
  revoked: number;
  retained: number;
  failed: number;
  pending: number;
  refused: number;
}

async function progress(sql: postgres.Sql, ids: string[]): Promise<Progress> {
  const [row] = await sql<Progress[]>`
    select (count(*) filter (where expires_at is not null))::int as granted,
           (count(*) filter (where revocation_status = 'revoked'))::int as revoked,
           (count(*) filter (where revocation_status = 'retained'))::int as retained,
           (count(*) filter (where revocation_status = 'failed'))::int as failed,
           (count(*) filter (where revocation_status = 'pending'))::int as pending,
           (count(*) filter (where status not in ('pending_approval', 'approved', 'auto_approved')))::int as refused
    from access_requests where id = any(${ids}::uuid[])`;
  return row ?? { granted: 0, revoked: 0, retained: 0, failed: 0, pending: 0, refused: 0 };
}

// ---- the run ---------------------------------------------------------------------------

async function main(): Promise<boolean> {
  const t0 = Date.now();
  // The worker's start-up chatter (webpack, state changes) would bury the figures, and a
  // thousand workflows can repeat one warning many times: they are counted, then summed up.
  TemporalRuntime.install({ logger: new DefaultLogger('WARN', recordWorkerLog) });
  tmp = mkdtempSync(join(tmpdir(), 'jml-bench-jit-'));
  [temporal, slapd, smtp] = await Promise.all([startTemporalDevServer({ forTests: true }), startSlapd({ dir: join(tmp, 'slapd') }), startMailSink()]);
  const server = slapd;
  const port = await freePort();
  const configFile = join(tmp, 'jml.config.yaml');
  // The example's entitlements, and the JIT groups: anyone may elevate, for a minute at most, with nobody to approve.
  const example = YAML.parse(readFileSync(new URL('../jml.config.example.yaml', import.meta.url), 'utf8')) as { entitlements: Array<Record<string, unknown>> };
  writeBenchConfig(configFile, server, {
    entitlements: [
      ...example.entitlements,
      ...jitGroupIds.map((id) => ({
        id,
        name: `Bench JIT ${id}`,
        target: 'directory',
        kind: 'group',
        ref: `cn=${id},${server.groupsDN}`,
        risk: 'high',
        jit: { eligible: true, maxDuration: '1m', approval: 'none' },
      })),
    ],
  });
  databaseCreated = true; // startRuntime creates it; drop it even if start-up fails half-way
  let api: string;
  ({ runtime, api } = await startBenchRuntime({ databaseUrl: databaseUrl, configFile: configFile, webhookSecret: secret, temporalAddress: temporal.address, taskQueue: taskQueue, redisPrefix: redisPrefix, port, tmp: tmp, smtpUrl: smtp.url }));
  // Its own client: drizzle (createDb) switches a client's timestamp parsing to strings.
  measure = postgres(databaseUrl, { max: 4, onnotice: () => {} });
  const sql = measure;
  temporalConnection = await Connection.connect({ address: temporal.address });
  const temporalClient = new Client({ connection: temporalConnection });
  const workerMs = await waitForWorker(temporal.address, taskQueue, 180_000);
  console.log(
    `bench: ${count} elevations of ${MIN_DURATION_MS / 1000}-${MAX_DURATION_MS / 1000} s over ${peopleCount} people and ${groupCount} JIT groups (seed ${seed}); Temporal ${temporal.address}, slapd ${server.url}, database ${databaseName}; ready in ${seconds(Date.now() - t0)} (worker polling after ${seconds(workerMs)})`,
  );

  // ---- 1. the people, hired through the engine so their LDAP accounts exist ----
  const hireStart = Date.now();
  const webhook = new Webhook(secret);
  const ids = Array.from({ length: peopleCount }, (_, i) => employeeId(i));
  const answers = await pool(ids, HIRE_CONCURRENCY, (id) =>
    postHrEvent(api, webhook, `jit-${runId}-hire-${id}`, {
      type: 'hire',
      employeeId: id,
      attributes: { givenName: 'Bench', familyName: id, email: `${id.toLowerCase()}@example.com`, department: 'Operations', title: 'Operator', employmentType: 'employee', managerId: 'E0001' },
    }),
  );
  const refusedHires = answers.filter((a) => a.status !== 202);
  if (refusedHires.length) throw new Error(`${refusedHires.length} hire webhooks were not accepted (first: ${refusedHires[0]!.status} ${refusedHires[0]!.error ?? ''})`);
  for (;;) {
    const [row] = await sql<Array<{ active: number; failed: number }>>`
      select (count(*) filter (where g.status = 'active' and g.verified_at is not null))::int as active, (count(*) filter (where g.status = 'failed'))::int as failed
      from grants g join identities i on i.id = g.identity_id where i.employee_id like ${`${employeePrefix}%`}`;
    if ((row?.failed ?? 0) > 0) throw new Error(`${row!.failed} birthright grants failed while hiring`);
    if ((row?.active ?? 0) >= peopleCount * BIRTHRIGHT_GRANTS) break;
    if (Date.now() - hireStart > hireWaitSeconds * 1000) throw new Error(`the hires were not provisioned within ${hireWaitSeconds} s (${row?.active ?? 0} of ${peopleCount * BIRTHRIGHT_GRANTS} grants verified)`);
    await sleep(500);
  }
  console.log(`hired         ${peopleCount} people, ${peopleCount * BIRTHRIGHT_GRANTS} birthright grants verified in ${seconds(Date.now() - hireStart)}`);

  // ---- 2. the elevations, all at once ----
  const identityRows = await sql<Array<{ id: string; employeeId: string }>>`select id, employee_id as "employeeId" from identities where employee_id like ${`${employeePrefix}%`}`;
  const identityOf = new Map(identityRows.map((r) => [r.employeeId, r.id]));
  const random = seededRandom(seed);
  const drawn = Array.from({ length: count }, (_, i) => {
    const person = ids[Math.floor(random() * ids.length)] as string;
    const entitlementId = jitGroupIds[Math.floor(random() * jitGroupIds.length)] as string;
    const durationMs = MIN_DURATION_MS + Math.floor(random() * (MAX_DURATION_MS - MIN_DURATION_MS + 1));
    return { key: `bench:jit:${runId}:${i}`, person, entitlementId, durationMs };
  });
  const elevStart = Date.now();
  // Recorded as the API records an elevation its policy let through (the policy checks are
  // the API's; this bench measures the workflow): the row first, then its workflow.
  const inserted = await sql<Array<{ id: string; key: string }>>`
    insert into access_requests ${sql(
      drawn.map((d) => ({
        idempotency_key: d.key,
        identity_id: identityOf.get(d.person) ?? null,
        entitlement_id: d.entitlementId,
        kind: 'jit',
        status: 'pending_approval',
        requested_by: d.person,
        justification: 'bench: just-in-time elevation at scale',
        duration_ms: d.durationMs,
      })),
    )}
    returning id, idempotency_key as key`;
  const idOf = new Map(inserted.map((r) => [r.key, r.id]));
  const elevations: Elevation[] = drawn.map((d) => ({ id: idOf.get(d.key) as string, employeeId: d.person, entitlementId: d.entitlementId, durationMs: d.durationMs, startAt: 0, started: false }));
  await pool(elevations, START_CONCURRENCY, async (e) => {
    e.startAt = Date.now();
    try {
      await temporalClient.workflow.start('jitElevation', { workflowId: jitElevationWorkflowId(e.id), taskQueue, args: [{ requestId: e.id }] });
      e.started = true;
    } catch (err) {
      e.startError = (err as Error).message;
    }
  });
  const startedIds = elevations.filter((e) => e.started).map((e) => e.id);
  await sql`update access_requests set workflow_started_at = now() where id = any(${startedIds}::uuid[])`;
  const pairs = new Map<string, Elevation[]>();
  for (const e of elevations) {
    const key = `${e.employeeId}/${e.entitlementId}`;
    pairs.set(key, [...(pairs.get(key) ?? []), e]);
  }
  const overlapping = [...pairs.values()].filter((list) => list.length > 1);
  console.log(
    `started       ${startedIds.length} of ${count} elevations in ${seconds(Date.now() - elevStart)} (${pairs.size} person/group pairs; ${overlapping.length} pairs elevated more than once, ${overlapping.reduce((n, l) => n + l.length, 0)} elevations)`,
  );
  for (const e of elevations.filter((x) => !x.started).slice(0, 3)) console.log(`  not started: ${e.id}: ${e.startError ?? ''}`);

  // ---- 3. until every elevation has ended ----
  let peakMembers = 0;
  let lastReport = Date.now();
  let ended = false;
  let p: Progress = await progress(sql, startedIds);
  for (let tick = 0; ; tick++) {
    p = await progress(sql, startedIds);
    if (tick % 3 === 0) {
      // How much access was really out there at once: the check at the end is not vacuous.
      const members = await readJitMembers(server);
      const held = [...pairs.keys()].filter((key) => {
        const [person, group] = key.split('/') as [string, string];
        return members.get(group)?.has(person);
      }).length;
      peakMembers = Math.max(peakMembers, held);
    }
    if (p.revoked + p.retained + p.refused >= startedIds.length) {
      ended = true;
      break;
    }
    if (Date.now() - elevStart > waitSeconds * 1000) break;
    if (Date.now() - lastReport >= 10_000) {
      lastReport = Date.now();
      console.log(`  t+${seconds(Date.now() - elevStart).padStart(7)}: granted ${p.granted}, revoked ${p.revoked}, retained ${p.retained}, revocation pending ${p.pending}, failed ${p.failed}`);
    }
    await sleep(1_000);
  }
  const endedAfterMs = Date.now() - elevStart;
  // Nothing in flight may add access back after the check: wait for the workflows to close.
  const closeStart = Date.now();
  let running = -1;
  for (;;) {
    running = (await temporalClient.workflow.count(`WorkflowType = 'jitElevation' AND TaskQueue = '${taskQueue}' AND ExecutionStatus = 'Running'`)).count;
    if (running === 0 || Date.now() - closeStart > 60_000) break;
    await sleep(1_000);
  }
  const closedAfterMs = Date.now() - elevStart;

  // ---- 4. what is left, read from OpenLDAP itself and from the database ----
  const members = await readJitMembers(server);
  const leftBehind = [...pairs.keys()].filter((key) => {
    const [person, group] = key.split('/') as [string, string];
    return members.get(group)?.has(person);
  });
  const elevatedPeople = new Set(elevations.map((e) => e.employeeId));
  const stray = [...members.entries()].flatMap(([group, set]) => [...set].filter((person) => !pairs.has(`${person}/${group}`) && elevatedPeople.has(person)).map((person) => `${person}/${group}`));
  const liveGrants = await sql<Array<{ status: string; n: number }>>`
    select g.status, count(*)::int as n from grants g join identities i on i.id = g.identity_id
    where i.employee_id like ${`${employeePrefix}%`} and g.entitlement_id = any(${jitGroupIds}) and g.status <> 'revoked'
    group by g.status order by g.status`;
  const liveGrantCount = liveGrants.reduce((n, r) => n + r.n, 0);
  const rows = await sql<ElevationRow[]>`
    select id, status, duration_ms::int as "durationMs", expires_at as "expiresAt", revocation_status as "revocationStatus",
           revoked_at as "revokedAt", revocation_lag_ms::int as "revocationLagMs", retained_by as "retainedBy"
    from access_requests where id = any(${startedIds}::uuid[])`;
  const byId = new Map(elevations.map((e) => [e.id, e]));
  const toGrant = rows.filter((r) => r.expiresAt).map((r) => r.expiresAt!.getTime() - r.durationMs - (byId.get(r.id)?.startAt ?? 0));
  const revoked = rows.filter((r) => r.revocationStatus === 'revoked');
  const lags = revoked.filter((r) => r.revocationLagMs !== null).map((r) => r.revocationLagMs as number);
  const revokedEarly = revoked.filter((r) => r.revocationLagMs === null).length;
  const retained = rows.filter((r) => r.revocationStatus === 'retained');
  const retainedByOverlap = retained.filter((r) => (r.retainedBy ?? []).some((why) => why.startsWith('request '))).length;
  const notEnded = rows.filter((r) => r.revocationStatus !== 'revoked' && r.revocationStatus !== 'retained');
  const notGranted = rows.filter((r) => !r.expiresAt).length;
  const alerts = await sql<Array<{ kind: string; n: number }>>`select kind, count(*)::int as n from alerts group by kind order by kind`;

  const tally = (values: string[]) => Object.entries(values.reduce<Record<string, number>>((acc, v) => ({ ...acc, [v]: (acc[v] ?? 0) + 1 }), {})).map(([k, n]) => `${k} x${n}`).join(', ');
  console.log(
    [
      `elevations    ${startedIds.length} started, ${rows.length - notGranted} granted; ${ended ? `all ended ${seconds(endedAfterMs)} after the start` : `NOT all ended within the ${waitSeconds} s wait`}; workflows ${running === 0 ? `all closed at ${seconds(closedAfterMs)}` : `${running} still running after 60 s more`}`,
      `  ended as    revoked ${revoked.length} (proven gone by read-back${revokedEarly ? `; ${revokedEarly} of them before their own expiry, no lag recorded` : ''}), retained ${retained.length} (${retainedByOverlap} because an overlapping elevation still held it)${notEnded.length ? `, NOT ENDED ${notEnded.length}: ${tally(notEnded.map((r) => `${r.status}/${r.revocationStatus ?? 'null'}`))}` : ''}`,
      `time to grant ${summary(toGrant)}   [workflow start -> verified grant]`,
      `revoc. lag    ${summary(lags)}   [revoked_at - expires_at]`,
      `LDAP          at most ${peakMembers} of ${pairs.size} elevated pairs seen in their group at once; left behind ${leftBehind.length}${leftBehind.length ? `  <-- must be 0: ${leftBehind.slice(0, 5).join(', ')}` : ' (must be 0)'}${stray.length ? `; ${stray.length} memberships nobody elevated: ${stray.slice(0, 3).join(', ')}` : ''}`,
      `database      live JIT grants left ${liveGrantCount}${liveGrantCount ? ` (${liveGrants.map((r) => `${r.status} x${r.n}`).join(', ')})  <-- must be 0` : ''}; alerts ${alerts.length ? alerts.map((a) => `${a.kind} x${a.n}`).join(', ') : 'none'}; mails sent ${smtp.received()}`,
      ...[...workerLog.entries()].sort((a, b) => b[1] - a[1]).slice(0, 5).map(([what, n]) => `worker log    x${n} ${what}`),
      `run           ${seconds(Date.now() - t0)} wall time; peak RSS ${Math.round(process.resourceUsage().maxRSS / 1024)} MB (this process: bench and engine)`,
    ].join('\n'),
  );
  const ok = leftBehind.length === 0 && stray.length === 0 && liveGrantCount === 0 && notEnded.length === 0 && startedIds.length === count;
  console.log(`result: ${ok ? 'OK: no access left behind' : 'PROBLEMS (see above)'}`);
  return ok;
}

await runBench(main, cleanup);
