// For tests of the mass-leaver brake's rolling window (services/feeds.ts): time passing,
// done on the data rather than by waiting out the window.
import { eq, inArray, sql } from 'drizzle-orm';
import { discardBatch } from '../../services/feeds.js';
import { hrBatches, hrEvents } from '../../db/schema.js';
import type { TestEngine } from './engine.js';

/** Moves terminations (all, or these ids) back past the window, as if it had gone by. */
export async function ageOutOfWindow(engine: TestEngine, ids?: string[]): Promise<void> {
  const back = `${engine.config.brake.window + 60_000} milliseconds`;
  await engine.db
    .update(hrEvents)
    .set({ receivedAt: sql`${hrEvents.receivedAt} - ${back}::interval` })
    .where(ids ? inArray(hrEvents.id, ids) : eq(hrEvents.type, 'terminate'));
}

/** Nothing held and an empty window: what a test of the brake starts from. */
export async function startWindowAfresh(engine: TestEngine): Promise<void> {
  for (const batch of await engine.db.select().from(hrBatches).where(eq(hrBatches.status, 'held'))) {
    await discardBatch(engine.db, batch.id, 'test', 'start afresh');
  }
  await ageOutOfWindow(engine);
}
