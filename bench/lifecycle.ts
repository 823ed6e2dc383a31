// Joiner and leaver latency, end to end through the real engine:
//   npx tsx bench/lifecycle.ts [--rate 20] [--duration 30] [--wait 120] [--sample 3] [--trace]
// Starts its own Temporal dev server, its own slapd (in a temporary folder), a fresh
// database jml_bench_lc_<random> and a unique Redis prefix and task queue, writes a config
// like jml.config.example.yaml pointing at that slapd, and runs startRuntime (API, Temporal
// worker, ingestion worker) in this process. Then:
//   1. joiners: signed `hire` webhooks over HTTP at --rate per second for --duration
//      seconds, one new Engineering employee each (4 birthright grants: the account and 3
//      groups); waits (at most --wait s) until every grant is active with verified_at, and
//      reports per person max(grants.verified_at) - the moment the 202 came back.
//   2. leavers: `terminate` webhooks (effective now) for the same people at the same rate
//      (those whose joiner finished within the wait); waits until every grant is revoked,
//      and reports max(grants.revoked_at) - the 202.
// Both also against hr_events.received_at; --trace prints one person's audit trail. It
// checks the directory itself with ldapts for everyone the database calls done: joiners
// exist, enabled, with memberOf; leavers are locked with no groups. Failed grants
// must be 0. Everything it started is stopped and dropped at the end, and a watchdog
// bounds the whole run.
import { dropDatabase } from '../db/client.js';
import { benchResources, startBenchRuntime, cleanupStep, guardBench, postHrEvent, sleep, waitForWorker, writeBenchConfig, type WebhookAnswer } from './support.js';
import { freePort } from '../scripts/free-port.js';
import { deleteKeysWithPrefix } from '../services/redis.js';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DefaultLogger, Runtime as TemporalRuntime } from '@temporalio/worker';
import { Client as LdapClient } from 'ldapts';
import postgres from 'postgres';
import { Webhook } from 'standardwebhooks';
import { PERMANENT_LOCK } from '../activities/connectors/ldap.js';
import { startSlapd, type SlapdServer } from '../scripts/slapd.js';
import { startTemporalDevServer, type TemporalDevServer } from '../scripts/temporal-server.js';
import { canonicalEmployeeId } from '../domain/employee-id.js';
import type { Runtime } from '../worker/runtime.js';

