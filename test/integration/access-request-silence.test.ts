// What happens when approvers stay silent, on short real timers: a reminder, then an
// escalation to the approver's manager, then `expired`; and a mover's review whose deadline
// passes applies the configured default (remove). Mail through a real SMTP server.
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approvals, auditLog } from '../../db/schema.js';
import { decideStage } from '../../services/decisions.js';
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
const top = uniqueEmployeeId('T');
const manager = uniqueEmployeeId('M');
const newManager = uniqueEmployeeId('N');

beforeAll(async () => {
  smtp = await startSmtpCapture();
  const base = testConfig(testEnv.ldap);
  const config = testConfig(testEnv.ldap, {
    entitlements: base.entitlements.map((e) => (e.id === 'sales' ? { ...e, requestable: true } : e)),
    approval: { timeout: '6s', reminderAfter: '2s', escalateAfter: '4s', moverReview: { timeout: '3s', default: 'remove' } },
  });
  engine = await startTestEngine({ config, smtpUrl: smtp.url });
  await hire(engine, top);
  await hire(engine, manager, { managerId: top });
  await hire(engine, newManager, { managerId: top });
}, 120_000);
afterAll(async () => {
  await engine?.stop();
  await smtp?.stop();
});

const mailsTo = (employeeId: string, about: string) => smtp.messages.filter((m) => m.to.includes(emailOf(employeeId)) && m.raw.includes(about));

describe('silent approvers', () => {
  it('reminds, escalates once to the manager, and then expires the request', async () => {
    const subject = uniqueEmployeeId('S');
    await hire(engine, subject, { managerId: manager });
    const requestId = await startRequest(engine, { employeeId: subject, entitlementId: 'sales' });

    await smtp.waitFor((m) => m.to.includes(emailOf(manager)) && m.raw.includes(subject) && /^Access request to review/.test(m.subject ?? ''), 15_000);
    await smtp.waitFor((m) => m.to.includes(emailOf(manager)) && m.raw.includes(subject) && /^Reminder/.test(m.subject ?? ''), 15_000);
    const escalation = await smtp.waitFor((m) => m.to.includes(emailOf(top)) && m.raw.includes(subject) && /^Escalated/.test(m.subject ?? ''), 15_000);
    expect((await parseMail(escalation)).text).toContain(manager);
    const ended = await eventually(async () => {
      const s = await statuses(engine, requestId);
      return s.requestStatus === 'expired' && s;
    }, 20_000);
    expect(ended.grantStatus).toBeNull();
    await smtp.waitFor((m) => m.to.includes(emailOf(subject)) && /^Access request expired/.test(m.subject ?? ''), 15_000);

    // Once each: one request mail and one reminder to the manager, one escalation to theirs.
    expect(mailsTo(manager, subject).map((m) => m.subject?.split(':')[0]).sort()).toEqual(['Access request to review', 'Reminder']);
    expect(mailsTo(top, subject)).toHaveLength(1);
    const rows = await engine.db.select().from(approvals).where(eq(approvals.requestId, requestId));
    expect(rows.map((r) => [r.role, r.approver, r.decision]).sort()).toEqual([
      ['escalation', top, 'expired'],
      ['manager', manager, 'expired'],
    ]);
    expect(rows.find((r) => r.role === 'manager')).toMatchObject({ escalatedTo: top, remindersSent: 1 });
    expect(await engine.connector.isGroupMember(subject, group('sales'))).toBe(false);
    await saveHistory(engine.client, approvalWorkflowId(requestId, 1), 'approval-reminded-escalated-expired');
  });

  it('the manager an escalation reached can decide', async () => {
    const subject = uniqueEmployeeId('S');
    await hire(engine, subject, { managerId: manager });
    const requestId = await startRequest(engine, { employeeId: subject, entitlementId: 'sales' });
    await smtp.waitFor((m) => m.to.includes(emailOf(top)) && m.raw.includes(subject) && /^Escalated/.test(m.subject ?? ''), 15_000);
    await decideStage(engine.client, requestId, 1, { approverId: top, decision: 'approved', via: 'api' });
    await eventually(async () => (await statuses(engine, requestId)).grantStatus === 'active', 20_000);
    const rows = await engine.db.select().from(approvals).where(eq(approvals.requestId, requestId));
    expect(rows.map((r) => [r.role, r.decision, r.decidedVia]).sort()).toEqual([
      ['escalation', 'approved', 'api'],
      ['manager', 'cancelled', 'superseded'],
    ]);
  });
});

describe("a mover's requested access", () => {
  /** A person granted sales on request (their manager approved), who then moves to a new manager. */
  async function grantedThenMoved(): Promise<{ subject: string; requestId: string }> {
    const subject = uniqueEmployeeId('S');
    await hire(engine, subject, { managerId: manager });
    const requestId = await startRequest(engine, { employeeId: subject, entitlementId: 'sales' });
    await smtp.waitFor((m) => m.to.includes(emailOf(manager)) && m.raw.includes(subject), 15_000);
    await decideStage(engine.client, requestId, 1, { approverId: manager, decision: 'approved', via: 'api' });
    await eventually(async () => (await statuses(engine, requestId)).grantStatus === 'active', 20_000);
    await engine.submit({ type: 'update', employeeId: subject, attributes: { managerId: newManager } });
    return { subject, requestId };
  }

  it('goes to the new manager for review, and is removed when nobody answers by the deadline', async () => {
    const { subject, requestId } = await grantedThenMoved();
    const review = await smtp.waitFor((m) => m.to.includes(emailOf(newManager)) && m.raw.includes(subject) && /^Review access after a move/.test(m.subject ?? ''), 20_000);
    expect((await parseMail(review)).text).toMatch(/removed/);
    const ended = await eventually(async () => {
      const s = await statuses(engine, requestId);
      return s.revocationStatus === 'revoked' && s;
    }, 30_000);
    expect(ended).toMatchObject({ requestStatus: 'approved', grantStatus: 'revoked' });
    expect(ended.grant?.revokeReason).toBe('review');
    expect(await engine.connector.isGroupMember(subject, group('sales'))).toBe(false);
    await saveHistory(engine.client, accessRequestWorkflowId(requestId), 'access-request-mover-review-removed');
    await saveHistory(engine.client, `lifecycle:${subject}`, 'mover-review-by-mail');
  });

  it('stays when the new manager keeps it', async () => {
    const { subject, requestId } = await grantedThenMoved();
    await smtp.waitFor((m) => m.to.includes(emailOf(newManager)) && m.raw.includes(subject) && /^Review access after a move/.test(m.subject ?? ''), 20_000);
    await decideStage(engine.client, requestId, 2, { approverId: newManager, decision: 'approved', via: 'api' });
    const [row] = await engine.db.select().from(approvals).where(eq(approvals.requestId, requestId)).then((rows) => rows.filter((r) => r.role === 'mover_review'));
    expect(row).toMatchObject({ approver: newManager, decision: 'approved' });
    // The review's outcome is recorded as kept, and the access is still there.
    await eventually(async () => (await engine.db.select().from(auditLog).where(and(eq(auditLog.subjectId, requestId), eq(auditLog.action, 'access_request.review_kept')))).length === 1);
    expect(await statuses(engine, requestId)).toMatchObject({ grantStatus: 'active', revocationStatus: null });
    expect(await engine.connector.isGroupMember(subject, group('sales'))).toBe(true);
  });
});
