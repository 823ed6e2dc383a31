// The inbox writer's bounded wait (db/inbox.ts): an event whose transaction cannot begin in
// time is refused (the API answers 503), and when that transaction does begin later it
// leaves the event out, so a refused event is never stored behind the caller's back.
// Postgres is up here; its one pooled connection is simply taken until the test lets go.
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type DbHandle } from '../../db/client.js';
import { createInboxWriter, type NewHrEvent } from '../../db/inbox.js';
import { hrEvents } from '../../db/schema.js';
import { testEnv, uniqueName } from '../support/env.js';

let handle: DbHandle;
beforeAll(() => {
  handle = createDb(testEnv.databaseUrl, { max: 1 });
});
afterAll(async () => {
  await handle?.close();
});

const event = (id: string): NewHrEvent => ({ id, employeeId: 'E1', type: 'update', effectiveAt: new Date(), source: 'api', payload: { n: id } });

describe('inbox writer, bounded wait', () => {
  it('refuses an event that waited too long for its transaction, and never stores it afterwards', async () => {
    const writer = createInboxWriter(handle.db, { waitMs: 200 });
    let release!: () => void;
    const taken = new Promise<void>((resolve) => {
      void handle.db.transaction(async () => {
        resolve();
        await new Promise<void>((done) => (release = done));
      });
    });
    await taken;

    const refusedId = uniqueName('refused');
    await expect(writer.store(handle.db, event(refusedId), 'test')).rejects.toMatchObject({ code: 'DATABASE_UNAVAILABLE' });

    release();
    // Batches are written one after another: once this one is stored, the refused event's
    // transaction has begun and ended.
    const nextId = uniqueName('next');
    expect(await writer.store(handle.db, event(nextId), 'test')).toMatchObject({ created: true, row: { id: nextId } });
    expect(await handle.db.select({ id: hrEvents.id }).from(hrEvents).where(eq(hrEvents.id, refusedId))).toEqual([]);
  });
});
