// Group commit of the inbox: concurrent stores share transactions, yet each caller gets its
// own answer, a repeated id is created once, and the audit chain stays intact.
import { eq, inArray } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyAuditChain } from '../../db/audit.js';
import { createDb, type DbHandle } from '../../db/client.js';
import { createInboxWriter, type NewHrEvent } from '../../db/inbox.js';
import { auditLog, hrEvents } from '../../db/schema.js';
import { testEnv, uniqueName } from '../support/env.js';

let handle: DbHandle;
beforeAll(() => {
  handle = createDb(testEnv.databaseUrl, { max: 4 });
});
afterAll(async () => {
  await handle?.close();
});

const event = (id: string): NewHrEvent => ({ id, employeeId: 'E1', type: 'update', effectiveAt: new Date(), source: 'api', payload: { n: id } });

describe('inbox writer (group commit)', () => {
  it('stores 200 concurrent events, each once, with one audit row each', async () => {
    const writer = createInboxWriter(handle.db, { maxBatch: 50 });
    const ids = Array.from({ length: 200 }, () => uniqueName('grp'));
    // Every id twice, interleaved: the second store of an id must report created: false.
    const results = await Promise.all([...ids, ...ids].map((id) => writer.store(handle.db, event(id), 'test')));
    expect(results.filter((r) => r.created)).toHaveLength(200);
    expect(new Set(results.filter((r) => r.created).map((r) => r.row.id))).toEqual(new Set(ids));
    expect(results.every((r, i) => r.row.id === [...ids, ...ids][i])).toBe(true);
    const rows = await handle.db.select({ id: hrEvents.id }).from(hrEvents).where(inArray(hrEvents.id, ids));
    expect(rows).toHaveLength(200);
    const audit = await handle.db.select({ id: auditLog.subjectId }).from(auditLog).where(inArray(auditLog.subjectId, ids));
    expect(audit).toHaveLength(200);
    expect((await verifyAuditChain(handle.db)).ok).toBe(true);
  });

  it('answers a repeat of an earlier batch with the stored row', async () => {
    const writer = createInboxWriter(handle.db);
    const id = uniqueName('rep');
    const first = await writer.store(handle.db, event(id), 'test');
    const again = await writer.store(handle.db, { ...event(id), payload: { changed: true } }, 'test');
    expect(first.created).toBe(true);
    expect(again).toMatchObject({ created: false, row: { id, payload: { n: id } } });
  });

  it('stores the good events of a batch when one of them is refused', async () => {
    const writer = createInboxWriter(handle.db);
    const good = [uniqueName('ok'), uniqueName('ok')];
    const bad = { ...event(uniqueName('bad')), type: 'promote' as never }; // the CHECK constraint refuses it
    const outcomes = await Promise.allSettled([writer.store(handle.db, event(good[0]!), 'test'), writer.store(handle.db, bad, 'test'), writer.store(handle.db, event(good[1]!), 'test')]);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(await handle.db.select().from(hrEvents).where(inArray(hrEvents.id, good))).toHaveLength(2);
    expect(await handle.db.select().from(hrEvents).where(eq(hrEvents.id, bad.id))).toHaveLength(0);
  });
});
