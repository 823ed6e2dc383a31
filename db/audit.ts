// The append-only audit log. Each row carries the hash of the previous one, so removing or
// editing a row breaks the chain, and verifyAuditChain finds where.
import { createHash } from 'node:crypto';
import { and, asc, desc, gt, lte, sql } from 'drizzle-orm';
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

export interface AuditChainReport {
  ok: boolean;
  /** Rows checked: all up to the head when intact, up to and including the broken one otherwise. */
  rows: number;
  /** The newest row when the walk began (null: the log is empty). Rows appended later are the next walk's. */
  head: { seq: number; hash: string } | null;
  /** The first row whose link or content is wrong, and what is wrong with it. */
  broken: { seq: number; problem: string } | null;
}

type AuditRow = typeof auditLog.$inferSelect;

/** What is wrong with `row` following `prev` (null: it is the first row), or null. */
function linkProblem(prev: { seq: number; hash: string } | null, row: AuditRow): string | null {
  if (!prev && row.prevHash !== GENESIS_HASH) return 'it is the first row but its prev_hash is not the genesis hash: rows before it were removed';
  if (prev && row.prevHash !== prev.hash) {
    const absent = row.seq - prev.seq > 1 ? ` (seq ${prev.seq + 1}${row.seq - prev.seq > 2 ? `..${row.seq - 1}` : ''} absent)` : '';
    return `its prev_hash is not the hash of the row before it, seq ${prev.seq}: a row between them was removed${absent}, or that row was rewritten with a new hash`;
  }
  if (row.hash !== rowHash(row.prevHash, row)) return 'its content does not match its hash: the row was changed after it was written';
  return null;
}

/**
 * Walks the chain from the first row to the head, `batchSize` rows at a time by seq (a long
 * log is never in memory at once), and stops at the first broken link. Seqs are drawn under
 * the chain lock, so no row below the head can appear later: the walk sees a fixed chain.
 */
export async function walkAuditChain(db: DbOrTx, options: { batchSize?: number } = {}): Promise<AuditChainReport> {
  const batchSize = options.batchSize ?? 1000;
  const [head = null] = await db.select({ seq: auditLog.seq, hash: auditLog.hash }).from(auditLog).orderBy(desc(auditLog.seq)).limit(1);
  if (!head) return { ok: true, rows: 0, head: null, broken: null };
  let prev: { seq: number; hash: string } | null = null;
  let rows = 0;
  for (;;) {
    const batch: AuditRow[] = await db
      .select()
      .from(auditLog)
      .where(and(gt(auditLog.seq, prev?.seq ?? 0), lte(auditLog.seq, head.seq)))
      .orderBy(asc(auditLog.seq))
      .limit(batchSize);
    for (const row of batch) {
      rows += 1;
      const problem = linkProblem(prev, row);
      if (problem) return { ok: false, rows, head, broken: { seq: row.seq, problem } };
      prev = { seq: row.seq, hash: row.hash };
    }
    if (batch.length < batchSize) return { ok: true, rows, head, broken: null };
  }
}

/** Walks the chain; returns the seq of the first broken row, or null when intact. */
export async function verifyAuditChain(db: DbOrTx): Promise<{ ok: boolean; rows: number; brokenAt: number | null }> {
  const report = await walkAuditChain(db);
  return { ok: report.ok, rows: report.rows, brokenAt: report.broken?.seq ?? null };
}
