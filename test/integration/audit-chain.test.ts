// The audit log's hash chain: intact after concurrent writers, broken (and located) after
// someone edits or deletes a row. Uses its own database, since tampering with the shared one
// would break every other file's chain check.
import { randomBytes } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyAuditChain, writeAudit } from '../../db/audit.js';
import { createDb, dropDatabase, ensureDatabase, runMigrations, type DbHandle } from '../../db/client.js';
import { testEnv } from '../support/env.js';

let handle: DbHandle;
let url: string;

beforeAll(async () => {
  const base = new URL(testEnv.databaseUrl);
  base.pathname = `/${base.pathname.slice(1)}_audit_${randomBytes(3).toString('hex')}`;
  url = base.toString();
  await ensureDatabase(url);
  await runMigrations(url);
  handle = createDb(url, { max: 8 });
});
afterAll(async () => {
  await handle?.close();
  await dropDatabase(url);
});

/** What only a superuser can do: run a statement with triggers switched off. */
async function asSuperuserWithoutTriggers(statement: ReturnType<typeof sql>): Promise<void> {
  await handle.db.transaction(async (tx) => {
    await tx.execute(sql`set local session_replication_role = replica`);
    await tx.execute(statement);
  });
}

describe('audit hash chain', () => {
  it('stays intact under concurrent writers', async () => {
    await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        handle.db.transaction((tx) => writeAudit(tx, { actor: 'test', action: 'thing.changed', subjectType: 'thing', subjectId: String(i), before: { n: i }, after: { n: i + 1, nested: { b: 1, a: [1, 'x'] } } })),
      ),
    );
    expect(await verifyAuditChain(handle.db)).toEqual({ ok: true, rows: 40, brokenAt: null });
  });

  it('refuses updates and deletes', async () => {
    await expect(handle.db.execute(sql`update audit_log set actor = 'mallory' where seq = 1`)).rejects.toMatchObject({ cause: { message: expect.stringMatching(/append-only/) } });
    await expect(handle.db.execute(sql`delete from audit_log where seq = 1`)).rejects.toMatchObject({ cause: { message: expect.stringMatching(/append-only/) } });
    expect((await verifyAuditChain(handle.db)).ok).toBe(true);
  });

  it('finds a row a superuser edited behind the trigger', async () => {
    await asSuperuserWithoutTriggers(sql`update audit_log set after = '{"n": 999}' where seq = 7`);
    expect(await verifyAuditChain(handle.db)).toMatchObject({ ok: false, brokenAt: 7 });
    await asSuperuserWithoutTriggers(sql`delete from audit_log`);
  });

  it('finds a deleted row', async () => {
    for (let i = 0; i < 5; i += 1) await handle.db.transaction((tx) => writeAudit(tx, { actor: 'test', action: 'a', subjectType: 's', subjectId: String(i) }));
    const [{ seq }] = (await handle.db.execute(sql`select min(seq)::int + 2 as seq from audit_log`)) as unknown as [{ seq: number }];
    await asSuperuserWithoutTriggers(sql`delete from audit_log where seq = ${seq}`);
    expect(await verifyAuditChain(handle.db)).toMatchObject({ ok: false, brokenAt: seq + 1 });
  });
});