const { values: args } = parseArgs({
  options: {
    rate: { type: 'string', default: '20' },
    duration: { type: 'string', default: '30' },
    wait: { type: 'string', default: '120' },
    sample: { type: 'string', default: '3' },
    /** Print the audit timeline of one joiner and leaver (the middle one), relative to its 202. */
    trace: { type: 'boolean', default: false },
    /** Skip the last part: importing the 1000-record HR extract (bench/import.ts, its own engine). */
    'no-import': { type: 'boolean', default: false },
  },
});
const { runId, databaseName, databaseUrl, redisUrl, redisPrefix, taskQueue } = benchResources('lc');
const rate = Number(args.rate);
const duration = Number(args.duration);
const waitSeconds = Number(args.wait);
const sampleSize = Math.max(1, Number(args.sample));
for (const [name, value] of Object.entries({ rate, duration, wait: waitSeconds })) {
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number`);
}
const people = Math.max(1, Math.round(rate * duration));

const secret = `whsec_${randomBytes(32).toString('base64')}`;
// Canonical (upper case), as the webhook stores it, so the progress queries find them.
const employeePrefix = canonicalEmployeeId(`LC${runId}-`);
const employeeId = (i: number) => `${employeePrefix}${String(i).padStart(5, '0')}`;
/** Engineering employee: directory-account, all-staff, employees, engineering. */
const EXPECTED_GRANTS = 4;
const EXPECTED_GROUPS = ['all-staff', 'employees', 'engineering'];

// ---- what this run starts, and stops again --------------------------------------------

let temporal: TemporalDevServer | undefined;
let slapd: SlapdServer | undefined;
let runtime: Runtime | undefined;
let measure: postgres.Sql | undefined;
let tmp: string | undefined;
let databaseCreated = false;

let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  return (cleaning ??= (async () => {
    if (runtime) await cleanupStep('stopping the runtime', () => runtime!.stop());
    if (measure) await cleanupStep('closing the measuring connection', () => measure!.end({ timeout: 5 }));
    if (slapd) await cleanupStep('stopping slapd', () => slapd!.stop());
    if (temporal) await cleanupStep('stopping Temporal', () => temporal!.stop());
    if (databaseCreated) await cleanupStep(`dropping ${databaseName}`, () => dropDatabase(databaseUrl));
    await cleanupStep(`deleting Redis keys ${redisPrefix}:*`, () => deleteKeysWithPrefix(redisUrl, `${redisPrefix}:`));
    if (tmp) await cleanupStep(`removing ${tmp}`, async () => rmSync(tmp!, { recursive: true, force: true }));
  })());
}

// The whole run is bounded: start-up (Temporal, worker bundling), two send phases, two
// waits, checks and shutdown. Past that, clean up what we can and leave.
const budgetMs = (2 * duration + 2 * waitSeconds + 300) * 1000;
guardBench(budgetMs, cleanup);

// ---- helpers ---------------------------------------------------------------------------

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] as number;
}

function summary(values: number[]): string {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return 'n/a (no samples)';
  const f = (ms: number) => `${Math.round(ms)} ms`;
  return `p50 ${f(percentile(sorted, 50))}  p95 ${f(percentile(sorted, 95))}  p99 ${f(percentile(sorted, 99))}  max ${f(sorted.at(-1) as number)}  (n=${sorted.length})`;
}

interface Sent extends WebhookAnswer {
  index: number;
  eventId: string;
  employeeId: string;
}

async function postEvent(api: string, webhook: Webhook, index: number, eventId: string, body: object): Promise<Sent> {
  const answer = await postHrEvent(api, webhook, eventId, body);
  return { index, eventId, employeeId: (body as { employeeId: string }).employeeId, ...answer };
}

/** Fires `count` requests on a fixed schedule (no drift, no waiting for answers). */
async function atSteadyRate(count: number, perSecond: number, fire: (i: number) => Promise<Sent>): Promise<{ sent: Sent[]; sendSeconds: number }> {
  const start = performance.now();
  const inFlight: Array<Promise<Sent>> = [];
  for (let i = 0; i < count; i++) {
    const wait = start + (i * 1000) / perSecond - performance.now();
    if (wait > 0) await sleep(wait);
    inFlight.push(fire(i));
  }
  const sendSeconds = (performance.now() - start) / 1000;
  return { sent: await Promise.all(inFlight), sendSeconds };
}

interface GrantProgress {
  employeeId: string;
  total: number;
  done: number;
  failed: number;
  last: Date | null;
}

async function grantProgress(sql: postgres.Sql, phase: 'joiner' | 'leaver'): Promise<Map<string, GrantProgress>> {
  // A joiner's grant is done when active and read back; a leaver's when revoked.
  const [status, stamp] = phase === 'joiner' ? ['active', 'verified_at'] : ['revoked', 'revoked_at'];
  const rows = await sql<GrantProgress[]>`
    select i.employee_id as "employeeId", count(g.id)::int as total,
           (count(*) filter (where g.status = ${status} and g.${sql(stamp)} is not null))::int as done,
           (count(*) filter (where g.status = 'failed'))::int as failed,
           max(g.${sql(stamp)}) as last
    from identities i left join grants g on g.identity_id = i.id
    where i.employee_id like ${`${employeePrefix}%`}
    group by i.employee_id`;
  return new Map(rows.map((r) => [r.employeeId, r]));
}

/** Waits until every accepted person is complete (or has failed grants, which end their wait). */
async function waitForGrants(sql: postgres.Sql, phase: 'joiner' | 'leaver', expected: string[], timeoutMs: number): Promise<{ progress: Map<string, GrantProgress>; waitedMs: number; complete: boolean }> {
  const started = Date.now();
  let lastReport = started;
  for (;;) {
    const progress = await grantProgress(sql, phase);
    const finished = expected.filter((id) => {
      const p = progress.get(id);
      return p !== undefined && p.total === EXPECTED_GRANTS && p.done + p.failed === EXPECTED_GRANTS;
    }).length;
    if (finished === expected.length) return { progress, waitedMs: Date.now() - started, complete: true };
    if (Date.now() - started > timeoutMs) return { progress, waitedMs: Date.now() - started, complete: false };
    if (Date.now() - lastReport >= 10_000) {
      lastReport = Date.now();
      console.log(`  ... ${finished}/${expected.length} people ${phase === 'joiner' ? 'verified' : 'revoked'} after ${((Date.now() - started) / 1000).toFixed(0)} s of waiting`);
    }
    await sleep(500);
  }
}

async function hrEventTimes(sql: postgres.Sql, ids: string[]) {
  const rows = await sql<Array<{ id: string; status: string; receivedAt: Date; dispatchedAt: Date | null; appliedAt: Date | null }>>`
    select id, status, received_at as "receivedAt", dispatched_at as "dispatchedAt", applied_at as "appliedAt"
    from hr_events where id = any(${ids})`;
  return new Map(rows.map((r) => [r.id, r]));
}

interface LdapAccount {
  uid: string;
  memberOf: string[];
  locked: boolean;
}

async function readDirectory(server: SlapdServer): Promise<Map<string, LdapAccount>> {
  const client = new LdapClient({ url: server.url, timeout: 30_000, connectTimeout: 5_000 });
  try {
    await client.bind(server.bindDN, server.bindPassword);
    const { searchEntries } = await client.search(server.usersDN, {
      scope: 'one',
      filter: `(uid=${employeePrefix}*)`,
      attributes: ['uid', 'memberOf', 'pwdAccountLockedTime'],
      paged: { pageSize: 500 },
    });
    const list = (v: unknown) => (v === undefined ? [] : Array.isArray(v) ? v.map(String) : [String(v)]);
    return new Map(
      searchEntries.map((e) => {
        const uid = list(e.uid)[0] ?? '';
        return [uid, { uid, memberOf: list(e.memberOf), locked: list(e.pwdAccountLockedTime).includes(PERMANENT_LOCK) }];
      }),
    );
  } finally {
    await client.unbind().catch(() => {});
  }
}

const groupName = (dn: string) => /^cn=([^,]+)/i.exec(dn)?.[1] ?? dn;

async function failedGrants(sql: postgres.Sql) {
  return sql<Array<{ employeeId: string; entitlementId: string; lastError: string | null }>>`
    select i.employee_id as "employeeId", g.entitlement_id as "entitlementId", g.last_error as "lastError"
    from grants g join identities i on i.id = g.identity_id
    where g.status = 'failed' order by i.employee_id limit 20`;
}

async function eventStatusCounts(sql: postgres.Sql, type: string): Promise<string> {
  const rows = await sql<Array<{ status: string; n: number }>>`select status, count(*)::int as n from hr_events where type = ${type} group by status order by status`;
  return rows.map((r) => `${r.status} ${r.n}`).join(', ') || 'none';
}

interface PhaseReport {
  ok: boolean;
}

/** Prints one phase's figures from the 202s and the database's timestamps. */
async function reportPhase(
  sql: postgres.Sql,
  phase: 'joiner' | 'leaver',
  sent: Sent[],
  sendSeconds: number,
  wait: { progress: Map<string, GrantProgress>; waitedMs: number; complete: boolean },
): Promise<PhaseReport> {
  const accepted = sent.filter((s) => s.status === 202);
  const rejected = sent.filter((s) => s.status !== 202);
  const events = await hrEventTimes(
    sql,
    accepted.map((s) => s.eventId),
  );
  const toAccess: number[] = [];
  const fromReceived: number[] = [];
  const dispatchLag: number[] = [];
  const ackLatency = sent.filter((s) => s.status !== 0).map((s) => s.ackAt - s.sentAt);
  let complete = 0;
  let lastDone = 0;
  let failed = 0;
  for (const s of accepted) {
    const p = wait.progress.get(s.employeeId);
    failed += p?.failed ?? 0;
    if (!p || p.total !== EXPECTED_GRANTS || p.done !== EXPECTED_GRANTS || !p.last) continue;
    complete += 1;
    const done = p.last.getTime();
    lastDone = Math.max(lastDone, done);
    toAccess.push(done - s.ackAt);
    const ev = events.get(s.eventId);
    if (ev) {
      fromReceived.push(done - ev.receivedAt.getTime());
      if (ev.dispatchedAt) dispatchLag.push(ev.dispatchedAt.getTime() - ev.receivedAt.getTime());
    }
  }
  const firstSent = Math.min(...sent.map((s) => s.sentAt));
  const lastAck = Math.max(...accepted.map((s) => s.ackAt));
  const what = phase === 'joiner' ? 'joiner -> verified access' : 'leaver -> revoked access';
  const held = accepted.filter((s) => s.eventStatus === 'held').length;
  const byStatus: Record<string, number> = {};
  for (const s of rejected) {
    const key = s.status ? `${s.status} ${s.error ?? ''}`.trim() : (s.error ?? 'error');
    byStatus[key] = (byStatus[key] ?? 0) + 1;
  }
  console.log(
    [
      `${phase === 'joiner' ? 'Phase 1: joiners (hire)' : 'Phase 2: leavers (terminate, effective now)'}`,
      `  webhooks            ${sent.length} sent in ${sendSeconds.toFixed(1)} s (offered ${rate}/s), ${accepted.length} x 202${rejected.length ? `, ${rejected.length} not: ${Object.entries(byStatus).map(([k, n]) => `${k} x${n}`).join(', ')}` : ''}${held ? `, ${held} stored HELD by the brake` : ''}`,
      `  ingest throughput   ${(accepted.length / ((lastAck - firstSent) / 1000)).toFixed(1)} accepted/s`,
      `  202 latency         ${summary(ackLatency)}`,
      `  completed           ${complete}/${accepted.length} people (${complete * EXPECTED_GRANTS} grants) ${wait.complete ? `within ${(wait.waitedMs / 1000).toFixed(1)} s after the last send` : `NOT all within the ${waitSeconds} s wait`}`,
      `  e2e throughput      ${complete ? (complete / ((lastDone - firstSent) / 1000)).toFixed(1) : '0'} people/s (${complete ? ((complete * EXPECTED_GRANTS) / ((lastDone - firstSent) / 1000)).toFixed(1) : '0'} grants/s), first send -> last ${phase === 'joiner' ? 'verified_at' : 'revoked_at'} ${complete ? ((lastDone - firstSent) / 1000).toFixed(1) : '-'} s`,
      `  ${what.padEnd(26)}${summary(toAccess)}   [max(${phase === 'joiner' ? 'verified_at' : 'revoked_at'}) - 202]`,
      `  ${'  same from received_at'.padEnd(26)}${summary(fromReceived)}   [max(...) - hr_events.received_at]`,
      `  ${'  of which inbox->signal'.padEnd(26)}${summary(dispatchLag)}   [dispatched_at - received_at]`,
      `  failed grants       ${failed}${failed ? '  <-- must be 0' : ''}`,
      `  hr_events (${phase === 'joiner' ? 'hire' : 'terminate'})    ${await eventStatusCounts(sql, phase === 'joiner' ? 'hire' : 'terminate')}`,
    ].join('\n'),
  );
  if (failed) {
    for (const f of await failedGrants(sql)) console.log(`    failed: ${f.employeeId} ${f.entitlementId}: ${f.lastError ?? ''}`);
  }
  return { ok: rejected.length === 0 && failed === 0 && wait.complete && complete === accepted.length };
}

/** People whose grants the database now calls all verified (joiner) or all revoked (leaver). */
async function completedPeople(sql: postgres.Sql, phase: 'joiner' | 'leaver', among: string[]): Promise<string[]> {
  const progress = await grantProgress(sql, phase);
  return among.filter((id) => {
    const p = progress.get(id);
    return p !== undefined && p.total === EXPECTED_GRANTS && p.done === EXPECTED_GRANTS;
  });
}

/**
 * Checks in the directory every person the database calls done (its verified_at or
 * revoked_at must be true of LDAP too) and prints a few in full. People still in progress
 * when the wait ran out are counted, not judged.
 */
async function checkDirectory(sql: postgres.Sql, server: SlapdServer, phase: 'joiner' | 'leaver', among: string[]): Promise<boolean> {
  const ids = await completedPeople(sql, phase, among);
  const accounts = await readDirectory(server);
  const bad: string[] = [];
  for (const id of ids) {
    const a = accounts.get(id);
    const groups = (a?.memberOf ?? []).map(groupName).sort();
    if (!a) bad.push(`${id}: no account`);
    else if (phase === 'joiner' && (a.locked || EXPECTED_GROUPS.some((g) => !groups.includes(g)))) bad.push(`${id}: locked=${a.locked} memberOf=[${groups.join(', ')}]`);
    else if (phase === 'leaver' && (!a.locked || groups.length > 0)) bad.push(`${id}: locked=${a.locked} memberOf=[${groups.join(', ')}]`);
  }
  const step = Math.max(1, Math.floor(ids.length / sampleSize));
  const sample = ids.filter((_, i) => i % step === 0).slice(0, sampleSize);
  const pending = among.length - ids.length;
  console.log(
    `  LDAP (ldapts)       ${ids.length - bad.length}/${ids.length} people the database calls done ${phase === 'joiner' ? 'exist, enabled, memberOf all 3 groups' : 'exist, locked (pwdAccountLockedTime), no memberOf'}${pending ? `; ${pending} still in progress, not checked` : ''}`,
  );
  for (const id of sample) {
    const a = accounts.get(id);
    console.log(`    uid=${id},${server.usersDN}: ${a ? `${a.locked ? `locked (pwdAccountLockedTime ${PERMANENT_LOCK})` : 'enabled'}, memberOf [${a.memberOf.map(groupName).sort().join(', ')}]` : 'MISSING'}`);
  }
  for (const line of bad.slice(0, 10)) console.log(`    wrong: ${line}`);
  return bad.length === 0;
}

/** One person's audit trail for one event, in ms after its 202: where the time goes. */
async function tracePerson(sql: postgres.Sql, sent: Sent): Promise<void> {
  const rows = await sql<Array<{ at: Date; action: string; subjectType: string }>>`
    with person as (select id from identities where employee_id = ${sent.employeeId}),
         subjects as (
           select id::text as id from person
           union all select g.id::text from grants g where g.identity_id = (select id from person)
           union all select r.id::text from access_requests r where r.identity_id = (select id from person)
           union all select ${sent.eventId}::text)
    select at, action, subject_type as "subjectType" from audit_log
    where subject_id in (select id from subjects) and at >= ${new Date(sent.sentAt - 1000)}
    order by seq`;
  console.log(`  trace ${sent.employeeId} (${sent.eventId}), ms after its 202:`);
  for (const r of rows) console.log(`    ${String(new Date(r.at).getTime() - sent.ackAt).padStart(7)}  ${r.action}`);
}

// ---- the run ---------------------------------------------------------------------------

async function main(): Promise<boolean> {
  const t0 = Date.now();
  // The worker's start-up chatter (webpack, state changes) would bury the figures.
  TemporalRuntime.install({ logger: new DefaultLogger('WARN') });
  tmp = mkdtempSync(join(tmpdir(), 'jml-bench-lc-'));
  [temporal, slapd] = await Promise.all([startTemporalDevServer({ forTests: true }), startSlapd({ dir: join(tmp, 'slapd') })]);
  const port = await freePort();
  const configFile = join(tmp, 'jml.config.yaml');
  writeBenchConfig(configFile, slapd);
  databaseCreated = true; // startRuntime creates it; drop it even if start-up fails half-way
  let api: string;
  ({ runtime, api } = await startBenchRuntime({ databaseUrl: databaseUrl, configFile: configFile, webhookSecret: secret, temporalAddress: temporal.address, taskQueue: taskQueue, redisPrefix: redisPrefix, port, tmp: tmp }));
  // Its own client: drizzle (createDb) switches a client's timestamp parsing to strings.
  measure = postgres(databaseUrl, { max: 2, onnotice: () => {} });
  const sql = measure;
  const workerMs = await waitForWorker(temporal.address, taskQueue, 180_000);
  console.log(
    `bench: ${people} people at ${rate}/s for ${duration} s; Temporal ${temporal.address}, slapd ${slapd.url}, API ${api}, database ${databaseName}, redis prefix ${redisPrefix}, task queue ${taskQueue}; ready in ${((Date.now() - t0) / 1000).toFixed(1)} s (worker polling after ${(workerMs / 1000).toFixed(1)} s)`,
  );

  const webhook = new Webhook(secret);
  const ids = Array.from({ length: people }, (_, i) => employeeId(i));

  // Phase 1: joiners.
  const hires = await atSteadyRate(people, rate, (i) =>
    postEvent(api, webhook, i, `lc-${runId}-hire-${i}`, {
      type: 'hire',
      employeeId: employeeId(i),
      attributes: {
        givenName: 'Bench',
        familyName: `Joiner${i}`,
        email: `bench.${runId}.${i}@example.com`,
        department: 'Engineering',
        title: 'Engineer',
        location: 'London',
        employmentType: 'employee',
        managerId: 'E0001',
      },
    }),
  );
  const hired = hires.sent.filter((s) => s.status === 202).map((s) => s.employeeId);
  const joinWait = await waitForGrants(sql, 'joiner', hired, waitSeconds * 1000);
  const joiners = await reportPhase(sql, 'joiner', hires.sent, hires.sendSeconds, joinWait);
  const joinLdap = await checkDirectory(sql, slapd, 'joiner', hired);
  const middle = (list: Sent[]) => list.filter((x) => x.status === 202)[Math.floor(list.length / 2)];
  if (args.trace && middle(hires.sent)) await tracePerson(sql, middle(hires.sent) as Sent);

  // Phase 2: leavers, the same people, at the same rate. Only those whose joiner finished:
  // terminating someone still being provisioned would time the rest of the joiner too.
  const leaving = await completedPeople(sql, 'joiner', ids);
  if (leaving.length < ids.length) {
    console.log(`  note: ${ids.length - leaving.length} of ${ids.length} joiners were not finished; phase 2 terminates the ${leaving.length} who were (the rest keep loading the engine meanwhile)`);
  }
  if (leaving.length === 0) throw new Error('no joiner finished; nothing to terminate');
  const terms = await atSteadyRate(leaving.length, rate, (i) =>
    postEvent(api, webhook, i, `lc-${runId}-term-${i}`, { type: 'terminate', employeeId: leaving[i] as string, effectiveAt: new Date().toISOString(), attributes: {} }),
  );
  const terminated = terms.sent.filter((s) => s.status === 202).map((s) => s.employeeId);
  const leaveWait = await waitForGrants(sql, 'leaver', terminated, waitSeconds * 1000);
  console.log('');
  const leavers = await reportPhase(sql, 'leaver', terms.sent, terms.sendSeconds, leaveWait);
  const leaveLdap = await checkDirectory(sql, slapd, 'leaver', terminated);
  if (args.trace && middle(terms.sent)) await tracePerson(sql, middle(terms.sent) as Sent);

  const [alerts] = await sql<Array<{ n: number }>>`select count(*)::int as n from alerts where kind in ('grant_failed', 'revoke_failed', 'brake_held')`;
  console.log(`\nalerts (grant/revoke failed, brake): ${alerts?.n ?? 0}`);
  const ok = joiners.ok && leavers.ok && joinLdap && leaveLdap && (alerts?.n ?? 0) === 0;
  console.log(`result: ${ok ? 'OK' : 'PROBLEMS (see above)'}; total run ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  return ok;
}

let ok = false;
try {
  ok = await main();
} catch (err) {
  console.error(`bench failed: ${(err as Error).stack ?? String(err)}`);
} finally {
  const started = Date.now();
  await cleanup();
  console.log(`cleaned up in ${((Date.now() - started) / 1000).toFixed(1)} s (runtime, slapd, Temporal, database ${databaseName}, redis ${redisPrefix}:*, ${tmp ?? 'no temp dir'})`);
}
// The import figure of the issue: bench/import.ts in its own process and engine, after this
// one is gone, so the two never share the machine.
if (!args['no-import']) {
  console.log('\n--- importing csv-with-1000-records.csv (bench/import.ts) ---');
  const { spawnSync } = await import('node:child_process');
  const child = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./import.ts', import.meta.url))], { stdio: 'inherit' });
  if (child.status !== 0) ok = false;
}
// Native Temporal handles and pools may linger; the bench is done, so end the process.
process.exit(ok ? 0 : 1);
