// A directory outage longer than the whole connector retry budget, while leavers and a
// joiner are applied: the steps fail with alerts, and when the directory returns every
// leaver ends locked with no groups and the joiner gets their access, proven by read-back,
// with no action by a person; the alerts resolve themselves. The target's recovery workflow
// is what notices the directory is back: it releases the leavers first, and the joiner only
// once they are done. The directory is a private slapd, so stopping it disturbs no other
// test file.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { and, desc, eq, inArray } from 'drizzle-orm';
import { Client as LdapClient } from 'ldapts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getHrEvent } from '../../db/inbox.js';
import { alerts, auditLog, grants, identities } from '../../db/schema.js';
import { startSlapd, type SlapdServer } from '../../scripts/slapd.js';
import { testConfig } from '../support/config.js';
import { eventually, startTestEngine, type TestEngine } from '../support/engine.js';
import { uniqueEmployeeId } from '../support/env.js';
import { saveHistory } from '../support/histories.js';
import { targetRecoveryWorkflowId } from '../../workflows/target-recovery.js';

const ENGINEER = { givenName: 'Ada', familyName: 'Lovelace', department: 'Engineering', employmentType: 'employee' };

let dir: string;
let slapd: SlapdServer;
let port: number;
let engine: TestEngine;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'jml-slapd-outage-'));
  slapd = await startSlapd({ dir, keep: true });
  port = Number(new URL(slapd.url).port);
  engine = await startTestEngine({
    config: testConfig(slapd, {
      // A budget of about a second per step. A step that found the directory unreachable
      // waits for the directory's recovery; its own fallback retry (the longest backoff) is
      // far beyond this test, so only the recovery can bring it back.
      retries: { initialInterval: '100ms', maximumInterval: '300ms', maximumAttempts: 3, afterFailure: { initialInterval: '1s', maximumInterval: '10m' } },
      brake: { maxTerminations: 0, maxShare: 0 },
    }),
  });
});
afterAll(async () => {
  await engine?.stop();
  await slapd?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function settled(eventId: string, statuses: string[]) {
  return eventually(async () => {
    const row = await getHrEvent(engine.db, eventId);
    return row && statuses.includes(row.status) && row;
  }, 30_000);
}

/** The directory itself: the entry, its lock, the groups whose own `member` holds it. */
async function directory(employeeId: string) {
  const ldap = new LdapClient({ url: slapd.url });
  try {
    await ldap.bind(slapd.bindDN, slapd.bindPassword);
    const { searchEntries } = await ldap.search(slapd.baseDN, { scope: 'sub', filter: `(&(objectClass=inetOrgPerson)(uid=${employeeId}))`, attributes: ['pwdAccountLockedTime'] });
    const entry = searchEntries[0];
    if (!entry) return { exists: false as const };
    const groups = await ldap.search(slapd.groupsDN, { scope: 'one', filter: `(member=${entry.dn})`, attributes: ['cn'] });
    return { exists: true as const, enabled: [entry.pwdAccountLockedTime ?? []].flat().length === 0, groups: groups.searchEntries.map((g) => String(g.cn)).sort() };
  } finally {
    await ldap.unbind();
  }
}

async function grantIds(employeeId: string) {
  const rows = await engine.db.select({ id: grants.id }).from(grants).innerJoin(identities, eq(grants.identityId, identities.id)).where(eq(identities.employeeId, employeeId));
  return rows.map((r) => r.id);
}

/** Audit rows written after `seq` about these subjects, in the chain's order. */
async function auditAfter(seq: number, subjectIds: string[], actions: string[]) {
  const rows = await engine.db.select({ seq: auditLog.seq, action: auditLog.action, subjectId: auditLog.subjectId }).from(auditLog).where(and(inArray(auditLog.subjectId, subjectIds), inArray(auditLog.action, actions)));
  return rows.filter((r) => r.seq > seq).sort((a, b) => a.seq - b.seq);
}

async function grantStatuses(employeeId: string) {
  const rows = await engine.db.select({ status: grants.status }).from(grants).innerJoin(identities, eq(grants.identityId, identities.id)).where(eq(identities.employeeId, employeeId));
  return rows.map((r) => r.status).sort();
}

describe('a directory outage longer than the retry budget', () => {
  it('applies every leaver and joiner once the directory is back, and the alerts resolve themselves', async () => {
    const leavers = [uniqueEmployeeId(), uniqueEmployeeId(), uniqueEmployeeId()];
    for (const employeeId of leavers) await settled(await engine.submit({ type: 'hire', employeeId, attributes: ENGINEER }), ['applied']);

    await slapd.stop();
    const terminations = await Promise.all(leavers.map((employeeId) => engine.submit({ type: 'terminate', employeeId })));
    const joiner = uniqueEmployeeId();
    const hire = await engine.submit({ type: 'hire', employeeId: joiner, attributes: ENGINEER });
    // Each step spends its budget and fails, with an alert: a person is told at once.
    for (const id of [...terminations, hire]) expect((await settled(id, ['failed'])).status).toBe('failed');
    const open = await engine.db.select().from(alerts).where(and(inArray(alerts.kind, ['revoke_failed', 'grant_failed', 'event_failed']), eq(alerts.status, 'open')));
    expect(open.length).toBeGreaterThanOrEqual(leavers.length + 1);

    // Longer than any one step's budget; the recovery's probes fail meanwhile.
    const recoveryId = targetRecoveryWorkflowId(engine.taskQueue, 'directory');
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const recovery = engine.client.workflow.getHandle(recoveryId);
    expect((await recovery.describe()).status.name).toBe('RUNNING');
    const [{ seq: restartedAt } = { seq: 0 }] = await engine.db.select({ seq: auditLog.seq }).from(auditLog).orderBy(desc(auditLog.seq)).limit(1);
    slapd = await startSlapd({ dir, keep: true, port });

    for (const id of [...terminations, hire]) expect((await settled(id, ['applied'])).status).toBe('applied');
    for (const employeeId of leavers) {
      expect(await directory(employeeId)).toEqual({ exists: true, enabled: false, groups: [] });
      expect(new Set(await grantStatuses(employeeId))).toEqual(new Set(['revoked']));
    }
    expect(await directory(joiner)).toEqual({ exists: true, enabled: true, groups: ['all-staff', 'employees', 'engineering'] });
    expect(new Set(await grantStatuses(joiner))).toEqual(new Set(['active']));
    const stillOpen = await engine.db.select().from(alerts).where(and(inArray(alerts.id, open.map((a) => a.id)), eq(alerts.status, 'open')));
    expect(stillOpen.map((a) => a.dedupeKey)).toEqual([]);

    // Leavers first: every lock and revocation after the restart comes before the joiner's
    // first grant attempt after it.
    const leaverIdentities = await engine.db.select({ id: identities.id }).from(identities).where(inArray(identities.employeeId, leavers));
    const leaverSubjects = [...leaverIdentities.map((i) => i.id), ...(await Promise.all(leavers.map(grantIds))).flat()];
    const locks = await auditAfter(restartedAt, leaverSubjects, ['account.disabled', 'grant.revoked']);
    const joinerAttempts = await auditAfter(restartedAt, await grantIds(joiner), ['grant.provisioning']);
    expect(locks.filter((r) => r.action === 'grant.revoked').length).toBeGreaterThanOrEqual(leavers.length * 4);
    expect(joinerAttempts.length).toBeGreaterThan(0);
    expect(Math.max(...locks.map((r) => r.seq))).toBeLessThan(Math.min(...joinerAttempts.map((r) => r.seq)));
    // Nobody waits any more: the recovery has ended.
    await eventually(async () => (await recovery.describe()).status.name === 'COMPLETED', 30_000);

    await saveHistory(engine.client, `lifecycle:${leavers[0]}`, 'leaver-through-outage');
    await saveHistory(engine.client, `lifecycle:${joiner}`, 'joiner-through-outage');
    await saveHistory(engine.client, recoveryId, 'target-recovery');
  });
});
