// `jml status <employeeId> [--json]`: one person as an operator needs to see them. The
// identity; each grant with its request status and its grant status side by side (never
// merged: "approved" and "done in the target" are different facts); the latest HR events
// with what became of each; and the pending plan (`jml explain`). Reads Postgres directly;
// the plan also needs Temporal, and when that cannot be asked the rest is still shown.
import { Client, Connection } from '@temporalio/client';
import { InvalidArgumentError, type Command } from 'commander';
import { eq } from 'drizzle-orm';
import { createDb, type Db } from '../../db/client.js';
import { identityGrants, recentHrEvents } from '../../db/operator-views.js';
import { identities } from '../../db/schema.js';
import { EMPLOYEE_ID_RULE, parseEmployeeId } from '../../domain/employee-id.js';
import type { ExplainedStep } from '../../domain/plan.js';
import { safe, terminalSafeJson } from '../../domain/terminal-safe.js';
import { loadConfig } from '../../services/config.js';
import { readEnv, temporalAddressOf, type Env } from '../../services/env.js';
import { explainIdentity } from '../../services/explain.js';
import { createLogger, databaseErrorSummary } from '../../services/logger.js';
import { prepareLocalSetup } from '../../services/setup.js';
import { withTimeout } from '../../services/with-timeout.js';
import { clip, table, when } from './format.js';

const EVENTS_SHOWN = 10;
/** What identifies the person and decides their birthright; the API has every attribute. */
const KEY_ATTRIBUTES = ['givenName', 'familyName', 'email', 'employmentType', 'department', 'title', 'location', 'managerId'] as const;
/** How long the plan may take: connecting to Temporal, then the workflow's answer. */
const CONNECT_WAIT_MS = 5_000;
const PLAN_WAIT_MS = 10_000;

/** An employee id in any spelling, as its canonical one; anything else is a usage error (exit 2). */
export function employeeIdArgument(value: string): string {
  const id = parseEmployeeId(value);
  if (id) return id;
  const err = new InvalidArgumentError(`an employee id ${EMPLOYEE_ID_RULE}`);
  err.exitCode = 2;
  throw err;
}

/** A plan's steps as `jml explain` and `jml status` print them. */
export function planStepLines(steps: ExplainedStep[]): string[] {
  const lines: string[] = [];
  for (const step of steps) {
    lines.push(safe`  ${step.dueAt}  ${step.step}` + (step.eventId ? safe` (${step.eventId})` : '') + safe`: ${step.effect}`);
    for (const g of step.grants) lines.push(safe`      + ${g.entitlementId}   (rule ${g.rules.join(', ')})`);
    for (const r of step.revokes) lines.push(safe`      - ${r.entitlementId}   (${r.why})`);
  }
  return lines;
}

type PlanSection = { available: true; workflow: boolean; steps: ExplainedStep[] } | { available: false; reason: string };

/** The pending plan, or why it cannot be shown (Temporal down, a config that does not load). */
async function pendingPlan(env: Env, db: Db, employeeId: string): Promise<PlanSection> {
  let connection: Connection | undefined;
  try {
    // The config refers to generated secrets (./data/secrets.env) on a local setup.
    prepareLocalSetup(env, createLogger('warn'));
    const config = loadConfig(env.configPath);
    connection = await Connection.connect({ address: temporalAddressOf(env), connectTimeout: CONNECT_WAIT_MS });
    const temporal = new Client({ connection, namespace: env.temporalNamespace });
    // A query waits for a worker to answer it; with none running it would wait long.
    const plan = await withTimeout(explainIdentity({ db, temporal, config }, employeeId), PLAN_WAIT_MS, `Temporal did not answer within ${PLAN_WAIT_MS / 1000} s`);
    return { available: true, workflow: plan.workflow, steps: plan.steps };
  } catch (err) {
    return { available: false, reason: databaseErrorSummary(err) ?? (err instanceof Error ? err.message : String(err)) };
  } finally {
    await connection?.close().catch(() => undefined);
  }
}

