// The append-only audit log. Each row carries the hash of the previous one, so removing or
// editing a row breaks the chain, and verifyAuditChain finds where.
import { createHash } from 'node:crypto';
import { asc, sql } from 'drizzle-orm';
import { canonicalJson } from '../domain/canonical-json.js';
import type { DbOrTx, Tx } from './client.js';
import { auditLog } from './schema.js';

export const GENESIS_HASH = '0'.repeat(64);
// Writers are serialised by advisory lock 7310001, taken inside audit_append() (migration 0003).

export interface AuditEntry {
  actor: string;
  action: string;
  subjectType: string;
  subjectId: string;
  before?: unknown;
  after?: unknown;
  correlationId?: string | null;
}


/** The canonical text each row's hash covers, after the previous row's hash. */
function rowBody(row: { at: Date } & AuditEntry): string {
  return canonicalJson({
    at: row.at.toISOString(),
    actor: row.actor,
    action: row.action,
    subjectType: row.subjectType,
    subjectId: row.subjectId,
    before: row.before ?? null,
    after: row.after ?? null,
    correlationId: row.correlationId ?? null,
  });
}

function rowHash(prevHash: string, row: { at: Date } & AuditEntry): string {
  return createHash('sha256').update(prevHash).update('\n').update(rowBody(row)).digest('hex');
}

/** Appends one audit row. Call it inside the transaction that makes the change. */
export async function writeAudit(tx: Tx, entry: AuditEntry): Promise<void> {
  await writeAuditBatch(tx, [entry]);
}

/**
 * Appends several rows under one lock and one read of the chain head (group commit for
 * the inbox). The lock is held until the transaction commits, so chain writers take turns:
 * batching is what keeps that from capping throughput.
 */
export async function writeAuditBatch(tx: Tx, entries: readonly AuditEntry[]): Promise<void> {
  if (entries.length === 0) return;
  // Millisecond precision, so the hash survives the timestamptz round trip.
  const at = new Date();
  const rows = entries.map((entry) => {
    const row = { ...entry, before: entry.before ?? null, after: entry.after ?? null, correlationId: entry.correlationId ?? null, at };
    return { ...row, at: at.toISOString(), body: rowBody(row) };
  });
  // The database takes the lock, reads the head, chains and inserts in one call
  // (migration 0003); the hashes are the ones verifyAuditChain recomputes here.
  await tx.execute(sql`select audit_append(${JSON.stringify(rows)}::jsonb)`);
}

/** Walks the chain; returns the seq of the first broken row, or null when intact. */
export async function verifyAuditChain(db: DbOrTx): Promise<{ ok: boolean; rows: number; brokenAt: number | null }> {
  const rows = await db.select().from(auditLog).orderBy(asc(auditLog.seq));
  let prevHash = GENESIS_HASH;
  for (const row of rows) {
    const expected = rowHash(prevHash, row);
    if (row.prevHash !== prevHash || row.hash !== expected) return { ok: false, rows: rows.length, brokenAt: row.seq };
    prevHash = row.hash;
  }
  return { ok: true, rows: rows.length, brokenAt: null };
}
