// A Postgres restart under a stream of hires: the engine (API, Temporal worker, ingestion
// worker and dispatcher, all in this process) runs on a private cluster that the test stops
// for 10 s (fast shutdown, as an operator's restart) and starts again. The process stays up
// (a throw from the driver would be an unhandled error, failing this file); while Postgres
// is down the webhook, SCIM bulk and CSV import answer 503 with Retry-After at once instead
// of holding the sender, and store nothing; once it is back, every event that was accepted
// (202) is applied exactly once.
import { and, eq, inArray } from 'drizzle-orm';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiToken } from '../../api/auth.js';
import { verifyAuditChain } from '../../db/audit.js';
import { auditLog, hrEvents, identities } from '../../db/schema.js';
import { buildTestApp, newWebhookSecret, postHrEvent } from '../support/api.js';
import { eventually, startTestEngine, type TestEngine } from '../support/engine.js';
import { testConfig } from '../support/config.js';
import { testEnv, uniqueEmployeeId } from '../support/env.js';
import { startPostgresCluster, type PostgresCluster } from '../../scripts/postgres-cluster.js';

const SEND_EVERY_MS = 250;
const BEFORE_MS = 1_500;
const OUTAGE_MS = 10_000;
const AFTER_MS = 3_000;
/** What "at once" means here: generous for a loaded 2-core machine; the driver's own backoff held senders up to 15 s. */
const ANSWER_WITHIN_MS = 3_000;

type Phase = 'before' | 'stopping' | 'down' | 'starting' | 'after';
interface Sent {
  id: string;
  employeeId: string;
  /** When it was sent, and when it was answered. */
  phase: Phase;
  answeredIn: Phase;
  status: number;
  retryAfter: string | undefined;
  ms: number;
}

const secret = newWebhookSecret();
let cluster: PostgresCluster;
let engine: TestEngine;
let app: FastifyInstance;
let token: string;

