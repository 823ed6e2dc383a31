// Nothing accepted is lost when Redis is down: the event waits in the Postgres inbox and
// the dispatcher hands it to the queue once Redis is back.
import { freePort } from '../../scripts/free-port.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getHrEvent } from '../../db/inbox.js';
import { grants, identities } from '../../db/schema.js';
import { eventually, startTestEngine, type TestEngine } from '../support/engine.js';
import { uniqueEmployeeId } from '../support/env.js';

/** A private redis-server, so stopping it disturbs no other test file. */
function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'ignore'] });
  return new Promise((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('Ready to accept connections')) resolve(child);
    });
    child.on('exit', (code) => reject(new Error(`redis-server exited with ${code}`)));
  });
}

async function stopRedis(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

let port: number;
let redis: ChildProcess;
let engine: TestEngine;

beforeAll(async () => {
  port = await freePort();
  redis = await startRedis(port);
  engine = await startTestEngine({ redisUrl: `redis://127.0.0.1:${port}` });
});
afterAll(async () => {
  // BullMQ's close waits for Redis: bring it back if a failed test left it down.
  if (redis?.exitCode !== null) redis = await startRedis(port);
  await engine?.stop();
  if (redis) await stopRedis(redis);
});

describe('Redis outage', () => {
  it('keeps an event accepted while Redis is down and processes it when Redis returns', async () => {
    await stopRedis(redis);
    const employeeId = uniqueEmployeeId();
    const eventId = await engine.submit({ type: 'hire', employeeId, attributes: { givenName: 'Katherine', familyName: 'Johnson', department: 'Engineering' } });
    expect((await getHrEvent(engine.db, eventId))?.status).toBe('received');

    // Well past the dispatcher's grace period, nothing moved: there is no queue to move it.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect((await getHrEvent(engine.db, eventId))?.status).toBe('received');

    redis = await startRedis(port);
    await eventually(async () => (await getHrEvent(engine.db, eventId))?.status === 'applied', 30_000);
    const held = await engine.db.select({ status: grants.status }).from(grants).innerJoin(identities, eq(grants.identityId, identities.id)).where(eq(identities.employeeId, employeeId));
    expect(held.length).toBeGreaterThan(0);
    expect(held.every((g) => g.status === 'active')).toBe(true);
  });
});
