// Replays recorded lifecycle histories against the current workflow code. test/histories
// holds committed recordings (old code's histories: a change that breaks determinism for
// running workflows fails here); test/.histories holds this run's fresh recordings.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import { Worker } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import { workflowBundle } from '../support/engine.js';
import { HISTORIES_DIR } from '../support/histories.js';

const COMMITTED_DIR = path.resolve(import.meta.dirname, '../histories');

function recordings(): Array<{ workflowId: string; history: unknown; file: string }> {
  return [COMMITTED_DIR, HISTORIES_DIR]
    .filter((dir) => existsSync(dir))
    .flatMap((dir) => readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => path.join(dir, f)))
    .map((file) => ({ ...JSON.parse(readFileSync(file, 'utf8')), file }));
}

describe('workflow replay', () => {
  it('replays every recorded history without non-determinism', async () => {
    const histories = recordings();
    expect(histories.length).toBeGreaterThan(0); // the committed ones at least
    const results = Worker.runReplayHistories(
      { workflowBundle: await workflowBundle(), replayName: 'jml-replay' },
      histories.map(({ workflowId, history }) => ({ workflowId, history: historyFromJSON(history) })),
    );
    const failures: string[] = [];
    let count = 0;
    for await (const result of results) {
      count += 1;
      if (result.error) failures.push(`${result.workflowId}: ${result.error.message}`);
    }
    expect(failures).toEqual([]);
    expect(count).toBe(histories.length);
  });
});
