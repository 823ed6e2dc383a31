// A worker killed with SIGKILL in the middle of elevations: its durable timers are Temporal's,
// so once a worker is back the access is revoked at its expiry, or at once when the expiry
// passed while no worker ran. The worker is the real `jml worker` in a child process.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLdapConnector } from '../../activities/connectors/ldap.js';
import type { Connector } from '../../activities/connectors/types.js';
import { Client, Connection } from '@temporalio/client';
import { createDb, dropDatabase, type DbHandle } from '../../db/client.js';
import { storeHrEvent } from '../../db/inbox.js';
import { accessRequests, grants, identities } from '../../db/schema.js';
import { createHrEventQueue, enqueueHrEvent, type HrEventJob } from '../../services/hr-event-queue.js';
import { redisConnection } from '../../services/redis.js';
import { jitElevationWorkflowId } from '../../workflows/request-messages.js';
import type { Queue } from 'bullmq';
import { eventually, freshDatabase } from '../support/engine.js';
import { testEnv, uniqueEmployeeId, uniqueName } from '../support/env.js';

const REPO = new URL('../../', import.meta.url).pathname;
let dir: string;
let databaseUrl: string;
let database: DbHandle;
let queue: Queue<HrEventJob>;
let connection: Connection;
let client: Client;
let connector: Connector;
let worker: ChildProcess | undefined;
const taskQueue = uniqueName('jit-crash');
const prefix = `${testEnv.redisPrefix}:${uniqueName('jit-crash')}`;
const group = `cn=jit-crash,${testEnv.ldap.groupsDN}`;

function startWorker(): ChildProcess {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DATABASE_URL: databaseUrl,
    REDIS_URL: testEnv.redisUrl,
    JML_REDIS_PREFIX: prefix,
    TEMPORAL_ADDRESS: testEnv.temporalAddress,
    JML_TASK_QUEUE: taskQueue,
    JML_CONFIG: join(dir, 'jml.config.yaml'),
    JML_DATA_DIR: join(dir, 'data'),
    LOG_LEVEL: 'warn',
  };
  delete env.SMTP_URL; // mail waits and retries; nothing here is about mail
  const child = spawn(process.execPath, ['--import', 'tsx', 'cli/index.ts', 'worker'], { cwd: REPO, env, stdio: ['ignore', 'ignore', 'inherit'] });
  return child;
}

