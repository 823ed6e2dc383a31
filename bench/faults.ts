// Faults injected into a RUNNING engine, one after another, under a steady stream of hires
// and terminations:
//   npx tsx bench/faults.ts [--rate 5] [--fault-seconds 5] [--wait 90] [--only engine,postgres,redis,slapd,temporal]
//                           [--engine-log engine.log]
// The bench owns every server it breaks: its own Postgres cluster (initdb in a temporary
// folder, never the machine's), its own redis-server, its own slapd and Temporal dev server
// (SQLite file in the temporary folder), and the engine (API, Temporal worker, ingestion
// worker) in a child process, bench/faults-engine.ts. Per fault:
//   1. signed webhooks at --rate per second, two hires of new people to one termination of
//      a person whose hire was accepted; an answer other than 202 (a 503 while Postgres is
//      down, a refused connection while the engine is) is sent again, same webhook-id, after
//      its Retry-After (at most 5 s) or 1 s, as an HR system retries, until 60 s after the
//      stream ends;
//   2. after 2 s the fault: engine SIGKILLed | Postgres fast shutdown | Redis stopped (no
//      persistence, so it comes back empty) | slapd stopped | Temporal stopped; --fault-seconds
//      later the same thing started again (same port, same data); the stream goes on 3 s more;
//   3. waits (at most --wait s) until every accepted event is applied or ignored and no grant
//      of these people is pending, provisioning or revoking; then reads OpenLDAP itself.
// It prints per fault: events sent, accepted at once (202), accepted on a resend, never
// accepted, applied (hr_events applied or ignored), lost (accepted, not applied within the
// wait), duplicated (an event applied twice, two identities for one employee id, two grants
// of one entitlement to one person, two directory entries for one uid), wrong access (in
// OpenLDAP: a hired person not enabled or not in exactly their birthright groups, read from
// the groups' own `member` values; a terminated person enabled or in any group; anyone whose
// hire was never accepted holding anything), and the time from the restart to the component
// being up, to the first event applied after it, and to the last event sent before it is up
// applied (the backlog drained). An engine process that dies on its own is reported and
// started again, as a process manager would. Finally the audit chain is verified.
// Exit status 1 when any fault lost an event, applied one twice or left wrong access, or the
// audit chain is broken; 2 when the bench itself failed.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Client as LdapClient } from 'ldapts';
import postgres from 'postgres';
import { Webhook } from 'standardwebhooks';
import { escapeFilterValue, parseDn, PERMANENT_LOCK } from '../activities/connectors/ldap.js';
import { verifyAuditChain } from '../db/audit.js';
import { createDb } from '../db/client.js';
import { canonicalEmployeeId } from '../domain/employee-id.js';
import { freePort } from '../scripts/free-port.js';
import { startSlapd, type SlapdServer } from '../scripts/slapd.js';
import { startTemporalDevServer, type TemporalDevServer } from '../scripts/temporal-server.js';
import { startPostgresCluster, type PostgresCluster } from '../scripts/postgres-cluster.js';
import { logTail, startEngineProcess, startOwnRedis, type EngineProcess, type OwnRedis, type Restartable } from './faults-servers.js';
import { benchResources, cleanupStep, runBench, guardBench, postHrEvent, sleep, waitForWorker, writeBenchConfig, type WebhookAnswer } from './support.js';

const FAULTS = ['engine', 'postgres', 'redis', 'slapd', 'temporal'] as const;
type FaultName = (typeof FAULTS)[number];

