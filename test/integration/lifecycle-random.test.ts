// Random HR histories end to end: the generator of the property test (test/support/
// hr-histories.ts) makes 40 people's histories; their events are signed and posted to the
// real API in shuffled order with small random delays, seconds before or after they take
// effect, and processed by the real Temporal worker, Postgres and slapd. Once everything is
// due and the engine has settled, the directory itself (read here with ldapts, not through
// the connector) and the identity rows must be what the specification's oracle says.
//
// deleteAfter is short (3 s) on purpose: leavers' accounts must be gone by the check, and
// events that arrive after an erasure are part of the histories.
import { and, eq, inArray, ne } from 'drizzle-orm';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { Client as LdapClient, EqualityFilter } from 'ldapts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grants, hrEvents, identities } from '../../db/schema.js';
import { canonicalEmployeeId } from '../../domain/employee-id.js';
import type { JmlConfig } from '../../domain/config.js';
import { lifecycleWorkflowId } from '../../services/dispatch.js';
import { lifecycleStateQuery } from '../../workflows/index.js';
import { buildTestApp, newWebhookSecret, postHrEvent } from '../support/api.js';
import { testConfig } from '../support/config.js';
import { eventually, startTestEngine, type TestEngine } from '../support/engine.js';
import { testEnv, uniqueName } from '../support/env.js';
import { deliverySchedule, describeHistory, effectiveTime, expectedOutcome, historyArbitrary, type Expected, type History, type Scale } from '../support/hr-histories.js';

const PEOPLE = 40;
const SLOT_MS = 1_000;
const TIMINGS = { preProvisionLead: 2_000, moverGracePeriod: 2_000, deleteAfter: 3_000 };
// Histories are random per run; the seed in a failure message replays the same histories.
const seed = Number(process.env.LIFECYCLE_RANDOM_SEED ?? Math.floor(Math.random() * 2 ** 31));

const secret = newWebhookSecret();
let engine: TestEngine;
let app: FastifyInstance;
let config: JmlConfig;

beforeAll(async () => {
  config = testConfig(testEnv.ldap, {
    lifecycle: { preProvisionLead: `${TIMINGS.preProvisionLead / 1000}s`, moverGracePeriod: `${TIMINGS.moverGracePeriod / 1000}s`, deleteAfter: `${TIMINGS.deleteAfter / 1000}s` },
    // Forty people and a dozen terminations in a minute would trip the mass-leaver brake.
    brake: { maxTerminations: 0, maxShare: 0 },
  });
  engine = await startTestEngine({ config });
  app = await buildTestApp(engine, { secret });
});
afterAll(async () => {
  await app?.close();
  await engine?.stop();
});

interface Person {
  employeeId: string;
  history: History;
  /** The webhook-id each event of the history is sent with. */
  webhookId: (eventId: string) => string;
}

async function post(person: Person, event: History[number], scale: Scale): Promise<void> {
  const body = { type: event.type, employeeId: person.employeeId, effectiveAt: new Date(effectiveTime(event, scale)).toISOString(), attributes: event.attributes };
  const { id, response } = await postHrEvent(app, secret, body, { id: person.webhookId(event.id) });
  if (response.statusCode !== 202) throw new Error(`${id}: ${response.statusCode} ${response.body}`);
}

const sleepUntil = (at: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, at - Date.now())));

// --- what the directory and the database say ---------------------------------------------

interface Observed {
  identity: { status: string; attributes: unknown } | null;
  liveGrants: string[];
  account: 'absent' | 'enabled' | 'disabled' | 'ambiguous';
  groups: string[];
  events: Array<{ id: string; status: string; reason: string | null }>;
}

const normDn = (dn: string) => dn.replace(/\s*,\s*/g, ',').toLowerCase();

/** Every group's own member values, as the directory holds them, by entitlement id. */
async function readGroups(ldap: LdapClient): Promise<Map<string, Set<string>>> {
  const { searchEntries } = await ldap.search(testEnv.ldap.groupsDN, { scope: 'one', filter: '(objectClass=groupOfNames)', attributes: ['member'] });
  const members = new Map(searchEntries.map((e) => [normDn(e.dn), new Set([e.member ?? []].flat().map((m) => normDn(String(m))))]));
  const byEntitlement = new Map<string, Set<string>>();
  for (const e of config.entitlements) if (e.kind === 'group' && e.ref) byEntitlement.set(e.id, members.get(normDn(e.ref)) ?? new Set());
  return byEntitlement;
}