async function personStatus(env: Env, db: Db, employeeId: string) {
  const [identity] = await db.select().from(identities).where(eq(identities.employeeId, employeeId));
  const events = await recentHrEvents(db, employeeId, EVENTS_SHOWN);
  if (!identity && events.length === 0) throw new Error(`no identity and no HR event for ${employeeId}`);
  const grants = identity ? await identityGrants(db, identity.id) : [];
  const attributes = identity ? Object.fromEntries(KEY_ATTRIBUTES.filter((k) => identity.attributes[k] != null).map((k) => [k, identity.attributes[k]])) : {};
  return {
    employeeId,
    identity: identity
      ? {
          id: identity.id,
          status: identity.status,
          attributes,
          hireDate: identity.hireDate,
          terminationDate: identity.terminationDate,
          lastEffectiveAt: identity.lastEffectiveAt,
          updatedAt: identity.updatedAt,
        }
      : null,
    grants,
    events,
    plan: await pendingPlan(env, db, employeeId),
  };
}

type PersonStatus = Awaited<ReturnType<typeof personStatus>>;

function print(view: PersonStatus): void {
  const { identity } = view;
  if (identity) {
    const { givenName, familyName, ...rest } = identity.attributes;
    const name = [givenName, familyName].filter((n) => n != null).join(' ');
    console.log(safe`${view.employeeId}: ${identity.status}` + (name ? safe`  ${name}` : ''));
    const details = Object.entries(rest).map(([k, v]) => safe`${k} ${String(v)}`);
    if (details.length) console.log(`  ${details.join(', ')}`);
    console.log(`  hired ${when(identity.hireDate)}, terminated ${when(identity.terminationDate)}, last change effective ${when(identity.lastEffectiveAt)}`);
  } else {
    console.log(safe`${view.employeeId}: no identity (its HR events below created none)`);
  }

  console.log(`\ngrants (${view.grants.length}): the request (was it approved?), the grant (did the target do it?) and the revocation (has it gone?)`);
  if (view.grants.length) {
    const rows = view.grants.map((g) => [g.entitlementId, g.target, g.kind, g.requestKind, g.requestStatus, g.grantStatus, g.revocationStatus ?? '-', g.attempts, when(g.verifiedAt), when(g.updatedAt), clip(g.lastError)]);
    for (const line of table(['ENTITLEMENT', 'TARGET', 'KIND', 'REQUEST KIND', 'REQUEST', 'GRANT', 'REVOCATION', 'ATTEMPTS', 'VERIFIED AT', 'UPDATED AT', 'LAST ERROR'], rows)) console.log(line);
  }

  console.log(`\nlatest HR events (${view.events.length}, newest first):`);
  if (view.events.length) {
    const rows = view.events.map((e) => [when(e.receivedAt), e.type, when(e.effectiveAt), e.source, e.status, e.id, e.reason]);
    for (const line of table(['RECEIVED', 'TYPE', 'EFFECTIVE', 'SOURCE', 'OUTCOME', 'EVENT ID', 'REASON'], rows)) console.log(line);
  }

  console.log('\npending plan:');
  const { plan } = view;
  if (!plan.available) console.log(safe`  unavailable: ${plan.reason}`);
  else if (!plan.workflow) console.log('  no lifecycle workflow: nothing pending');
  else if (plan.steps.length === 0) console.log('  nothing pending');
  else for (const line of planStepLines(plan.steps)) console.log(line);
}

export function registerStatusCommand(program: Command): void {
  program
    .command('status')
    .argument('<employeeId>', 'the HR employee id, in any case', employeeIdArgument)
    .description("one person: the identity, each grant's request and grant status, the latest HR events and their outcomes, and the pending plan")
    .option('--json', 'print JSON')
    .action(async (employeeId: string, options: { json?: boolean }) => {
      const env = readEnv();
      const { db, close } = createDb(env.databaseUrl, { max: 2 });
      try {
        const view = await personStatus(env, db, employeeId);
        if (options.json) console.log(terminalSafeJson(view));
        else print(view);
      } finally {
        await close();
      }
    });
}
