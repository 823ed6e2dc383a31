// The HR webhook reads bytes, not text: on a whole engine (real API, inbox, workers), a body
// that is not valid UTF-8 is a 400 once its signature over the raw bytes is proven, and a 401
// when the signature was made over its lossily decoded text; JSON nested far too deep is a
// 400, not a RangeError. Neither changes anything: the inbox, the identities and the audit log
// read the same before and after.
import { createHmac, randomBytes } from 'node:crypto';
import { asc, ne } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_JSON_DEPTH } from '../../api/json-body.js';
import { auditLog, hrEvents, identities } from '../../db/schema.js';
import { buildTestApp, newWebhookSecret, signedWebhook } from '../support/api.js';
import { startTestEngine, type TestEngine } from '../support/engine.js';
import { uniqueEmployeeId } from '../support/env.js';

const PATH = '/api/v1/hr/events';
const secret = newWebhookSecret();
let engine: TestEngine;
let app: FastifyInstance;

beforeAll(async () => {
  engine = await startTestEngine();
  app = await buildTestApp(engine, { secret });
});

afterAll(async () => {
  await app?.close();
  await engine?.stop();
});

/**
 * Headers for `bytes` signed as Standard Webhooks specifies: HMAC-SHA256, keyed with the
 * base64-decoded secret, over `${id}.${timestamp}.` followed by the bytes exactly as sent.
 * (test/support/api.ts signs text, which cannot carry bytes that are not UTF-8.)
 */
function signBytes(bytes: Buffer, id = `msg_${randomBytes(12).toString('hex')}`) {
  const timestamp = String(Math.floor(Date.now() / 1000));
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  const digest = createHmac('sha256', key).update(`${id}.${timestamp}.`).update(bytes).digest('base64');
  return { id, headers: { 'content-type': 'application/json', 'webhook-id': id, 'webhook-timestamp': timestamp, 'webhook-signature': `v1,${digest}` } };
}

/** Everything an HR event could change before a worker picks it up, in a stable order. */
async function snapshot() {
  return {
    hrEvents: await engine.db.select().from(hrEvents).orderBy(asc(hrEvents.id)),
    identities: await engine.db.select().from(identities).orderBy(asc(identities.id)),
    // Alerts aside: a refused signed event raises event_rejected (services/input-rejections.ts), off the refusal's path.
    auditLog: await engine.db.select().from(auditLog).where(ne(auditLog.subjectType, 'alert')).orderBy(asc(auditLog.seq)),
  };
}

interface Problem {
  type: string;
  status: number;
  detail?: string;
  errors?: unknown;
}

function problemOf(response: { statusCode: number; headers: Record<string, unknown>; json(): unknown }, status: number): Problem {
  expect(response.statusCode).toBe(status);
  expect(String(response.headers['content-type'])).toMatch(/^application\/problem\+json/);
  return response.json() as Problem;
}

// The test that gets a 202 is last: once an event is accepted, the workers change these
// tables on their own time, so the before/after snapshots must all come before it.
describe('the HR webhook reads the body as bytes', () => {
  it('answers 400 for JSON nested 10,000 deep in an unknown attribute, validly signed, and changes nothing', async () => {
    const deep = `${'['.repeat(10_000)}${']'.repeat(10_000)}`;
    const body = `{"type":"update","employeeId":"${uniqueEmployeeId()}","attributes":{"costCentre":${deep}}}`;
    const before = await snapshot();

    // Signed over its text by the shared helper (it is ASCII, so text and bytes are one).
    const request = signedWebhook(secret, body);
    const response = await app.inject({ method: 'POST', url: PATH, payload: request.payload, headers: request.headers });

    const problem = problemOf(response, 400);
    expect(problem.type).toBe('urn:jml:problem:malformed-json');
    expect(problem.detail).toBe(`The body is nested deeper than ${MAX_JSON_DEPTH} levels.`);
    expect(await snapshot()).toEqual(before);
  });

  it('answers 400 for `ff fe` signed over the raw bytes, 401 for the same body signed over its decoded text, and changes nothing', async () => {
    const employeeId = uniqueEmployeeId();
    const head = `{"type":"hire","employeeId":"${employeeId}","effectiveAt":"2030-01-01T09:00:00Z","attributes":{"givenName":"`;
    const tail = '","familyName":"Lovelace"}}';
    const bytes = Buffer.concat([Buffer.from(head), Buffer.from([0xff, 0xfe]), Buffer.from(tail)]);
    // What a lossy decode makes of it: ff fe become two U+FFFD, a different byte string.
    const decoded = bytes.toString('utf8');
    expect(decoded).toContain('\uFFFD\uFFFD');
    const before = await snapshot();

    // Signed as the spec says: the signature holds, then the bytes are refused as not UTF-8.
    const overBytes = signBytes(bytes);
    const refused = await app.inject({ method: 'POST', url: PATH, payload: bytes, headers: overBytes.headers });
    const problem = problemOf(refused, 400);
    expect(problem).toMatchObject({ type: 'urn:jml:problem:malformed-json', detail: 'The body is not valid UTF-8.' });

    // The same bytes, signed over the decoded text (as a verifier that decodes first would check):
    // that signature is for other bytes, so it is a bad signature.
    const overText = signBytes(Buffer.from(decoded, 'utf8'));
    const unsigned = await app.inject({ method: 'POST', url: PATH, payload: bytes, headers: overText.headers });
    expect(problemOf(unsigned, 401)).toMatchObject({ type: 'urn:jml:problem:invalid-webhook-signature', detail: 'No matching signature found' });

    expect(await snapshot()).toEqual(before);

    // The control: the same body with a name that is valid UTF-8, signed the same way over its
    // bytes, is accepted and stored exactly as sent.
    const valid = Buffer.concat([Buffer.from(head), Buffer.from('Zoë', 'utf8'), Buffer.from(tail)]);
    const good = signBytes(valid);
    const accepted = await app.inject({ method: 'POST', url: PATH, payload: valid, headers: good.headers });
    expect(accepted.statusCode).toBe(202);
    const stored = (await snapshot()).hrEvents.filter((row) => row.id === good.id);
    expect(stored).toEqual([expect.objectContaining({ employeeId, payload: expect.objectContaining({ attributes: { givenName: 'Zoë', familyName: 'Lovelace' } }) })]);
  });
});
