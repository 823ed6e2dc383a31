// The accessRequest and approval workflows against the real things: Temporal, Postgres,
// slapd, and mail through an in-process SMTP server parsed by mailparser. Requests are
// recorded as the API records them; decisions go in as the API sends them (the Update).
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alerts, approvals, approvalTokens, grants } from '../../db/schema.js';
import { DecisionRefused, decideStage, withdrawRequest } from '../../services/decisions.js';
import { testConfig } from '../support/config.js';
import { eventually, startTestEngine, type TestEngine } from '../support/engine.js';
import { testEnv, uniqueEmployeeId } from '../support/env.js';
import { emailOf, hire, parseMail, startRequest, statuses } from '../support/requests.js';
import { saveHistory } from '../support/histories.js';
import { startSmtpCapture, type SmtpCapture } from '../support/smtp.js';
import { accessRequestWorkflowId, approvalWorkflowId } from '../../workflows/request-messages.js';

let engine: TestEngine;
let smtp: SmtpCapture;
const group = (cn: string) => `cn=${cn},${testEnv.ldap.groupsDN}`;

// The people: top <- manager <- subject; the owner of finance reports to top.
const top = uniqueEmployeeId('T');
const manager = uniqueEmployeeId('M');
const owner = uniqueEmployeeId('O');

beforeAll(async () => {
  smtp = await startSmtpCapture();
  const base = testConfig(testEnv.ldap);
  const config = testConfig(testEnv.ldap, {
    entitlements: [
      ...base.entitlements.map((e) => (e.id === 'sales' ? { ...e, requestable: true } : e)),
      { id: 'finance', target: 'directory', kind: 'group', ref: group('finance'), requestable: true, approver: 'manager_then_owner', owner, risk: 'high' },
      // A group under an OU that does not exist: the directory refuses to create it, so every grant fails.
      { id: 'vault', target: 'directory', kind: 'group', ref: `cn=vault,ou=nowhere,${testEnv.ldap.groupsDN}`, requestable: true },
    ],
    approval: { timeout: '10m', reminderAfter: '5m', escalateAfter: '8m', fallbackApprover: top },
    retries: { initialInterval: '100ms', maximumInterval: '200ms', maximumAttempts: 2 },
  });
  engine = await startTestEngine({ config, smtpUrl: smtp.url });
  await hire(engine, top);
  await hire(engine, manager, { managerId: top });
  await hire(engine, owner, { managerId: top });
}, 120_000);
afterAll(async () => {
  await engine?.stop();
  await smtp?.stop();
});

/** The approval mail sent to `employeeId` about a request of `subject`. */
async function approvalMailTo(employeeId: string, subject: string, kind = 'request') {
  const message = await smtp.waitFor((m) => m.to.includes(emailOf(employeeId)) && m.raw.includes(subject) && (kind !== 'reminder' || /remind/i.test(m.subject ?? '')), 20_000);
  return parseMail(message);
}

async function newSubject(): Promise<string> {
  const subject = uniqueEmployeeId('S');
  await hire(engine, subject, { managerId: manager });
  return subject;
}

