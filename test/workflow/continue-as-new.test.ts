// The lifecycle workflow continues-as-new before its history grows large, carrying its
// state: after the switch, a redelivered event is still recognised and dropped.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getHrEvent, storeHrEvent } from '../../db/inbox.js';
import { attributesOf, foldAsOf } from '../../domain/lifecycle.js';
import { hrEventSignal, lifecycle, lifecycleStateQuery } from '../../workflows/index.js';
import { eventually, startTestEngine, type TestEngine } from '../support/engine.js';
import { uniqueEmployeeId, uniqueName } from '../support/env.js';

let engine: TestEngine;
beforeAll(async () => {
  engine = await startTestEngine();
});
afterAll(async () => {
  await engine?.stop();
});

describe('continue-as-new', () => {
  it('starts a new run with the same state once the history limit is passed', async () => {
    const employeeId = uniqueEmployeeId();
    const workflowId = `lifecycle:${employeeId}`;
    // Started here (not by the ingest worker) so the limit can be low; the inbox rows are real.
    const signal = (eventId: string, type: 'hire' | 'update', attributes = {}) =>
      engine.client.workflow.signalWithStart(lifecycle, {
        workflowId,
        taskQueue: engine.taskQueue,
        args: [{ employeeId, historyLimit: 40 }],
        signal: hrEventSignal,
        signalArgs: [{ eventId, employeeId, type, effectiveAt: new Date().toISOString(), attributes }],
      });
    const hire = uniqueName('evt');
    const attributes = { givenName: 'Ada', familyName: 'Lovelace' };
    await storeHrEvent(engine.db, { id: hire, employeeId, type: 'hire', effectiveAt: new Date(), source: 'api', payload: { attributes } }, 'test');
    await signal(hire, 'hire', attributes);
    await eventually(async () => (await getHrEvent(engine.db, hire))?.status === 'applied');
    const firstRun = (await engine.client.workflow.getHandle(workflowId).describe()).runId;

    const updates: string[] = [];
    for (let i = 0; i < 6; i += 1) {
      const id = await engine.submit({ type: 'update', employeeId, attributes: { title: `T${i}` } });
      updates.push(id);
      await signal(id, 'update', { title: `T${i}` });
      await eventually(async () => (await getHrEvent(engine.db, id))?.status === 'applied');
    }
    const handle = engine.client.workflow.getHandle(workflowId);
    const { runId } = await handle.describe();
    expect(runId).not.toBe(firstRun);

    // The new run remembers what it has seen: a redelivery of the first update is dropped.
    const before = await handle.query(lifecycleStateQuery);
    await signal(updates[0]!, 'update', { title: 'T0' });
    const after = await handle.query(lifecycleStateQuery);
    expect(after?.events.map((e) => e.eventId)).toEqual(before?.events.map((e) => e.eventId));
    expect(after?.dirty).toBe(false);
    expect(after?.events.every((e) => e.outcome?.status === 'applied')).toBe(true);
    expect(attributesOf(foldAsOf(after!)).title).toBe('T5');
  });
});
