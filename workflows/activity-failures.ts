// What the workflows read off an activity's failure: its message (for the records and
// alerts), and whether it was a read-back that did not find the change. One copy for the
// lifecycle and the access-request workflows.
import { ActivityFailure } from '@temporalio/workflow';
import { NOT_VERIFIED } from '../domain/grant-status.js';

/** The message of what failed: the activity's own error, not the wrapper Temporal puts round it. */
export function failureMessage(err: unknown): string {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  return cause instanceof Error ? cause.message : String(cause);
}

/** Whether an activity failure (its cause) is a read-back that did not find the change ("succeeded but not there"). */
export function isNotVerified(err: unknown): boolean {
  const cause = (err as { cause?: { type?: unknown } } | null)?.cause;
  return cause?.type === NOT_VERIFIED;
}
