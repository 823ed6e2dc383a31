// The append-only audit log. Each row carries the hash of the previous one, so removing or
// editing a row breaks the chain, and verifyAuditChain finds where.
import { createHash } from 'node:crypto';
import { asc, desc, sql } from 'drizzle-orm';
import type { DbOrTx, Tx } from './client.js';
import { auditLog } from './schema.js';

export const GENESIS_HASH = '0'.repeat(64);
// Any constant: serialises writers of the chain inside their transactions.
const AUDIT_LOCK_KEY = 7_310_001;

export interface AuditEntry {
  actor: string;
  action: string;
  subjectType: string;
  subjectId: string;
  before?: unknown;
  after?: unknown;
  correlationId?: string | null;
}

/** JSON with sorted keys, so the hash does not depend on key order after a jsonb round trip. */
function canonical(value: unknown): string {
  if (value === undefined || value === null) return 'null';
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    return `{${entries.sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

function rowHash(prevHash: string, row: { at: Date } & AuditEntry): string {
  const body = canonical({
    at: row.at.toISOString(),
    actor: row.actor,
    action: row.action,
    subjectType: row.subjectType,
    subjectId: row.subjectId,
    before: row.before ?? null,
    after: row.after ?? null,
    correlationId: row.correlationId ?? null,
  });
  return createHash('sha256').update(prevHash).update('\n').update(body).digest('hex');
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
  await tx.execute(sql`select pg_advisory_xact_lock(${AUDIT_LOCK_KEY})`);
  const [last] = await tx.select({ hash: auditLog.hash }).from(auditLog).orderBy(desc(auditLog.seq)).limit(1);
  let prevHash = last?.hash ?? GENESIS_HASH;
  // Millisecond precision, so the hash survives the timestamptz round trip.
  const at = new Date();
  const rows = entries.map((entry) => {
    const row = { ...entry, before: entry.before ?? null, after: entry.after ?? null, correlationId: entry.correlationId ?? null, at };
    const hash = rowHash(prevHash, row);
    const chained = { ...row, prevHash, hash };
    prevHash = hash;
    return chained;
  });
  // One statement: seq is drawn in VALUES order, which is the chain order.
  await tx.insert(auditLog).values(rows);
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