describe('access request workflow', () => {
  it('emails the manager one review link, and an approval grants the group in the directory, verified', async () => {
    const subject = await newSubject();
    const requestId = await startRequest(engine, { employeeId: subject, entitlementId: 'sales' });
    const mail = await approvalMailTo(manager, subject);
    expect(mail.link).toMatch(/^http:\/\/jml\.test\/approvals\//);
    // One link only: never separate approve and deny links a scanner could follow.
    expect(mail.text.match(/\/approvals\//g)).toHaveLength(1);
    expect(mail.html).not.toMatch(/approve\?|deny\?|decision=/i);
    expect(await statuses(engine, requestId)).toMatchObject({ requestStatus: 'pending_approval', grantStatus: null, revocationStatus: null });

    const outcome = await decideStage(engine.client, requestId, 1, { approverId: manager.toLowerCase(), decision: 'approved', via: 'api' });
    expect(outcome).toMatchObject({ decision: 'approved', decidedBy: manager, stage: 1 });
    const done = await eventually(async () => {
      const s = await statuses(engine, requestId);
      return s.grantStatus === 'active' && s;
    });
    expect(done.requestStatus).toBe('approved');
    expect(done.revocationStatus).toBeNull();
    expect(done.grant?.verifiedAt).not.toBeNull();
    expect(await engine.connector.isGroupMember(subject, group('sales'))).toBe(true);
    // The decision used up every link of the stage.
    const tokens = await engine.db.select().from(approvalTokens).innerJoin(approvals, eq(approvals.id, approvalTokens.approvalId)).where(eq(approvals.requestId, requestId));
    expect(tokens.length).toBeGreaterThan(0);
    expect(tokens.every((t) => t.approval_tokens.usedAt !== null)).toBe(true);

    // A second decision changes nothing.
    await expect(decideStage(engine.client, requestId, 1, { approverId: manager, decision: 'denied', via: 'api' })).rejects.toBeInstanceOf(DecisionRefused);
    expect((await statuses(engine, requestId)).requestStatus).toBe('approved');
    // The requester hears it was granted, once it was proven.
    await smtp.waitFor((m) => m.to.includes(emailOf(subject)) && /^Access ready/.test(m.subject ?? ''), 20_000);
  });

  it('sends a request whose subject has no manager to the fallback approver, saying why', async () => {
    const subject = uniqueEmployeeId('S');
    await hire(engine, subject);
    const requestId = await startRequest(engine, { employeeId: subject, entitlementId: 'sales' });
    await approvalMailTo(top, subject);
    const [row] = await engine.db.select().from(approvals).where(eq(approvals.requestId, requestId));
    expect(row).toMatchObject({ role: 'manager', approver: top, fallbackReason: `no manager is recorded for ${subject}` });
    await decideStage(engine.client, requestId, 1, { approverId: top, decision: 'approved', via: 'api' });
    await eventually(async () => (await statuses(engine, requestId)).grantStatus === 'active');
  });

  it('refuses self-approval and anyone who is not the approver, before anything is recorded', async () => {
    const subject = await newSubject();
    const requestId = await startRequest(engine, { employeeId: subject, entitlementId: 'sales' });
    await approvalMailTo(manager, subject);
    const self = decideStage(engine.client, requestId, 1, { approverId: subject, decision: 'approved', via: 'api' });
    await expect(self).rejects.toMatchObject({ code: 'self_approval' });
    await expect(decideStage(engine.client, requestId, 1, { approverId: owner, decision: 'approved', via: 'api' })).rejects.toMatchObject({ code: 'not_approver' });
    const [row] = await engine.db.select().from(approvals).where(eq(approvals.requestId, requestId));
    expect(row?.decision).toBeNull();
    expect((await statuses(engine, requestId)).requestStatus).toBe('pending_approval');
    await withdrawRequest(engine.client, requestId, { by: subject });
  });

  it('a denial grants nothing and tells the requester', async () => {
    const subject = await newSubject();
    const requestId = await startRequest(engine, { employeeId: subject, entitlementId: 'sales' });
    await approvalMailTo(manager, subject);
    await decideStage(engine.client, requestId, 1, { approverId: manager, decision: 'denied', comment: 'not this quarter', via: 'api' });
    await eventually(async () => (await statuses(engine, requestId)).requestStatus === 'denied');
    expect((await statuses(engine, requestId)).grantStatus).toBeNull();
    expect(await engine.connector.isGroupMember(subject, group('sales'))).toBe(false);
    const denial = await smtp.waitFor((m) => m.to.includes(emailOf(subject)) && /denied/i.test(m.subject ?? ''), 20_000);
    expect((await parseMail(denial)).text).toContain('not this quarter');
  });

  it('a two-stage request needs the manager and then the owner', async () => {
    const subject = await newSubject();
    const requestId = await startRequest(engine, { employeeId: subject, entitlementId: 'finance' });
    await approvalMailTo(manager, subject);
    // The owner cannot decide the manager's stage.
    await expect(decideStage(engine.client, requestId, 1, { approverId: owner, decision: 'approved', via: 'api' })).rejects.toMatchObject({ code: 'not_approver' });
    await decideStage(engine.client, requestId, 1, { approverId: manager, decision: 'approved', via: 'api' });
    await approvalMailTo(owner, subject);
    expect(await statuses(engine, requestId)).toMatchObject({ requestStatus: 'pending_approval', grantStatus: null });
    await decideStage(engine.client, requestId, 2, { approverId: owner, decision: 'approved', via: 'api' });
    await eventually(async () => (await statuses(engine, requestId)).grantStatus === 'active');
    expect(await engine.connector.isGroupMember(subject, group('finance'))).toBe(true);
    const rows = await engine.db.select().from(approvals).where(eq(approvals.requestId, requestId));
    expect(rows.map((r) => [r.stage, r.role, r.approver, r.decision]).sort()).toEqual([
      [1, 'manager', manager, 'approved'],
      [2, 'owner', owner, 'approved'],
    ]);
    await saveHistory(engine.client, accessRequestWorkflowId(requestId), 'access-request-two-stage');
    await saveHistory(engine.client, approvalWorkflowId(requestId, 2), 'approval-owner-stage');
  });

  it('revokes a time-bound grant at its expiry, proven by read-back', async () => {
    const subject = await newSubject();
    const requestId = await startRequest(engine, { employeeId: subject, entitlementId: 'sales', durationMs: 4_000 });
    await approvalMailTo(manager, subject);
    await decideStage(engine.client, requestId, 1, { approverId: manager, decision: 'approved', via: 'api' });
    // The end is fixed once the grant is proven.
    const granted = await eventually(async () => {
      const s = await statuses(engine, requestId);
      return s.grantStatus === 'active' && s.request?.expiresAt != null && s;
    });
    expect(granted.grant?.expiresAt?.getTime()).toBe(granted.request?.expiresAt?.getTime());
    expect(await engine.connector.isGroupMember(subject, group('sales'))).toBe(true);
    const ended = await eventually(async () => {
      const s = await statuses(engine, requestId);
      return s.revocationStatus === 'revoked' && s;
    }, 30_000);
    expect(ended).toMatchObject({ requestStatus: 'approved', grantStatus: 'revoked', revocationStatus: 'revoked' });
    expect(ended.grant?.revokeReason).toBe('expired');
    expect(await engine.connector.isGroupMember(subject, group('sales'))).toBe(false);
    await saveHistory(engine.client, accessRequestWorkflowId(requestId), 'access-request-expiry');
  });

  it('when the directory refuses the grant: approved, grant failed, an alert, and mail that never claims success', async () => {
    const subject = await newSubject();
    const requestId = await startRequest(engine, { employeeId: subject, entitlementId: 'vault' });
    await approvalMailTo(manager, subject);
    await decideStage(engine.client, requestId, 1, { approverId: manager, decision: 'approved', via: 'api' });
    const failed = await eventually(async () => {
      const s = await statuses(engine, requestId);
      return s.grantStatus === 'failed' && s;
    }, 30_000);
    expect(failed.requestStatus).toBe('approved');
    const [alert] = await engine.db.select().from(alerts).where(and(eq(alerts.kind, 'grant_failed'), eq(alerts.dedupeKey, `grant_failed:${failed.grant!.id}`)));
    expect(alert?.status).toBe('open');
    const notice = await smtp.waitFor((m) => m.to.includes(emailOf(subject)) && /not in place/i.test(m.subject ?? ''), 20_000);
    const parsed = await parseMail(notice);
    expect(parsed.text).toMatch(/not (yet )?in place|being fixed/i);
    expect(parsed.text).not.toMatch(/has been granted|access is ready|\bdone\b/i);
    // Withdrawing ends the retries: the failed grant is revoked, proven.
    await withdrawRequest(engine.client, requestId, { by: subject });
    await eventually(async () => (await statuses(engine, requestId)).revocationStatus === 'revoked', 30_000);
  });

  it('withdrawing a pending request cancels it and closes its links; withdrawing granted access removes it, verified', async () => {
    const subject = await newSubject();
    const pending = await startRequest(engine, { employeeId: subject, entitlementId: 'sales' });
    await approvalMailTo(manager, subject);
    const outcome = await withdrawRequest(engine.client, pending, { by: subject, reason: 'no longer needed' });
    expect(outcome).toEqual({ requestStatus: 'cancelled', grantStatus: null, revocationStatus: null, retainedBy: [] });
    await expect(decideStage(engine.client, pending, 1, { approverId: manager, decision: 'approved', via: 'api' })).rejects.toBeInstanceOf(DecisionRefused);
    const tokens = await engine.db.select().from(approvalTokens).innerJoin(approvals, eq(approvals.id, approvalTokens.approvalId)).where(eq(approvals.requestId, pending));
    expect(tokens.every((t) => t.approval_tokens.usedAt !== null)).toBe(true);

    const granted = await startRequest(engine, { employeeId: subject, entitlementId: 'sales' });
    await eventually(async () => (await engine.db.select().from(approvals).where(eq(approvals.requestId, granted))).length === 1);
    await decideStage(engine.client, granted, 1, { approverId: manager, decision: 'approved', via: 'api' });
    await eventually(async () => (await statuses(engine, granted)).grantStatus === 'active');
    const removal = await withdrawRequest(engine.client, granted, { by: subject });
    expect(removal).toMatchObject({ requestStatus: 'approved', revocationStatus: 'pending', retainedBy: [] });
    await eventually(async () => (await statuses(engine, granted)).revocationStatus === 'revoked', 30_000);
    expect(await engine.connector.isGroupMember(subject, group('sales'))).toBe(false);
    await expect(withdrawRequest(engine.client, granted, { by: subject })).rejects.toMatchObject({ code: 'not_withdrawable' });
    await saveHistory(engine.client, accessRequestWorkflowId(pending), 'access-request-withdrawn-pending');
    await saveHistory(engine.client, approvalWorkflowId(pending, 1), 'approval-withdrawn');
  });

  it('a leaver: the pending request is cancelled with its links, the granted one revoked with revocationStatus revoked', async () => {
    const subject = await newSubject();
    const granted = await startRequest(engine, { employeeId: subject, entitlementId: 'sales' });
    await approvalMailTo(manager, subject);
    await decideStage(engine.client, granted, 1, { approverId: manager, decision: 'approved', via: 'api' });
    await eventually(async () => (await statuses(engine, granted)).grantStatus === 'active');
    const pending = await startRequest(engine, { employeeId: subject, entitlementId: 'finance' });
    await eventually(async () => (await engine.db.select().from(approvals).where(eq(approvals.requestId, pending))).length === 1);

    await engine.submit({ type: 'terminate', employeeId: subject });
    await eventually(async () => (await statuses(engine, granted)).revocationStatus === 'revoked', 30_000);
    expect(await statuses(engine, granted)).toMatchObject({ requestStatus: 'approved', grantStatus: 'revoked' });
    expect(await engine.connector.isGroupMember(subject, group('sales'))).toBe(false);
    await eventually(async () => (await statuses(engine, pending)).requestStatus === 'cancelled');
    expect((await statuses(engine, pending)).grantStatus).toBeNull();
    const [row] = await engine.db.select().from(approvals).where(eq(approvals.requestId, pending));
    expect(row?.decision).toBe('cancelled');
    const tokens = await engine.db.select().from(approvalTokens).where(eq(approvalTokens.approvalId, row!.id));
    expect(tokens.every((t) => t.usedAt !== null)).toBe(true);
    await expect(decideStage(engine.client, pending, 1, { approverId: manager, decision: 'approved', via: 'api' })).rejects.toMatchObject({ code: 'stage_closed' });
    expect((await statuses(engine, pending)).requestStatus).toBe('cancelled');
  });

  it('removal is reference-counted: access a birthright rule still grants stays, and the answer says why', async () => {
    const subject = await newSubject();
    const requestId = await startRequest(engine, { employeeId: subject, entitlementId: 'sales' });
    await approvalMailTo(manager, subject);
    await decideStage(engine.client, requestId, 1, { approverId: manager, decision: 'approved', via: 'api' });
    const granted = await eventually(async () => {
      const s = await statuses(engine, requestId);
      return s.grantStatus === 'active' && s;
    });
    // The person moves to Sales: the birthright rule `sales` now wants the same group.
    await engine.submit({ type: 'update', employeeId: subject, attributes: { department: 'Sales' } });
    await eventually(async () => {
      const [row] = await engine.db.select().from(grants).where(eq(grants.id, granted.grant!.id));
      return row?.status === 'active' && (await engine.connector.isGroupMember(subject, group('sales')));
    });
    // Wait until the move has been applied (the birthright rule sees the new department).
    await eventually(async () => {
      const ids = await engine.db.select().from(grants).where(and(eq(grants.identityId, granted.grant!.identityId), eq(grants.entitlementId, 'engineering')));
      return ids.every((g) => g.status === 'revoked') && ids.length > 0;
    }, 30_000);
    const removal = await withdrawRequest(engine.client, requestId, { by: subject });
    expect(removal).toMatchObject({ requestStatus: 'approved', revocationStatus: 'retained', retainedBy: ['birthright rule sales'] });
    expect(await engine.connector.isGroupMember(subject, group('sales'))).toBe(true);
    const [grant] = await engine.db.select().from(grants).where(eq(grants.id, granted.grant!.id));
    expect(grant?.status).toBe('active');
    expect(grant?.requestId).not.toBe(requestId);
    await smtp.waitFor((m) => m.to.includes(emailOf(subject)) && /^Access kept/.test(m.subject ?? ''), 20_000);
  });
});
