// `jml start` supervises what it runs: the embedded Temporal, the embedded slapd and the
// engine (API and workers) are each restarted when killed, with their data, so a durable
// timer still fires, the directory keeps its entries and an accepted event is not lost;
// SIGTERM stops them all, during start-up too.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { eq } from 'drizzle-orm';
import { Client as LdapClient } from 'ldapts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiToken } from '../../api/auth.js';
import { createDb, type DbHandle } from '../../db/client.js';
import { getHrEvent } from '../../db/inbox.js';
import { identities } from '../../db/schema.js';
import { freePort } from '../../scripts/free-port.js';
import { signedWebhook } from '../support/api.js';
import { eventually } from '../support/engine.js';
import { uniqueEmployeeId, uniqueName } from '../support/env.js';
import { isAlive, prepareJmlStart, processesOf, runJmlStart, type JmlStartProcess, type JmlStartSetup } from '../support/jml-start.js';

let setup: JmlStartSetup;
let jml: JmlStartProcess;
let database: DbHandle;

beforeAll(async () => {
  setup = await prepareJmlStart();
  jml = runJmlStart(setup.env);
  await jml.waitForOutput(/jml-engine is running/, 150_000);
  // The banner comes once the API answers; the Temporal worker bundles its workflows after.
  await jml.waitForLog('temporal worker running', { timeoutMs: 120_000 });
  database = createDb(setup.databaseUrl, { max: 2 });
}, 180_000);
afterAll(async () => {
  if (jml && jml.child.exitCode === null && jml.child.signalCode === null) {
    jml.child.kill('SIGTERM');
    await jml.exited;
  }
  await database?.close();
  await setup?.cleanup();
});

/** The pid of the latest run of a supervised process, from the supervisor's log. */
function currentPid(name: string): number {
  const runs = jml.logs().filter((l) => l.msg === `${name} started` || l.msg === `${name} restarted`);
  return runs.at(-1)!.pid!;
}

function restarts(name: string): number {
  return jml.logs().filter((l) => l.msg === `${name} restarted`).length;
}

async function postHire(employeeId: string, effectiveAt: Date, extra: Record<string, string> = {}): Promise<string> {
  const event = signedWebhook(setup.webhookSecret, {
    type: 'hire',
    employeeId,
    effectiveAt: effectiveAt.toISOString(),
    attributes: { givenName: 'Mary', familyName: 'Jackson', email: `${employeeId.toLowerCase()}@example.com`, department: 'Engineering', employmentType: 'employee', ...extra },
  });
  const response = await fetch(`http://127.0.0.1:${setup.ports.api}/api/v1/hr/events`, { method: 'POST', headers: event.headers, body: event.payload });
  expect(response.status).toBe(202);
  return event.id;
}

async function identityStatus(employeeId: string): Promise<string | undefined> {
  const [row] = await database.db.select({ status: identities.status }).from(identities).where(eq(identities.employeeId, employeeId));
  return row?.status;
}

function ldapAdmin(): { client: LdapClient; bind(): Promise<void> } {
  const password = /^LDAP_BIND_PASSWORD=(.*)$/m.exec(readFileSync(join(setup.dataDir, 'secrets.env'), 'utf8'))![1]!;
  const client = new LdapClient({ url: `ldap://127.0.0.1:${setup.ports.slapd}`, connectTimeout: 2_000 });
  return { client, bind: () => client.bind('cn=admin,dc=example,dc=com', password) };
}

