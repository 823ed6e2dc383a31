// The joiner path end to end below the API: an inbox row goes through BullMQ into the
// lifecycle workflow, which provisions into the real slapd and proves it by reading back.
import { and, eq } from 'drizzle-orm';
import { Client as LdapClient } from 'ldapts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyAuditChain } from '../../db/audit.js';
import { getHrEvent } from '../../db/inbox.js';
import { accessRequests, alerts, grants, identities } from '../../db/schema.js';
import { testConfig } from '../support/config.js';
import { startTestEngine, eventually, type TestEngine } from '../support/engine.js';
import { testEnv, uniqueEmployeeId, uniqueName } from '../support/env.js';
import { saveHistory } from '../support/histories.js';
import { lifecycleStateQuery } from '../../workflows/index.js';

let engine: TestEngine;
beforeAll(async () => {
  engine = await startTestEngine();
});
afterAll(async () => {
  await engine?.stop();
});

async function memberOf(employeeId: string): Promise<string[]> {
  const ldap = new LdapClient({ url: testEnv.ldap.url });
  try {
    await ldap.bind(testEnv.ldap.bindDN, testEnv.ldap.bindPassword);
    const { searchEntries } = await ldap.search(`uid=${employeeId},${testEnv.ldap.usersDN}`, { scope: 'base', attributes: ['memberOf', 'uid'] });
    const values = searchEntries[0]?.memberOf ?? [];
    return (Array.isArray(values) ? values : [values]).map(String).map((dn) => dn.toLowerCase());
  } finally {
    await ldap.unbind();
  }
}

async function grantsOf(employeeId: string, on: TestEngine = engine) {
  return on.db
    .select({ entitlementId: grants.entitlementId, grantStatus: grants.status, requestStatus: accessRequests.status, requestKind: accessRequests.kind, verifiedAt: grants.verifiedAt, lastError: grants.lastError })
    .from(grants)
    .innerJoin(identities, eq(grants.identityId, identities.id))
    .innerJoin(accessRequests, eq(grants.requestId, accessRequests.id))
    .where(eq(identities.employeeId, employeeId));
}

describe('joiner', () => {
  it('provisions an engineer with the account and birthright groups, verified by read-back', async () => {
    const employeeId = uniqueEmployeeId();
    const eventId = await engine.submit({
      type: 'hire',
      employeeId,
      attributes: { givenName: 'Ada', familyName: 'Lovelace', email: 'ada@example.com', department: 'Engineering', employmentType: 'employee', title: 'Engineer' },
    });

    const rows = await eventually(async () => {
      const found = await grantsOf(employeeId);
      return found.length === 4 && found.every((g) => g.grantStatus === 'active') && found;
    });
    expect(rows.map((r) => r.entitlementId).sort()).toEqual(['all-staff', 'directory-account', 'employees', 'engineering']);
    for (const row of rows) {
      expect(row.requestKind).toBe('birthright');
      expect(row.requestStatus).toBe('auto_approved');
      expect(row.verifiedAt).toBeInstanceOf(Date);
    }
    const groups = await memberOf(employeeId);
    for (const cn of ['all-staff', 'employees', 'engineering']) expect(groups).toContain(`cn=${cn},${testEnv.ldap.groupsDN}`.toLowerCase());
    expect(groups).not.toContain(`cn=sales,${testEnv.ldap.groupsDN}`.toLowerCase());

    await eventually(async () => (await getHrEvent(engine.db, eventId))?.status === 'applied');
    const [person] = await engine.db.select().from(identities).where(eq(identities.employeeId, employeeId));
    expect(person?.status).toBe('active');
    expect(person?.attributes.department).toBe('Engineering');
    expect((await verifyAuditChain(engine.db)).ok).toBe(true);

    await saveHistory(engine.client, `lifecycle:${employeeId}`, 'joiner-engineer');
  });

  it('applies a redelivered event once', async () => {
    const employeeId = uniqueEmployeeId();
    const id = uniqueName('evt');
    const attributes = { givenName: 'Grace', familyName: 'Hopper', department: 'Sales', employmentType: 'contractor' };
    await engine.submit({ id, type: 'hire', employeeId, attributes });
    await eventually(async () => (await getHrEvent(engine.db, id))?.status === 'applied');
    // A second delivery of the same event: the workflow has seen the id and drops it.
    const { dispatchHrEvent } = await import('../../services/dispatch.js');
    await engine.client.workflow.getHandle(`lifecycle:${employeeId}`).signal('hrEvent', { eventId: id, employeeId, type: 'hire', effectiveAt: new Date().toISOString(), attributes });
    expect(await dispatchHrEvent({ db: engine.db, temporal: engine.client, taskQueue: engine.taskQueue, logger: (await import('pino')).pino({ level: 'silent' }) }, id)).toBe('skipped');
    const state = await engine.client.workflow.getHandle(`lifecycle:${employeeId}`).query(lifecycleStateQuery);
    expect(state?.events.map((e) => [e.eventId, e.outcome?.status])).toEqual([[id, 'applied']]);
    expect(state?.dirty).toBe(false);
    const requests = await engine.db.select().from(accessRequests).innerJoin(identities, eq(accessRequests.identityId, identities.id)).where(eq(identities.employeeId, employeeId));
    expect(requests).toHaveLength(4); // account, all-staff, contractors, sales
    const groups = await memberOf(employeeId);
    expect(groups).toContain(`cn=contractors,${testEnv.ldap.groupsDN}`.toLowerCase());
    expect(groups).toContain(`cn=sales,${testEnv.ldap.groupsDN}`.toLowerCase());
  });
});

describe('a grant the target refuses', () => {
  let broken: TestEngine;
  beforeAll(async () => {
    // A group entitlement whose ref sits under a base that does not exist: the directory
    // refuses (noSuchObject on the parent), permanently.
    const config = testConfig(testEnv.ldap, {
      entitlements: [
        { id: 'directory-account', target: 'directory', kind: 'account' },
        { id: 'nowhere-group', target: 'directory', kind: 'group', ref: `cn=nowhere,ou=missing,${testEnv.ldap.groupsDN}` },
      ],
      birthright: [{ name: 'everyone', grant: ['directory-account', 'nowhere-group'] }],
    });
    broken = await startTestEngine({ config });
  });
  afterAll(async () => {
    await broken?.stop();
  });

  it('ends failed with the last error and raises an alert, while the account stays active', async () => {
    const employeeId = uniqueEmployeeId();
    await broken.submit({ type: 'hire', employeeId, attributes: { givenName: 'Alan', familyName: 'Turing' } });
    const rows = await eventually(async () => {
      const found = await grantsOf(employeeId, broken);
      return found.length === 2 && found.every((g) => g.grantStatus === 'active' || g.grantStatus === 'failed') && found;
    });
    const failed = rows.find((r) => r.entitlementId === 'nowhere-group');
    expect(failed?.grantStatus).toBe('failed');
    expect(failed?.requestStatus).toBe('auto_approved'); // the request was fine; the grant was not
    expect(failed?.lastError).toBeTruthy();
    expect(rows.find((r) => r.entitlementId === 'directory-account')?.grantStatus).toBe('active');
    const raised = await broken.db.select().from(alerts).where(and(eq(alerts.kind, 'grant_failed'), eq(alerts.status, 'open')));
    expect(raised.some((a) => (a.details as { employeeId?: string }).employeeId === employeeId)).toBe(true);
  });
});
