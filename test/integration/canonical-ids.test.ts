// One employee id, two spellings: HR sends `e…` once and `E…` later. On a whole engine
// (real API, inbox, Temporal worker, OpenLDAP) they are one person: one identity in the
// canonical spelling, every HR event row in that spelling, one directory account.
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiToken } from '../../api/auth.js';
import { hrEvents, identities } from '../../db/schema.js';
import { buildTestApp, newWebhookSecret, postHrEvent } from '../support/api.js';
import { eventually, startTestEngine, type TestEngine } from '../support/engine.js';
import { uniqueName } from '../support/env.js';

const secret = newWebhookSecret();
let engine: TestEngine;
let app: FastifyInstance;
let token: string;

beforeAll(async () => {
  engine = await startTestEngine();
  app = await buildTestApp(engine, { secret });
  ({ token } = await createApiToken(engine.db, { name: uniqueName('canonical'), scopes: ['identities:read', 'events:write'] }));
});

afterAll(async () => {
  await app?.close();
  await engine?.stop();
});

async function send(body: object): Promise<string> {
  const { id, response } = await postHrEvent(app, secret, body);
  expect(response.statusCode).toBe(202);
  return id;
}

const applied = (id: string) =>
  eventually(async () => {
    const [row] = await engine.db.select({ status: hrEvents.status }).from(hrEvents).where(eq(hrEvents.id, id));
    return row?.status === 'applied' || undefined;
  }, 60_000);

describe('an employee id in two spellings', () => {
  it('webhook `e…` then `E…`: one identity, in the canonical spelling', { timeout: 90_000 }, async () => {
    const employeeId = `E${randomBytes(4).toString('hex').toUpperCase()}`;
    const hire = await send({ type: 'hire', employeeId: employeeId.toLowerCase(), attributes: { givenName: 'Ada', familyName: 'Lovelace', department: 'Engineering', title: 'Engineer' } });
    await applied(hire);
    const update = await send({ type: 'update', employeeId, attributes: { title: 'Lead Engineer' } });
    await applied(update);

    const people = await engine.db.select().from(identities).where(sql`lower(${identities.employeeId}) = lower(${employeeId})`);
    expect(people).toEqual([expect.objectContaining({ employeeId, status: 'active', attributes: expect.objectContaining({ givenName: 'Ada', title: 'Lead Engineer' }) })]);
    const events = await engine.db.select({ id: hrEvents.id, employeeId: hrEvents.employeeId }).from(hrEvents).where(sql`lower(${hrEvents.employeeId}) = lower(${employeeId})`);
    expect(events.map((e) => e.employeeId)).toEqual([employeeId, employeeId]);

    // The API finds the person by either spelling.
    const found = await app.inject({ method: 'GET', url: `/api/v1/identities?employeeId=${employeeId.toLowerCase()}`, headers: { authorization: `Bearer ${token}` } });
    expect(found.json()).toMatchObject({ items: [{ id: people[0]!.id, employeeId }] });
  });
});