describe('jml start', () => {
  it('without SMTP_URL catches mail and shows it on the page the banner names, where the approval link can be followed', async () => {
    await jml.waitForOutput(/\/dev\/mail/, 5_000);
    const api = `http://127.0.0.1:${setup.ports.api}`;
    const manager = uniqueEmployeeId('M');
    const subject = uniqueEmployeeId('S');
    await postHire(manager, new Date());
    await postHire(subject, new Date(), { managerId: manager });
    await eventually(async () => (await identityStatus(subject)) === 'active' && (await identityStatus(manager)) === 'active', 60_000, 200);
    const { token } = await createApiToken(database.db, { name: uniqueName('asker'), scopes: ['requests:write'], employeeId: subject });
    const asked = await fetch(`${api}/api/v1/access-requests`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ entitlementId: 'sales', justification: 'pipeline review', duration: '8h' }),
    });
    expect(asked.status).toBe(201);

    // The caught message is listed, and its page carries the one review link.
    const messagePath = await eventually(async () => {
      const list = await (await fetch(`${api}/dev/mail`)).text();
      return /href="(\/dev\/mail\/[^"]+)"/.exec(list)?.[1];
    }, 60_000, 500);
    const message = await (await fetch(`${api}${messagePath}`)).text();
    expect(message).toContain(subject);
    const link = /http:\/\/127\.0\.0\.1:\d+\/approvals\/[A-Za-z0-9_-]{43}/.exec(message)?.[0];
    expect(link).toBeDefined();
    const page = await fetch(link!);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('pipeline review');
  });

  it('restarts a killed Temporal with its data: a hire waiting on a durable timer still starts', async () => {
    const employeeId = uniqueEmployeeId();
    await postHire(employeeId, new Date(Date.now() + 20_000));
    // The workflow has taken the future hire in and sleeps on its timer until the start.
    await eventually(async () => (await identityStatus(employeeId)) === 'pre_hire', 60_000, 200);

    const killed = currentPid('embedded Temporal');
    process.kill(killed, 'SIGKILL');
    const restarted = await jml.waitForLog('embedded Temporal restarted', { timeoutMs: 60_000 });
    expect(restarted.pid).not.toBe(killed);
    expect(jml.logs().find((l) => l.msg === 'embedded Temporal exited unexpectedly; restarting it')).toMatchObject({ pid: killed, exit: 'signal SIGKILL' });

    await eventually(async () => (await identityStatus(employeeId)) === 'active', 90_000, 500);
    await eventually(async () => (await fetch(`http://127.0.0.1:${setup.ports.api}/api/health`)).ok, 30_000, 500);
  }, 180_000);

  it('restarts a killed slapd with its entries, and binds work again', async () => {
    const ou = uniqueName('kept');
    const before = ldapAdmin();
    await before.bind();
    await before.client.add(`ou=${ou},dc=example,dc=com`, { objectClass: 'organizationalUnit', ou });
    await before.client.unbind();

    const killed = currentPid('embedded slapd');
    const restartsBefore = restarts('embedded slapd');
    process.kill(killed, 'SIGKILL');
    const restarted = await jml.waitForLog('embedded slapd restarted', { skip: restartsBefore, timeoutMs: 30_000 });
    expect(restarted.pid).not.toBe(killed);

    const after = ldapAdmin();
    try {
      await after.bind();
      const { searchEntries } = await after.client.search('dc=example,dc=com', { filter: `(ou=${ou})`, attributes: ['ou'] });
      expect(searchEntries).toHaveLength(1);
    } finally {
      await after.client.unbind();
    }
  }, 90_000);

  it('restarts a killed engine, and an event it had accepted is still applied', async () => {
    const employeeId = uniqueEmployeeId();
    const eventId = await postHire(employeeId, new Date());
    const killed = currentPid('engine');
    const restartsBefore = restarts('engine');
    process.kill(killed, 'SIGKILL');
    const restarted = await jml.waitForLog('engine restarted', { skip: restartsBefore, timeoutMs: 120_000 });
    expect(restarted.pid).not.toBe(killed);

    await eventually(async () => (await getHrEvent(database.db, eventId))?.status === 'applied', 90_000, 500);
    expect(await identityStatus(employeeId)).toBe('active');
  }, 240_000);

  it('stops everything on SIGTERM and exits 0', async () => {
    const pids = ['embedded Temporal', 'embedded slapd', 'engine'].map(currentPid);
    jml.child.kill('SIGTERM');
    const { code } = await jml.exited;
    expect(code).toBe(0);
    expect(pids.filter(isAlive)).toEqual([]);
    const { temporal, slapd, api } = setup.ports;
    for (const port of [temporal, slapd, api]) await expect(freePort(port)).resolves.toBe(port);
    // Their exits during the shutdown were expected ones.
    const lastStop = jml.logs().findIndex((l) => l.msg === 'shutting down');
    expect(jml.logs().slice(lastStop).filter((l) => String(l.msg).includes('exited unexpectedly'))).toEqual([]);
  }, 60_000);
});

describe('jml start stopped during start-up', () => {
  it.each([
    ['while the embedded servers start', 'starting the embedded servers'],
    ['while the engine starts', 'embedded slapd started'],
  ])('stops what it has started on SIGTERM %s, and exits 0', async (_when, startUpLog) => {
    const early = await prepareJmlStart();
    try {
      const run = runJmlStart(early.env);
      await run.waitForLog(startUpLog, { timeoutMs: 120_000 });
      run.child.kill('SIGTERM');
      const { code } = await run.exited;
      expect(run.stdout()).not.toContain('jml-engine is running'); // it was still starting
      expect(processesOf(early.dataDir)).toEqual([]);
      const { temporal, temporalUi, slapd, api } = early.ports;
      for (const port of [temporal, temporalUi, slapd, api]) await expect(freePort(port)).resolves.toBe(port);
      expect(code).toBe(0);
    } finally {
      // Whatever the supervisor left behind (a failed run), so it does not outlive the test.
      for (const pid of processesOf(early.dataDir)) process.kill(pid, 'SIGKILL');
      await early.cleanup();
    }
  }, 120_000);
});