async function kill(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'jml-jit-crash-'));
  const ldap = testEnv.ldap;
  await writeFile(
    join(dir, 'jml.config.yaml'),
    JSON.stringify({
      webhook: { secrets: 'whsec_' + Buffer.from('jit-crash-test-secret-0123456789').toString('base64') },
      targets: [{ id: 'directory', type: 'ldap', url: ldap.url, bindDN: ldap.bindDN, bindPassword: ldap.bindPassword, baseDN: ldap.baseDN, usersDN: ldap.usersDN, groupsDN: ldap.groupsDN }],
      entitlements: [
        { id: 'directory-account', target: 'directory', kind: 'account' },
        { id: 'jit-crash', target: 'directory', kind: 'group', ref: group, jit: { eligible: true, maxDuration: '5m', approval: 'none' } },
      ],
      birthright: [{ name: 'everyone', grant: ['directory-account'] }],
      retries: { initialInterval: '100ms', maximumInterval: '500ms', maximumAttempts: 3 },
    }),
  );
  databaseUrl = await freshDatabase(testEnv.databaseUrl);
  database = createDb(databaseUrl, { max: 3 });
  queue = createHrEventQueue(redisConnection(testEnv.redisUrl, 'producer'), prefix);
  connection = await Connection.connect({ address: testEnv.temporalAddress });
  client = new Client({ connection });
  connector = createLdapConnector({ id: 'directory', type: 'ldap', url: ldap.url, bindDN: ldap.bindDN, bindPassword: ldap.bindPassword, baseDN: ldap.baseDN, usersDN: ldap.usersDN, groupsDN: ldap.groupsDN, disable: { method: 'ppolicy' }, timeout: 10_000 });
  worker = startWorker();
}, 60_000);
afterAll(async () => {
  await kill(worker);
  await connector?.close();
  await connection?.close();
  await queue?.close();
  await database?.close();
  if (databaseUrl) await dropDatabase(databaseUrl);
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function hired(employeeId: string): Promise<string> {
  const id = uniqueName('evt');
  const effectiveAt = new Date();
  await storeHrEvent(database.db, { id, employeeId, type: 'hire', effectiveAt, source: 'api', payload: { type: 'hire', employeeId, effectiveAt: effectiveAt.toISOString(), attributes: { givenName: 'Kay', familyName: employeeId } } }, 'test');
  await enqueueHrEvent(queue, id);
  return eventually(async () => {
    const [row] = await database.db
      .select({ identityId: identities.id, status: grants.status })
      .from(grants)
      .innerJoin(identities, eq(identities.id, grants.identityId))
      .where(and(eq(identities.employeeId, employeeId), eq(grants.entitlementId, 'directory-account')));
    return row?.status === 'active' && row.identityId;
  }, 90_000, 250);
}

async function elevate(identityId: string, durationMs: number): Promise<string> {
  const [row] = await database.db
    .insert(accessRequests)
    .values({ idempotencyKey: uniqueName('jit'), identityId, entitlementId: 'jit-crash', kind: 'jit', status: 'pending_approval', requestedBy: 'engine', justification: 'incident', durationMs })
    .returning({ id: accessRequests.id });
  await client.workflow.start('jitElevation', { workflowId: jitElevationWorkflowId(row!.id), taskQueue, args: [{ requestId: row!.id }] });
  return row!.id;
}

async function elevation(requestId: string) {
  const [row] = await database.db.select().from(accessRequests).where(eq(accessRequests.id, requestId));
  return row!;
}

describe('a worker killed with SIGKILL mid-elevation', () => {
  it('revokes once a worker is back: at once for an expiry that passed meanwhile, and on time for a later one', async () => {
    const early = uniqueEmployeeId('K');
    const late = uniqueEmployeeId('L');
    const [earlyId, lateId] = await Promise.all([hired(early), hired(late)]);
    const ending = await elevate(earlyId, 6_000);
    const lasting = await elevate(lateId, 40_000);
    await eventually(async () => (await elevation(ending)).expiresAt !== null && (await elevation(lasting)).expiresAt !== null, 30_000);
    expect(await connector.isGroupMember(early, group)).toBe(true);
    expect(await connector.isGroupMember(late, group)).toBe(true);

    await kill(worker);
    // No worker while the first expiry passes: nothing can revoke it yet.
    const first = await elevation(ending);
    await eventually(async () => Date.now() > first.expiresAt!.getTime() + 2_000, 15_000, 200);
    expect(await connector.isGroupMember(early, group)).toBe(true);
    expect((await elevation(ending)).revocationStatus).toBeNull();

    worker = startWorker();
    const revoked = await eventually(async () => {
      const row = await elevation(ending);
      return row.revocationStatus === 'revoked' && row;
    }, 60_000, 250);
    expect(await connector.isGroupMember(early, group)).toBe(false);
    // Its lag is the time no worker ran, and it is recorded as such.
    expect(revoked.revocationLagMs).toBeGreaterThan(2_000);

    // The later one is still on, and ends at its own expiry under the new worker.
    expect(await connector.isGroupMember(late, group)).toBe(true);
    const second = await eventually(async () => {
      const row = await elevation(lasting);
      return row.revocationStatus === 'revoked' && row;
    }, 60_000, 250);
    expect(second.revokedAt!.getTime()).toBeGreaterThanOrEqual(second.expiresAt!.getTime());
    expect(await connector.isGroupMember(late, group)).toBe(false);
  }, 180_000);
});