beforeAll(async () => {
  cluster = await startPostgresCluster();
  // Steps that failed during the outage are tried again after 1 s, not the default 30 s, so
  // the test does not wait for the backoff to see them through.
  const retries = { initialInterval: '100ms', maximumInterval: '500ms', maximumAttempts: 3, afterFailure: { initialInterval: '1s', maximumInterval: '2s' } };
  engine = await startTestEngine({ databaseUrl: cluster.url, config: testConfig(testEnv.ldap, { retries }) });
  app = await buildTestApp(engine, { secret });
  ({ token } = await createApiToken(engine.db, { name: 'outage', scopes: ['events:write'] }));
});
afterAll(async () => {
  await app?.close();
  await cluster?.start().catch(() => undefined); // the engine's clean-up needs its database
  await engine?.stop();
  await cluster?.remove();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function timed(request: Promise<LightMyRequestResponse>): Promise<{ status: number; retryAfter: string | undefined; ms: number }> {
  const started = performance.now();
  const response = await request;
  return { status: response.statusCode, retryAfter: response.headers['retry-after'] as string | undefined, ms: performance.now() - started };
}

const scimBulk = JSON.stringify({
  schemas: ['urn:ietf:params:scim:api:messages:2.0:BulkRequest'],
  Operations: [{ method: 'POST', path: '/Users', bulkId: 'u1', data: { schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], externalId: 'PGSCIM1', userName: 'pgscim1', name: { givenName: 'Ted', familyName: 'Codd' }, active: true } }],
});

describe('Postgres stopped for 10 s under a stream of hires', () => {
  it('answers 503 + Retry-After at once while it is down, and applies every accepted event exactly once after', async () => {
    let phase: Phase = 'before';
    let streaming = true;
    const answers: Array<Promise<Sent>> = [];
    const stream = (async () => {
      while (streaming) {
        const sentIn = phase;
        const employeeId = uniqueEmployeeId('PG');
        const started = performance.now();
        answers.push(
          postHrEvent(app, secret, { type: 'hire', employeeId, attributes: { givenName: 'Edgar', familyName: 'Codd', employmentType: 'employee' } }).then(({ id, response }) => ({
            id,
            employeeId,
            phase: sentIn,
            answeredIn: phase,
            status: response.statusCode,
            retryAfter: response.headers['retry-after'] as string | undefined,
            ms: performance.now() - started,
          })),
        );
        await sleep(SEND_EVERY_MS);
      }
    })();

    await sleep(BEFORE_MS);
    phase = 'stopping';
    await cluster.stop();
    phase = 'down';
    // Well into the outage (the driver's own backoff has grown by then), the other write paths.
    await sleep(OUTAGE_MS / 2);
    const others = await Promise.all([
      timed(postHrEvent(app, secret, { type: 'terminate', employeeId: uniqueEmployeeId('PG') }).then(({ response }) => response)),
      timed(app.inject({ method: 'POST', url: '/api/v1/scim/v2/Bulk', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/scim+json' }, payload: scimBulk })),
      timed(app.inject({ method: 'POST', url: '/api/v1/hr/imports', headers: { authorization: `Bearer ${token}`, 'content-type': 'text/csv' }, payload: 'WorkerID,Status\nE1,Active\n' })),
    ]);
    await sleep(OUTAGE_MS / 2);
    phase = 'starting';
    await cluster.start();
    phase = 'after';
    await sleep(AFTER_MS);
    streaming = false;
    await stream;
    const sent = await Promise.all(answers);

    // The webhook's termination, a SCIM bulk and a CSV import: 503 at once too.
    for (const other of others) {
      expect(other).toMatchObject({ status: 503, retryAfter: expect.stringMatching(/^\d+$/) });
      expect(other.ms).toBeLessThan(ANSWER_WITHIN_MS);
    }

    const inPhase = (p: Phase) => sent.filter((s) => s.phase === p);
    // Sent and answered before the stop: accepted. One still in flight when the stop began may
    // be refused by it (a fast shutdown aborts its transaction), which the checks below allow.
    const before = inPhase('before').filter((s) => s.answeredIn === 'before');
    expect(before.length).toBeGreaterThan(0);
    expect(before.map((s) => s.status)).toEqual(before.map(() => 202));
    // Sent and answered while it was down (one sent just before the restart may be stored after it).
    const down = inPhase('down').filter((s) => s.answeredIn === 'down');
    expect(down.length).toBeGreaterThanOrEqual(OUTAGE_MS / SEND_EVERY_MS / 2);
    for (const answer of down) expect(answer).toMatchObject({ status: 503, retryAfter: expect.stringMatching(/^\d+$/) });
    // Nobody was held: not during the outage, not while it began or ended.
    expect(Math.max(...sent.map((s) => s.ms))).toBeLessThan(ANSWER_WITHIN_MS);
    // Back to normal once it is up again; a sender's retry of a 503 would be accepted like these.
    expect(inPhase('after').at(-1)?.status).toBe(202);
    for (const answer of sent) expect([202, 503]).toContain(answer.status);

    const accepted = sent.filter((s) => s.status === 202);
    const refused = sent.filter((s) => s.status === 503);
    const acceptedIds = accepted.map((s) => s.id);

    await eventually(async () => {
      const rows = await engine.db.select({ id: hrEvents.id }).from(hrEvents).where(and(inArray(hrEvents.id, acceptedIds), eq(hrEvents.status, 'applied')));
      return rows.length === accepted.length;
    }, 120_000, 500);

    // A 503 stored nothing behind the sender's back.
    expect(await engine.db.select({ id: hrEvents.id }).from(hrEvents).where(inArray(hrEvents.id, refused.map((s) => s.id)))).toEqual([]);
    // One person per accepted hire, none for a refused one.
    const people = await engine.db.select({ employeeId: identities.employeeId }).from(identities);
    expect(people.map((p) => p.employeeId).sort()).toEqual(accepted.map((s) => s.employeeId).sort());
    // Each accepted event received once and applied once, on an intact chain.
    const audit = await engine.db.select({ subjectId: auditLog.subjectId, action: auditLog.action }).from(auditLog).where(inArray(auditLog.subjectId, acceptedIds));
    for (const action of ['hr_event.received', 'hr_event.applied']) {
      expect(audit.filter((a) => a.action === action).map((a) => a.subjectId).sort(), action).toEqual([...acceptedIds].sort());
    }
    expect(await verifyAuditChain(engine.db)).toMatchObject({ ok: true });
  }, 180_000);
});
