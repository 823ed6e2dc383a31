// Recovery of ingestion after a worker dies: a dispatch it left unfinished is taken up by
// the next ingestion worker within seconds (BullMQ's default lock and stalled check left it
// about a minute), and the dispatcher counts only what it really did.
import { createServer, type Server, type Socket } from 'node:net';
import { Client, Connection } from '@temporalio/client';
import type { Worker as BullWorker, Queue } from 'bullmq';
import { Worker } from 'bullmq';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, dropDatabase, ensureDatabase, runMigrations, type DbHandle } from '../../db/client.js';
import { getHrEvent, storeHrEvent } from '../../db/inbox.js';
import { freePort } from '../../scripts/free-port.js';
import { lifecycleWorkflowId, redispatchStranded } from '../../services/dispatch.js';
import { createHrEventQueue, enqueueHrEvent, hrEventJobId, HR_EVENTS_QUEUE, type HrEventJob } from '../../services/hr-event-queue.js';
import { redisConnection } from '../../services/redis.js';
import { createIngestWorker } from '../../worker/ingest-worker.js';
import { eventually } from '../support/engine.js';
import { testEnv, uniqueEmployeeId, uniqueName } from '../support/env.js';

const logger = pino({ level: 'silent' });
let databaseUrl: string;
let database: DbHandle;
let temporalConnection: Connection;
let temporal: Client;
/** A "Temporal" that accepts connections and never answers: a dispatch to it hangs. */
let silent: Server;
const silentSockets: Socket[] = [];
let silentAddress: string;

beforeAll(async () => {
  const url = new URL(testEnv.databaseUrl);
  url.pathname = `${url.pathname}_${Math.random().toString(36).slice(2, 10)}`;
  databaseUrl = url.toString();
  await ensureDatabase(databaseUrl);
  await runMigrations(databaseUrl);
  database = createDb(databaseUrl, { max: 5 });
  temporalConnection = await Connection.connect({ address: testEnv.temporalAddress });
  temporal = new Client({ connection: temporalConnection });
  silent = createServer((socket) => silentSockets.push(socket));
  const port = await freePort();
  await new Promise<void>((resolve) => silent.listen(port, '127.0.0.1', resolve));
  silentAddress = `127.0.0.1:${port}`;
});
afterAll(async () => {
  for (const socket of silentSockets) socket.destroy();
  await new Promise((resolve) => silent?.close(resolve));
  await temporalConnection?.close();
  await database?.close();
  if (databaseUrl) await dropDatabase(databaseUrl);
});

async function storeHire(): Promise<{ id: string; employeeId: string }> {
  const id = uniqueName('evt');
  const employeeId = uniqueEmployeeId();
  const effectiveAt = new Date();
  const payload = { type: 'hire', employeeId, effectiveAt: effectiveAt.toISOString(), attributes: { givenName: 'Grace', familyName: 'Hopper' } };
  await storeHrEvent(database.db, { id, employeeId, type: 'hire', effectiveAt, source: 'api', payload }, 'test');
  return { id, employeeId };
}

function queueFor(prefix: string): Queue<HrEventJob> {
  return createHrEventQueue(redisConnection(testEnv.redisUrl, 'producer'), prefix);
}

describe('the dispatcher', () => {
  it('counts the jobs it re-enqueued and retried apart from the rows it only looked at', async () => {
    const prefix = `${testEnv.redisPrefix}:${uniqueName('q')}`;
    const queue = queueFor(prefix);
    // A job that failed for good: taken by hand and failed, with no attempts left.
    const manual = new Worker<HrEventJob>(HR_EVENTS_QUEUE, undefined, { connection: redisConnection(testEnv.redisUrl, 'worker'), prefix });
    try {
      const failedOne = await storeHire();
      await queue.add('hr-event', { eventId: failedOne.id }, { jobId: hrEventJobId(failedOne.id), attempts: 1 });
      const job = await manual.getNextJob('test-token');
      expect(job?.id).toBe(hrEventJobId(failedOne.id));
      await job!.moveToFailed(new Error('Temporal was away'), 'test-token');
      // A job still waiting for a worker: nothing to do but wait for it.
      const waitingOne = await storeHire();
      await enqueueHrEvent(queue, waitingOne.id);
      // A row whose nudge never reached Redis.
      const neverQueued = await storeHire();

      const counts = await redispatchStranded(database.db, queue, { graceMs: 0 });
      expect(counts).toEqual({ scanned: 3, enqueued: 1, retried: 1 });
      expect(await queue.getJob(hrEventJobId(neverQueued.id))).toBeDefined();
      expect(await (await queue.getJob(hrEventJobId(failedOne.id)))!.isWaiting()).toBe(true);
    } finally {
      await manual.close();
      await queue.obliterate({ force: true });
      await queue.close();
    }
  });
});

describe('a stalled ingestion job', () => {
  it('is dispatched by the next worker within seconds of the one running it stopping mid-job', async () => {
    const prefix = `${testEnv.redisPrefix}:${uniqueName('q')}`;
    const queue = queueFor(prefix);
    const taskQueue = uniqueName('jml');
    const workers: BullWorker[] = [];
    // No retry interceptor: closing the connection then ends the hung call instead of leaving a retry timer behind.
    const silentConnection = Connection.lazy({ address: silentAddress, interceptors: [] });
    try {
      const event = await storeHire();
      await enqueueHrEvent(queue, event.id);

      // The first worker takes the job and hangs in signalWithStart to a Temporal that never answers.
      const dying = createIngestWorker({ db: database.db, temporal: new Client({ connection: silentConnection }), taskQueue, logger, connection: redisConnection(testEnv.redisUrl, 'worker'), prefix });
      workers.push(dying);
      await eventually(async () => (await queue.getJob(hrEventJobId(event.id)))?.isActive(), 10_000, 50);
      // Stopped without finishing: its lock is no longer renewed, as when a process is killed.
      await dying.close(true);
      expect((await getHrEvent(database.db, event.id))?.status).toBe('received');

      const next = createIngestWorker({ db: database.db, temporal, taskQueue, logger, connection: redisConnection(testEnv.redisUrl, 'worker'), prefix });
      workers.push(next);
      // BullMQ's defaults (30 s lock, 30 s stalled check) took about a minute here; the bound
      // is generous for a loaded machine.
      await eventually(async () => (await getHrEvent(database.db, event.id))?.status === 'dispatched', 15_000, 100);
      await temporal.workflow.getHandle(lifecycleWorkflowId(event.employeeId)).terminate('test over');
    } finally {
      for (const worker of workers) await worker.close(true);
      await queue.obliterate({ force: true });
      await queue.close();
      await silentConnection.close().catch(() => undefined);
    }
  });
});