async function readAccount(ldap: LdapClient, employeeId: string): Promise<Observed['account']> {
  const filter = new EqualityFilter({ attribute: 'uid', value: employeeId });
  const [active, parked] = await Promise.all(
    [testEnv.ldap.usersDN, testEnv.ldap.disabledDN].map(async (base) => (await ldap.search(base, { scope: 'one', filter, attributes: ['uid', 'pwdAccountLockedTime'] })).searchEntries),
  );
  const entries = [...(active ?? []), ...(parked ?? [])];
  if (entries.length === 0) return 'absent';
  if (entries.length > 1) return 'ambiguous';
  // Disabled, as the connector enforces it: a ppolicy lock, or a move under the disabled OU.
  const locked = [entries[0]?.pwdAccountLockedTime ?? []].flat().length > 0;
  return locked || (parked?.length ?? 0) > 0 ? 'disabled' : 'enabled';
}

async function observe(ldap: LdapClient, groups: Map<string, Set<string>>, person: Person): Promise<Observed> {
  const employeeId = canonicalEmployeeId(person.employeeId);
  const dns = [testEnv.ldap.usersDN, testEnv.ldap.disabledDN].map((container) => normDn(`uid=${employeeId},${container}`));
  const [identity] = await engine.db.select().from(identities).where(eq(identities.employeeId, employeeId));
  const live = identity ? await engine.db.select({ entitlementId: grants.entitlementId, status: grants.status }).from(grants).where(and(eq(grants.identityId, identity.id), ne(grants.status, 'revoked'))) : [];
  const events = await engine.db
    .select({ id: hrEvents.id, status: hrEvents.status, reason: hrEvents.reason })
    .from(hrEvents)
    .where(inArray(hrEvents.id, person.history.map((e) => person.webhookId(e.id))));
  return {
    identity: identity ? { status: identity.status, attributes: identity.attributes } : null,
    liveGrants: live.map((g) => (g.status === 'active' ? g.entitlementId : `${g.entitlementId} (${g.status})`)).sort(),
    account: await readAccount(ldap, employeeId),
    groups: [...groups].filter(([, members]) => dns.some((dn) => members.has(dn))).map(([id]) => id).sort(),
    events: events.sort((a, b) => (a.id < b.id ? -1 : 1)),
  };
}

function mismatches(expected: Expected, seen: Observed): string[] {
  const problems: string[] = [];
  const same = (what: string, actual: unknown, wanted: unknown) => {
    if (JSON.stringify(actual) !== JSON.stringify(wanted)) problems.push(`${what}: ${JSON.stringify(actual)}, expected ${JSON.stringify(wanted)}`);
  };
  if (expected.status === 'none') {
    same('identity', seen.identity, null);
  } else {
    same('identity status', seen.identity?.status, expected.status);
    // Compared field by field: jsonb does not keep key order.
    same('identity attributes', sortKeys(seen.identity?.attributes), sortKeys(expected.attributes));
  }
  same('live grants', seen.liveGrants, expected.entitlements);
  same('directory account', seen.account, expected.account);
  same('directory groups', seen.groups, expected.entitlements.filter((id) => config.entitlements.find((e) => e.id === id)?.kind === 'group'));
  for (const e of seen.events) if (e.status === 'failed') problems.push(`event ${e.id} failed: ${e.reason}`);
  return problems;
}

function sortKeys(value: unknown): unknown {
  return value && typeof value === 'object' ? Object.fromEntries(Object.entries(value).sort(([a], [b]) => (a < b ? -1 : 1))) : value;
}

