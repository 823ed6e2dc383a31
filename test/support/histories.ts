// Integration tests record the histories of the workflows they ran; the replay test runs
// them against the current workflow code, so a non-deterministic change fails the suite.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';

export const HISTORIES_DIR = path.resolve(import.meta.dirname, '../.histories');

export async function saveHistory(client: Client, workflowId: string, name: string): Promise<void> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  mkdirSync(HISTORIES_DIR, { recursive: true });
  // The proto JSON form, the same as `temporal workflow show --output json` writes.
  writeFileSync(path.join(HISTORIES_DIR, `${name}.json`), `{"workflowId":${JSON.stringify(workflowId)},"history":${historyToJSON(history)}}`);
}
