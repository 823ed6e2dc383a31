// What the access-request tests share: people hired through the real lifecycle (so they exist
// in Postgres and in slapd), requests started as the API starts them, and the approval links
// read out of real mail (smtp-server in process, parsed by mailparser).
import { and, eq, ne } from 'drizzle-orm';
import { simpleParser } from 'mailparser';
import { accessRequests, grants, identities } from '../../db/schema.js';
import { canonicalEmployeeId } from '../../domain/employee-id.js';
import type { IdentityAttributes } from '../../domain/types.js';
import { accessRequestWorkflowId, jitElevationWorkflowId } from '../../workflows/request-messages.js';
import type { FastifyInstance } from 'fastify';
import type { JmlConfig } from '../../domain/config.js';
import { freePort } from '../../scripts/free-port.js';
import { buildTestApp } from './api.js';
import { eventually, startTestEngine, type TestEngine } from './engine.js';
import { startSmtpCapture, type CapturedMessage, type SmtpCapture } from './smtp.js';

export const emailOf = (employeeId: string) => `${employeeId.toLowerCase()}@example.com`;

/** Hires a person through the lifecycle and waits until their directory account is proven. */
export async function hire(engine: TestEngine, employeeId: string, attributes: IdentityAttributes = {}): Promise<void> {
  await engine.submit({
    type: 'hire',
    employeeId,
    attributes: { givenName: 'Test', familyName: employeeId, email: emailOf(employeeId), department: 'Engineering', employmentType: 'employee', ...attributes },
  });
  await eventually(async () => {
    const rows = await engine.db
      .select({ status: grants.status })
      .from(grants)
      .innerJoin(identities, eq(identities.id, grants.identityId))
      .where(and(eq(identities.employeeId, canonicalEmployeeId(employeeId)), eq(grants.entitlementId, 'directory-account')));
    return rows[0]?.status === 'active';
  }, 30_000);
}

/**
 * Records a request and starts its workflow, as services/access-requests.ts does after the
 * policy checks (these tests look at the workflow, not at the checks).
 */
export async function startRequest(
  engine: TestEngine,
  input: { employeeId: string; entitlementId: string; requestedBy?: string; durationMs?: number; justification?: string; kind?: 'requested' | 'jit'; breakGlass?: boolean },
): Promise<string> {
  const [identity] = await engine.db.select().from(identities).where(eq(identities.employeeId, canonicalEmployeeId(input.employeeId)));
  if (!identity) throw new Error(`no identity ${input.employeeId}`);
  const [row] = await engine.db
    .insert(accessRequests)
    .values({
      idempotencyKey: `test:${crypto.randomUUID()}`,
      identityId: identity.id,
      entitlementId: input.entitlementId,
      kind: input.kind ?? 'requested',
      status: 'pending_approval',
      breakGlass: input.breakGlass ?? false,
      requestedBy: canonicalEmployeeId(input.requestedBy ?? input.employeeId),
      justification: input.justification ?? 'needed for the quarterly close',
      durationMs: input.durationMs ?? null,
    })
    .returning();
  if (!row) throw new Error('no request row');
  const jit = row.kind === 'jit';
  await engine.client.workflow.start(jit ? 'jitElevation' : 'accessRequest', { workflowId: jit ? jitElevationWorkflowId(row.id) : accessRequestWorkflowId(row.id), taskQueue: engine.taskQueue, args: [{ requestId: row.id }] });
  return row.id;
}

/** An elevation recorded as the API records it (after the JIT policy checks), its workflow started. */
export function startElevation(engine: TestEngine, input: { employeeId: string; entitlementId: string; durationMs: number; breakGlass?: boolean }): Promise<string> {
  return startRequest(engine, { ...input, kind: 'jit' });
}

/**
 * The request row and its grant, as the three statuses: its own grant, or the live grant that
 * another reason already gave it (as db/request-views.ts shows it).
 */
export async function statuses(engine: TestEngine, requestId: string) {
  const [request] = await engine.db.select().from(accessRequests).where(eq(accessRequests.id, requestId));
  const [own] = await engine.db.select().from(grants).where(eq(grants.requestId, requestId));
  const approved = request?.status === 'approved' || request?.status === 'auto_approved';
  const [shared] =
    own || !request || !approved
      ? []
      : await engine.db
          .select()
          .from(grants)
          .where(and(eq(grants.identityId, request.identityId), eq(grants.entitlementId, request.entitlementId), ne(grants.status, 'revoked')));
  const grant = own ?? shared;
  return { requestStatus: request?.status, grantStatus: grant?.status ?? null, revocationStatus: request?.revocationStatus ?? null, request, grant };
}

export interface ParsedMail {
  to: string[];
  subject: string;
  text: string;
  html: string;
  /** The one approval link in the message, if any. */
  link: string | null;
  token: string | null;
}

export async function parseMail(message: CapturedMessage): Promise<ParsedMail> {
  const parsed = await simpleParser(message.raw);
  const text = parsed.text ?? '';
  const html = typeof parsed.html === 'string' ? parsed.html : '';
  const match = /https?:\/\/[^\s"<>]+\/approvals\/([A-Za-z0-9_-]{43})/.exec(text);
  return { to: message.to, subject: parsed.subject ?? '', text, html, link: match?.[0] ?? null, token: match?.[1] ?? null };
}

export interface ListeningEngine {
  engine: TestEngine;
  smtp: SmtpCapture;
  app: FastifyInstance;
  /** Where the API listens, and so where the links in mail point. */
  origin: string;
  stop(): Promise<void>;
}

/**
 * An engine whose mail goes to an in-process SMTP server, and the real API listening on a
 * loopback port, which is also the PUBLIC_URL of the links in that mail: for tests that
 * follow a link or call the API as a client would (a browser, the CLI).
 */
export async function startListeningEngine(config: JmlConfig): Promise<ListeningEngine> {
  const smtp = await startSmtpCapture();
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const engine = await startTestEngine({ config, smtpUrl: smtp.url, publicUrl: origin });
  const app = await buildTestApp(engine, { publicUrl: origin });
  await app.listen({ host: '127.0.0.1', port });
  return {
    engine,
    smtp,
    app,
    origin,
    async stop() {
      await app.close();
      await engine.stop();
      await smtp.stop();
    },
  };
}