/** Why a person's lifecycle is not at rest yet, or undefined when it is. */
async function whyUnsettled(person: Person): Promise<string | undefined> {
  const employeeId = canonicalEmployeeId(person.employeeId);
  const hired = person.history.some((e) => e.type === 'hire' || e.type === 'rehire');
  const rows = await engine.db.select({ id: hrEvents.id, status: hrEvents.status }).from(hrEvents).where(inArray(hrEvents.id, person.history.map((e) => person.webhookId(e.id))));
  const waiting = rows.filter((r) => r.status === 'received' || r.status === 'held' || (hired && r.status === 'dispatched'));
  if (waiting.length) return `events without an outcome: ${waiting.map((r) => `${r.id} ${r.status}`).join(', ')}`;
  const [identity] = await engine.db.select({ id: identities.id }).from(identities).where(eq(identities.employeeId, employeeId));
  if (identity) {
    const inFlight = await engine.db.select({ entitlementId: grants.entitlementId, status: grants.status }).from(grants).where(and(eq(grants.identityId, identity.id), inArray(grants.status, ['pending', 'provisioning', 'revoking'])));
    if (inFlight.length) return `grants in flight: ${inFlight.map((g) => `${g.entitlementId} ${g.status}`).join(', ')}`;
  }
  const handle = engine.client.workflow.getHandle(lifecycleWorkflowId(employeeId));
  const [state, description] = await Promise.all([handle.query(lifecycleStateQuery), handle.describe()]);
  if (!state || state.dirty) return 'the workflow has unread input';
  if (state.timers.length) return `mover timers pending: ${JSON.stringify(state.timers)}`;
  if (description.raw.pendingActivities?.length) return `activities running: ${description.raw.pendingActivities.map((a) => a.activityType?.name).join(', ')}`;
  if (description.raw.pendingWorkflowTask) return 'a workflow task is pending';
  return undefined;
}

// --- the test -----------------------------------------------------------------------------

describe('random HR histories end to end', () => {
  it(`${PEOPLE} people, shuffled and late deliveries: the directory and the identities end as the specification says`, { timeout: 240_000 }, async () => {
    const histories = fc.sample(historyArbitrary, { numRuns: PEOPLE, seed });
    const run = uniqueName('LR');
    const people: Person[] = histories.map((history, i) => {
      const employeeId = `${run}-${i}`;
      return { employeeId, history, webhookId: (eventId) => `${employeeId}.${eventId}` };
    });
    // Arrivals start 4 slots before slot 0, so slot 0 is 4 s from now: every delivery is now or later.
    const scale: Scale = { start: Date.now() + 4 * SLOT_MS, slotMs: SLOT_MS };
    const story = (p: Person) => `${p.employeeId}\n${describeHistory(p.history, scale, 0)}`;

    await Promise.all(
      people.flatMap((person) =>
        deliverySchedule(person.history, scale, 0).map(async ({ event, arrivesAt }) => {
          await sleepUntil(arrivesAt);
          await post(person, event, scale);
        }),
      ),
    );

    // Settled: every deadline (start, grace, retention) is past, every event has its outcome
    // (people never hired wait, `dispatched`, for a hire), no grant is in flight, and no
    // workflow has work queued, a mover timer pending or an activity running. Someone who
    // does not settle within the wait is reported with the rest, history and all.
    const lastEffective = Math.max(...people.flatMap((p) => p.history.map((e) => effectiveTime(e, scale))));
    await sleepUntil(lastEffective + Math.max(TIMINGS.moverGracePeriod, TIMINGS.deleteAfter));
    let unsettled = new Map<Person, string>();
    await eventually(
      async () => {
        unsettled = new Map((await Promise.all(people.map(async (p) => [p, await whyUnsettled(p)] as const))).filter((x): x is [Person, string] => x[1] !== undefined));
        return unsettled.size === 0;
      },
      60_000,
      500,
    ).catch(() => undefined);
    const ldap = new LdapClient({ url: testEnv.ldap.url });
    await ldap.bind(testEnv.ldap.bindDN, testEnv.ldap.bindPassword);
    const report: string[] = [];
    try {
      const groups = await readGroups(ldap);
      for (const person of people) {
        const expected = expectedOutcome(person.history, scale, config.birthright);
        const seen = await observe(ldap, groups, person);
        const problems = mismatches(expected, seen);
        if (unsettled.has(person)) problems.unshift(`not settled: ${unsettled.get(person)}`);
        if (problems.length) {
          const events = seen.events.map((e) => `  ${e.id}: ${e.status}${e.reason ? ` (${e.reason})` : ''}`).join('\n');
          report.push(`${story(person)}\nexpected: ${JSON.stringify(expected)}\n${problems.map((p) => `  ✗ ${p}`).join('\n')}\nevent statuses:\n${events}`);
        }
      }
    } finally {
      await ldap.unbind();
    }
    expect(report, `${report.length} of ${PEOPLE} people differ from the specification (LIFECYCLE_RANDOM_SEED=${seed})\n\n${report.join('\n\n')}`).toEqual([]);
  });
});