const { values: args } = parseArgs({
  options: {
    rate: { type: 'string', default: '5' },
    'fault-seconds': { type: 'string', default: '5' },
    /** Seconds to wait, after the stream ends, for every accepted event to be applied. */
    wait: { type: 'string', default: '90' },
    /** Faults to inject (comma-separated or repeated); all of them by default. */
    only: { type: 'string', multiple: true },
    /** Where the engine's own log goes (kept); by default a file in the temporary folder. */
    'engine-log': { type: 'string' },
  },
});
const rate = Number(args.rate);
const faultSeconds = Number(args['fault-seconds']);
const waitSeconds = Number(args.wait);
for (const [name, value] of Object.entries({ rate, 'fault-seconds': faultSeconds, wait: waitSeconds })) {
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number`);
}
const selected = (args.only ?? [...FAULTS]).flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
for (const name of selected) if (!(FAULTS as readonly string[]).includes(name)) throw new Error(`--only: unknown fault "${name}" (one of ${FAULTS.join(', ')})`);
const faultsToRun = FAULTS.filter((name) => selected.includes(name));

/** Traffic before the fault, and after the restart, so both sides of it are measured. */
const BEFORE_FAULT_MS = 2_000;
const AFTER_RESTART_MS = 3_000;
/** How long the bench waits for an answer to one webhook, as an HR system would. */
const ANSWER_TIMEOUT_MS = 30_000;
/** How long after the stream ends an event without a 202 is still sent again. */
const RESEND_WINDOW_MS = 60_000;
const EXPECTED_GROUPS = ['all-staff', 'employees', 'engineering'];
const SETTLED_EVENT = ['applied', 'ignored'];
/** A grant on its way somewhere; none may be left when the fault's people are judged. */
const MOVING_GRANT = ['pending', 'provisioning', 'revoking'];

const secret = `whsec_${randomBytes(32).toString('base64')}`;
const webhook = new Webhook(secret);

// ---- what this run starts, and stops again --------------------------------------------

let tmp: string | undefined;
let pg: PostgresCluster | undefined;
let redis: OwnRedis | undefined;
let temporal: TemporalDevServer | undefined;
let slapd: SlapdServer | undefined;
let engine: EngineKeeper | undefined;

let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  return (cleaning ??= (async () => {
    if (engine) await cleanupStep('stopping the engine', () => engine!.close());
    if (slapd) await cleanupStep('stopping slapd', () => slapd!.stop());
    if (temporal) await cleanupStep('stopping Temporal', () => temporal!.stop());
    if (redis) await cleanupStep('stopping redis-server', () => redis!.stop());
    if (pg) await cleanupStep('stopping and removing the Postgres cluster', () => pg!.remove());
    if (tmp) await cleanupStep(`removing ${tmp}`, async () => rmSync(tmp!, { recursive: true, force: true }));
  })());
}

// Start-up (Postgres, Temporal, worker bundling), then per fault: the stream, the outage,
// the restart, resends and the wait. Past that, clean up what we can and leave.
const budgetMs = (240 + faultsToRun.length * (BEFORE_FAULT_MS / 1000 + faultSeconds + 120 + AFTER_RESTART_MS / 1000 + RESEND_WINDOW_MS / 1000 + waitSeconds)) * 1000;
guardBench(budgetMs, cleanup);

// ---- the engine, kept running ----------------------------------------------------------

interface EngineCrash {
  at: number;
  how: string;
  restartedAt?: number;
  log: string;
}

interface EngineKeeper extends Restartable {
  /** Deaths the bench did not cause, each with its restart. */
  crashes: EngineCrash[];
  running(): boolean;
  close(): Promise<void>;
}

/**
 * Runs the engine process. `stop` is the fault (SIGKILL). An engine that dies on its own is
 * recorded and started again with backoff (1 s, doubling to 10 s), as systemd or Kubernetes
 * would, so the remaining faults still meet a running engine.
 */
function keepEngine(env: NodeJS.ProcessEnv, logFile: string): EngineKeeper {
  let current: EngineProcess | undefined;
  let closing = false;
  const crashes: EngineCrash[] = [];
  const launch = async () => {
    const proc = await startEngineProcess(env, logFile);
    if (closing) return void (await proc.stop());
    current = proc;
    void proc.exited.then(async (how) => {
      if (current !== proc || closing) return; // killed or stopped on purpose
      current = undefined;
      const crash: EngineCrash = { at: Date.now(), how, log: logTail(logFile, 4) };
      crashes.push(crash);
      console.log(`  ! the engine process died on its own (${how}); starting it again`);
      for (let delay = 1_000; !closing; delay = Math.min(delay * 2, 10_000)) {
        await sleep(delay);
        if (closing) return;
        try {
          await launch();
          crash.restartedAt = Date.now();
          return;
        } catch {
          // Still cannot start (Postgres down, say): try again.
        }
      }
    });
  };
  return {
    crashes,
    running: () => current !== undefined,
    start: launch,
    async stop() {
      const proc = current;
      current = undefined;
      await proc?.kill();
    },
    async close() {
      closing = true;
      const proc = current;
      current = undefined;
      await proc?.stop();
    },
  };
}

// ---- the stream of HR events -------------------------------------------------------------

interface StreamEvent {
  id: string;
  type: 'hire' | 'terminate';
  employeeId: string;
  body: object;
  firstSentAt: number;
  first?: WebhookAnswer;
  last?: WebhookAnswer;
  attempts: number;
  /** When the 202 came, on the first send or a later one. */
  acceptedAt?: number;
}

interface Stream {
  events: StreamEvent[];
  /** Stops sending new events and waits for the resends of the ones sent (RESEND_WINDOW_MS at most). */
  stop(): Promise<void>;
}

/** No answer, or one that says try later: an HR system sends it again. */
const retryable = (status: number) => status === 0 || status === 408 || status === 429 || status >= 500;

function startStream(api: string, fault: FaultName, prefix: string): Stream {
  const events: StreamEvent[] = [];
  const deliveries: Array<Promise<void>> = [];
  const hiredNotTerminated: string[] = [];
  let stopped = false;
  let giveUpAt = Number.POSITIVE_INFINITY;
  let people = 0;

  const deliver = async (event: StreamEvent): Promise<void> => {
    for (;;) {
      const answer = await postHrEvent(api, webhook, event.id, event.body, ANSWER_TIMEOUT_MS);
      event.attempts += 1;
      event.first ??= answer;
      event.last = answer;
      if (answer.status === 202) {
        event.acceptedAt = answer.ackAt;
        if (event.type === 'hire') hiredNotTerminated.push(event.employeeId);
        return;
      }
      if (!retryable(answer.status) || Date.now() >= giveUpAt) return;
      await sleep(answer.retryAfter !== undefined ? Math.min(5_000, Math.max(500, answer.retryAfter * 1000)) : 1_000);
    }
  };
  const send = (type: StreamEvent['type'], employeeId: string, body: object) => {
    const event: StreamEvent = { id: `flt-${prefix}${events.length}`, type, employeeId, body, firstSentAt: Date.now(), attempts: 0 };
    events.push(event);
    deliveries.push(deliver(event));
  };
  const hire = () => {
    const i = people++;
    const employeeId = `${prefix}${String(i).padStart(4, '0')}`;
    send('hire', employeeId, {
      type: 'hire',
      employeeId,
      attributes: {
        givenName: 'Fault',
        familyName: `${fault}${i}`,
        email: `${employeeId.toLowerCase()}@example.com`,
        department: 'Engineering',
        title: 'Engineer',
        location: 'London',
        employmentType: 'employee',
        managerId: 'E0001',
      },
    });
  };
  const terminate = (employeeId: string) => send('terminate', employeeId, { type: 'terminate', employeeId, effectiveAt: new Date().toISOString(), attributes: {} });

  // A fixed schedule (no drift, no waiting for answers): two hires, then the termination of
  // the earliest person whose hire was accepted, if there is one yet.
  const loop = (async () => {
    const start = performance.now();
    for (let i = 0; !stopped; i++) {
      const wait = start + (i * 1000) / rate - performance.now();
      if (wait > 0) await sleep(wait);
      if (stopped) return;
      const leaver = i % 3 === 2 ? hiredNotTerminated.shift() : undefined;
      if (leaver) terminate(leaver);
      else hire();
    }
  })();
  return {
    events,
    async stop() {
      stopped = true;
      await loop;
      giveUpAt = Date.now() + RESEND_WINDOW_MS;
      await Promise.all(deliveries);
    },
  };
}

// ---- what the database says ------------------------------------------------------------

const like = (prefix: string) => `${prefix}%`;

/** Waits until every accepted event is applied or ignored and no grant of these people is moving. */
async function waitToSettle(sql: postgres.Sql, prefix: string, ids: string[], timeoutMs: number): Promise<{ settled: boolean; waitedMs: number }> {
  const started = Date.now();
  let lastReport = started;
  for (;;) {
    const [events] = await sql<Array<{ done: number }>>`select count(*)::int as done from hr_events where id = any(${ids}) and status = any(${SETTLED_EVENT})`;
    const [grants] = await sql<Array<{ moving: number }>>`
      select count(*)::int as moving from grants g join identities i on i.id = g.identity_id
      where i.employee_id like ${like(prefix)} and g.status = any(${MOVING_GRANT})`;
    const done = events?.done ?? 0;
    const moving = grants?.moving ?? 0;
    if (done === ids.length && moving === 0) return { settled: true, waitedMs: Date.now() - started };
    if (Date.now() - started > timeoutMs) return { settled: false, waitedMs: Date.now() - started };
    if (Date.now() - lastReport >= 10_000) {
      lastReport = Date.now();
      console.log(`  ... ${done}/${ids.length} accepted events applied, ${moving} grants moving, after ${((Date.now() - started) / 1000).toFixed(0)} s`);
    }
    await sleep(500);
  }
}

interface Duplicates {
  /** Events with more than one applied/ignored audit row. */
  events: string[];
  /** Employee ids with more than one identity (without regard to case). */
  identities: string[];
  /** person/entitlement with more than one grant (nobody here is hired twice). */
  grants: string[];
}

async function findDuplicates(sql: postgres.Sql, prefix: string, ids: string[]): Promise<Duplicates> {
  const events = await sql<Array<{ id: string; n: number }>>`
    select subject_id as id, count(*)::int as n from audit_log
    where subject_type = 'hr_event' and subject_id = any(${ids}) and action in ('hr_event.applied', 'hr_event.ignored')
    group by subject_id having count(*) > 1`;
  const identities = await sql<Array<{ id: string; n: number }>>`
    select lower(employee_id) as id, count(*)::int as n from identities
    where lower(employee_id) like lower(${like(prefix)}) group by lower(employee_id) having count(*) > 1`;
  const grants = await sql<Array<{ id: string; n: number }>>`
    select i.employee_id || '/' || g.entitlement_id as id, count(*)::int as n
    from grants g join identities i on i.id = g.identity_id
    where i.employee_id like ${like(prefix)} group by i.employee_id, g.entitlement_id having count(*) > 1`;
  const list = (rows: Array<{ id: string; n: number }>) => rows.map((r) => `${r.id} x${r.n}`);
  return { events: list(events), identities: list(identities), grants: list(grants) };
}

// ---- what the directory says -----------------------------------------------------------

interface DirectoryPerson {
  entries: Array<{ dn: string; locked: boolean }>;
  groups: Set<string>;
}

/**
 * Everyone under baseDN whose uid starts with `prefix`, and the groups whose own `member`
 * values name them (memberOf is the overlay's opinion; the member values are what counts).
 */
async function readDirectory(server: SlapdServer, prefix: string): Promise<Map<string, DirectoryPerson>> {
  const client = new LdapClient({ url: server.url, timeout: 30_000, connectTimeout: 5_000 });
  const people = new Map<string, DirectoryPerson>();
  const person = (uid: string) => {
    const id = canonicalEmployeeId(uid);
    let p = people.get(id);
    if (!p) people.set(id, (p = { entries: [], groups: new Set() }));
    return p;
  };
  const list = (v: unknown) => (v === undefined ? [] : Array.isArray(v) ? v.map(String) : [String(v)]);
  try {
    await client.bind(server.bindDN, server.bindPassword);
    const users = await client.search(server.baseDN, {
      scope: 'sub',
      filter: `(uid=${escapeFilterValue(prefix)}*)`,
      attributes: ['uid', 'pwdAccountLockedTime'],
      paged: { pageSize: 500 },
    });
    for (const e of users.searchEntries) {
      for (const uid of list(e.uid)) person(uid).entries.push({ dn: e.dn, locked: list(e.pwdAccountLockedTime).includes(PERMANENT_LOCK) });
    }
    const groups = await client.search(server.groupsDN, { scope: 'one', filter: '(objectClass=groupOfNames)', attributes: ['cn', 'member'], paged: { pageSize: 500 } });
    for (const g of groups.searchEntries) {
      const cn = list(g.cn)[0] ?? g.dn;
      for (const member of list(g.member)) {
        const [type, value] = parseDn(member)[0]?.[0] ?? [];
        if (type?.toLowerCase() === 'uid' && value && canonicalEmployeeId(value).startsWith(prefix)) person(value).groups.add(cn);
      }
    }
  } finally {
    await client.unbind().catch(() => {});
  }
  return people;
}

// ---- one fault ---------------------------------------------------------------------------

interface Fault extends Restartable {
  name: FaultName;
  what: string;
}

interface FaultResult {
  name: FaultName;
  sent: number;
  acceptedAtOnce: number;
  acceptedOnResend: number;
  neverAccepted: number;
  applied: number;
  lost: number;
  duplicated: number;
  wrongAccess: number;
  upMs: number;
  firstAppliedMs: number | null;
  drainedMs: number | null;
  /** Anything wrong, one entry each, for the line under the table. */
  problems: string[];
  /** What is worth knowing and is not wrong. */
  notes: string[];
}

const seconds = (ms: number | null) => (ms === null ? '-' : `${(ms / 1000).toFixed(1)}s`);

function tally(values: Array<string | undefined>): string {
  const counts = new Map<string, number>();
  for (const v of values) if (v !== undefined) counts.set(v, (counts.get(v) ?? 0) + 1);
  return [...counts].map(([k, n]) => `${k} x${n}`).join(', ');
}

async function runFault(fault: Fault, context: { api: string; databaseUrl: string; runId: string }): Promise<FaultResult> {
  const prefix = canonicalEmployeeId(`F${context.runId}-${fault.name.slice(0, 2)}-`);
  const crashesBefore = engine!.crashes.length;
  console.log(`\n[${fault.name}] ${fault.what}; ${rate}/s, down ${faultSeconds} s`);
  const startedAt = new Date();
  const stream = startStream(context.api, fault.name, prefix);
  let downAt = Number.NaN;
  let restartAt = Number.NaN;
  let upAt = Number.NaN;
  try {
    await sleep(BEFORE_FAULT_MS);
    downAt = Date.now();
    await fault.stop();
    await sleep(faultSeconds * 1000);
    restartAt = Date.now();
    await fault.start();
    upAt = Date.now();
    await sleep(AFTER_RESTART_MS);
  } finally {
    await stream.stop();
  }
  const { events } = stream;
  const accepted = events.filter((e) => e.acceptedAt !== undefined);
  const acceptedIds = accepted.map((e) => e.id);
  console.log(`  ${events.length} sent, ${accepted.length} accepted; waiting for them to be applied`);

  // A connection of its own per fault, opened after the restart: the bench's client is not under test.
  const sql = postgres(context.databaseUrl, { max: 2, onnotice: () => {} });
  try {
    const wait = await waitToSettle(sql, prefix, acceptedIds, waitSeconds * 1000);
    const rows = await sql<Array<{ id: string; status: string; appliedAt: Date | null }>>`
      select id, status, applied_at as "appliedAt" from hr_events where id = any(${acceptedIds})`;
    const byId = new Map(rows.map((r) => [r.id, r]));
    const applied = accepted.filter((e) => SETTLED_EVENT.includes(byId.get(e.id)?.status ?? ''));
    const lost = accepted.filter((e) => !SETTLED_EVENT.includes(byId.get(e.id)?.status ?? ''));
    const duplicates = await findDuplicates(sql, prefix, acceptedIds);

    // Recovery: from the restart, to the first event applied after it, and to the last event
    // sent before the component was up (the backlog) applied.
    const appliedAt = (e: StreamEvent) => byId.get(e.id)?.appliedAt?.getTime();
    const afterRestart = applied.map(appliedAt).filter((t): t is number => t !== undefined && t >= restartAt);
    const backlog = events.filter((e) => e.firstSentAt < upAt);
    const backlogDone = backlog.every((e) => e.acceptedAt !== undefined && SETTLED_EVENT.includes(byId.get(e.id)?.status ?? ''));
    const drainedAt = Math.max(restartAt, ...backlog.map((e) => appliedAt(e) ?? restartAt));

    // The directory, against what the accepted events say.
    const directory = await readDirectory(slapd!, prefix);
    const hires = events.filter((e) => e.type === 'hire');
    const acceptedOf = (type: StreamEvent['type'], id: string) => accepted.some((e) => e.type === type && e.employeeId === id);
    const unsettled = new Set(lost.map((e) => e.employeeId));
    const wrong: string[] = [];
    const duplicateEntries: string[] = [];
    /** What was found for each expectation, so a pass is seen not to be vacuous. */
    const found: string[] = [];
    for (const { employeeId: id } of hires) {
      if (unsettled.has(id)) continue; // its loss is counted already
      const seen = directory.get(id) ?? { entries: [], groups: new Set<string>() };
      const groups = [...seen.groups].sort();
      if (seen.entries.length > 1) duplicateEntries.push(`${id}: ${seen.entries.map((e) => e.dn).join(' and ')}`);
      const enabled = seen.entries.some((e) => !e.locked);
      const account = seen.entries.length ? (enabled ? 'enabled' : 'locked') : 'no account';
      const expected = !acceptedOf('hire', id) ? 'hire never accepted' : acceptedOf('terminate', id) ? 'terminated' : 'hired';
      found.push(`${expected}: ${account}${groups.length ? ` in ${groups.length} groups` : ''}`);
      const ok =
        expected === 'hire never accepted'
          ? seen.entries.length === 0 && groups.length === 0
          : expected === 'terminated'
            ? // A leaver may have no account at all (terminated before it was made): nothing to hold.
              !enabled && groups.length === 0
            : seen.entries.length === 1 && enabled && groups.join() === EXPECTED_GROUPS.join();
      if (!ok) wrong.push(`${id} (${expected}): ${account}${groups.length ? ` in [${groups.join(', ')}]` : ''}`);
    }

    const [failedGrants] = await sql<Array<{ n: number }>>`
      select count(*)::int as n from grants g join identities i on i.id = g.identity_id where i.employee_id like ${like(prefix)} and g.status = 'failed'`;
    const alerts = await sql<Array<{ kind: string; n: number }>>`select kind, count(*)::int as n from alerts where created_at >= ${startedAt} group by kind order by kind`;

    const problems: string[] = [];
    const notes: string[] = [];
    const notAtOnce = events.filter((e) => e.first?.status !== 202);
    if (notAtOnce.length) notes.push(`first answers not 202: ${tally(notAtOnce.map((e) => (e.first?.status ? String(e.first.status) : (e.first?.error ?? 'none'))))}; resent as an HR system would`);
    const slowest = events.reduce<StreamEvent | undefined>((a, e) => (e.first && (!a?.first || e.first.ackAt - e.first.sentAt > a.first.ackAt - a.first.sentAt) ? e : a), undefined);
    if (slowest?.first && slowest.first.ackAt - slowest.first.sentAt > 2_000) {
      notes.push(`slowest first answer ${seconds(slowest.first.ackAt - slowest.first.sentAt)} (${slowest.first.status || slowest.first.error})`);
    }
    const never = events.filter((e) => e.acceptedAt === undefined);
    if (never.length) problems.push(`${never.length} never accepted within ${RESEND_WINDOW_MS / 1000} s of resending (last answers: ${tally(never.map((e) => (e.last?.status ? String(e.last.status) : (e.last?.error ?? 'none'))))})`);
    if (lost.length) problems.push(`lost ${lost.length}: ${tally(lost.map((e) => `${e.type} ${byId.get(e.id)?.status ?? 'NO ROW'}`))}${wait.settled ? '' : ` after the ${waitSeconds} s wait`}, e.g. ${lost[0]!.id}`);
    if (duplicates.events.length) problems.push(`applied twice: ${duplicates.events.slice(0, 3).join(', ')}`);
    if (duplicates.identities.length) problems.push(`two identities: ${duplicates.identities.slice(0, 3).join(', ')}`);
    if (duplicates.grants.length) problems.push(`granted twice: ${duplicates.grants.slice(0, 3).join(', ')}`);
    if (duplicateEntries.length) problems.push(`two directory entries: ${duplicateEntries.slice(0, 3).join('; ')}`);
    if (wrong.length) problems.push(`wrong access for ${wrong.length} of ${found.length} people: ${wrong.slice(0, 3).join('; ')}`);
    if (unsettled.size) notes.push(`${unsettled.size} people with an event not applied were not judged in LDAP`);
    if (failedGrants?.n) problems.push(`${failedGrants.n} grants failed`);
    if (!backlogDone) problems.push('the backlog never drained');
    for (const crash of engine!.crashes.slice(crashesBefore)) {
      problems.push(
        `the engine process died on its own (${crash.how}) ${seconds(crash.at - downAt)} after the fault began; the bench started it again ${crash.restartedAt ? `${seconds(crash.restartedAt - crash.at)} later` : 'but it never came back'}; its log ended: ${crash.log}`,
      );
    }
    if (alerts.length) notes.push(`alerts raised meanwhile: ${alerts.map((a) => `${a.kind} x${a.n}`).join(', ')}`);
    notes.push(`in LDAP: ${tally(found)}`);

    return {
      name: fault.name,
      sent: events.length,
      acceptedAtOnce: events.filter((e) => e.first?.status === 202).length,
      acceptedOnResend: accepted.length - events.filter((e) => e.first?.status === 202).length,
      neverAccepted: never.length,
      applied: applied.length,
      lost: lost.length,
      duplicated: duplicates.events.length + duplicates.identities.length + duplicates.grants.length + duplicateEntries.length,
      wrongAccess: wrong.length,
      upMs: upAt - restartAt,
      firstAppliedMs: afterRestart.length ? Math.min(...afterRestart) - restartAt : null,
      drainedMs: backlogDone ? drainedAt - restartAt : null,
      problems,
      notes,
    };
  } finally {
    await sql.end({ timeout: 5 });
  }
}

// ---- the report --------------------------------------------------------------------------

const COLUMNS: Array<[string, (r: FaultResult) => string]> = [
  ['fault', (r) => r.name],
  ['sent', (r) => String(r.sent)],
  ['202', (r) => String(r.acceptedAtOnce)],
  ['202 resent', (r) => String(r.acceptedOnResend)],
  ['never', (r) => String(r.neverAccepted)],
  ['applied', (r) => String(r.applied)],
  ['lost', (r) => String(r.lost)],
  ['duplicated', (r) => String(r.duplicated)],
  ['wrong access', (r) => String(r.wrongAccess)],
  ['up after', (r) => seconds(r.upMs)],
  ['1st applied', (r) => seconds(r.firstAppliedMs)],
  ['drained', (r) => seconds(r.drainedMs)],
];

function printTable(results: FaultResult[]): void {
  const widths = COLUMNS.map(([title, cell]) => Math.max(title.length, ...results.map((r) => cell(r).length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  console.log(line(COLUMNS.map(([title]) => title)));
  for (const r of results) console.log(line(COLUMNS.map(([, cell]) => cell(r))));
  console.log('(times from the restart: the component up, the first event applied after it, every event sent before it was up applied)');
  for (const r of results) {
    for (const p of r.problems) console.log(`  ${r.name}: ${p}`);
    for (const n of r.notes) console.log(`  ${r.name}: note: ${n}`);
  }
}

// ---- the run -----------------------------------------------------------------------------

async function main(): Promise<boolean> {
  const t0 = Date.now();
  tmp = mkdtempSync(join(tmpdir(), 'jml-bench-faults-'));
  const temporalDb = join(tmp, 'temporal.sqlite');
  const slapdDir = join(tmp, 'slapd');
  [pg, redis, temporal, slapd] = await Promise.all([startPostgresCluster(), startOwnRedis(), startTemporalDevServer({ forTests: true, dbFilename: temporalDb }), startSlapd({ dir: slapdDir })]);
  const temporalPort = Number(temporal.address.split(':').pop());
  const slapdPort = Number(new URL(slapd.url).port);
  const { runId, databaseUrl, redisPrefix, taskQueue } = benchResources('flt', { postgresUrl: pg.url, redisUrl: redis.url });
  const configFile = join(tmp, 'jml.config.yaml');
  writeBenchConfig(configFile, slapd);
  const port = await freePort();
  const api = `http://127.0.0.1:${port}`;
  const engineEnv: NodeJS.ProcessEnv = {
    ...process.env,
    DATABASE_URL: databaseUrl,
    REDIS_URL: redis.url,
    JML_REDIS_PREFIX: redisPrefix,
    JML_CONFIG: configFile,
    JML_WEBHOOK_SECRET: secret,
    TEMPORAL_ADDRESS: temporal.address,
    JML_TASK_QUEUE: taskQueue,
    PORT: String(port),
    HOST: '127.0.0.1',
    PUBLIC_URL: api,
    JML_DATA_DIR: join(tmp, 'data'),
    LOG_LEVEL: 'warn',
  };
  const engineLog = args['engine-log'] ?? join(tmp, 'engine.log');
  engine = keepEngine(engineEnv, engineLog);
  await engine.start();
  const workerMs = await waitForWorker(temporal.address, taskQueue, 180_000);
  console.log(
    `bench: faults ${faultsToRun.join(', ')}; Postgres ${new URL(pg.url).host} (own cluster), Redis ${new URL(redis.url).host} (own), Temporal ${temporal.address}, slapd ${slapd.url}, engine ${api} (child process); ready in ${((Date.now() - t0) / 1000).toFixed(1)} s (worker polling after ${(workerMs / 1000).toFixed(1)} s)`,
  );

  const faults: Record<FaultName, Fault> = {
    engine: { name: 'engine', what: 'SIGKILL of the engine process (API and workers), then a new one', stop: () => engine!.stop(), start: () => engine!.start() },
    postgres: { name: 'postgres', what: 'Postgres fast shutdown (pg_ctl stop -m fast), then started', stop: () => pg!.stop(), start: () => pg!.start() },
    redis: { name: 'redis', what: 'redis-server stopped (no persistence: it comes back empty), then started', stop: () => redis!.stop(), start: () => redis!.start() },
    slapd: {
      name: 'slapd',
      what: 'slapd stopped, then started on the same folder and port',
      stop: () => slapd!.stop(),
      start: async () => {
        slapd = await startSlapd({ dir: slapdDir, keep: true, port: slapdPort });
      },
    },
    temporal: {
      name: 'temporal',
      what: 'Temporal dev server stopped, then started on the same SQLite file and port',
      stop: () => temporal!.stop(),
      start: async () => {
        temporal = await startTemporalDevServer({ forTests: true, dbFilename: temporalDb, port: temporalPort });
      },
    },
  };

  const results: FaultResult[] = [];
  for (const name of faultsToRun) {
    // A crash in the last fault may still be restarting: every fault starts against a running engine.
    for (const deadline = Date.now() + 120_000; !engine.running(); await sleep(500)) {
      if (Date.now() > deadline) throw new Error('the engine is not running again after 120 s; giving up');
    }
    const result = await runFault(faults[name], { api, databaseUrl, runId });
    results.push(result);
    const row = COLUMNS.slice(1).map(([title, cell]) => `${title} ${cell(result)}`).join(', ');
    console.log(`  ${row}${result.problems.length ? `; ${result.problems.length} problem(s)` : ''}`);
  }

  const database = createDb(databaseUrl, { max: 1 });
  const chain = await verifyAuditChain(database.db).finally(() => database.close());

  console.log(`\nFaults injected into a running engine (${rate}/s hires and terminations, each fault ${faultSeconds} s):\n`);
  printTable(results);
  console.log(`audit chain: ${chain.ok ? `intact over ${chain.rows} rows` : `BROKEN at seq ${chain.brokenAt} (of ${chain.rows} rows)`}`);
  const ok = chain.ok && results.every((r) => r.lost === 0 && r.duplicated === 0 && r.wrongAccess === 0);
  console.log(`result: ${ok ? 'OK: nothing lost, applied twice or wrongly granted' : 'PROBLEMS (see above)'}; total run ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  return ok;
}

await runBench(main, cleanup);
