// The entitlement catalogue lives in the config; this mirrors it into Postgres so requests
// and grants can reference it. Entitlements removed from the config are kept (grants may
// still point at them) but are no longer offered.
import { sql } from 'drizzle-orm';
import type { JmlConfig } from '../domain/config.js';
import { writeAudit } from './audit.js';
import type { Db } from './client.js';
import { entitlements } from './schema.js';

export async function syncEntitlements(db: Db, config: JmlConfig, actor = 'config'): Promise<number> {
  const birthrightIds = new Set(config.birthright.flatMap((rule) => rule.grant));
  const rows = config.entitlements.map((e) => ({
    id: e.id,
    name: e.name ?? null,
    target: e.target,
    kind: e.kind,
    targetRef: e.ref ?? null,
    risk: e.risk,
    owner: e.owner ?? null,
    birthright: birthrightIds.has(e.id),
    requestable: e.requestable,
    // Elevation is possible for someone (who exactly is the policy's business).
    jitEligible: e.jit !== undefined && e.jit.eligible !== false,
    jitMaxDurationMs: e.jit?.maxDuration ?? null,
    updatedAt: new Date(),
  }));
  return db.transaction(async (tx) => {
    const changed = await tx
      .insert(entitlements)
      .values(rows)
      .onConflictDoUpdate({
        target: entitlements.id,
        set: {
          name: sql`excluded.name`,
          target: sql`excluded.target`,
          kind: sql`excluded.kind`,
          targetRef: sql`excluded.target_ref`,
          risk: sql`excluded.risk`,
          owner: sql`excluded.owner`,
          birthright: sql`excluded.birthright`,
          requestable: sql`excluded.requestable`,
          jitEligible: sql`excluded.jit_eligible`,
          jitMaxDurationMs: sql`excluded.jit_max_duration_ms`,
          updatedAt: sql`excluded.updated_at`,
        },
        // Only rows that really differ count as changes worth an audit row.
        setWhere: sql`(${entitlements.name}, ${entitlements.target}, ${entitlements.kind}, ${entitlements.targetRef}, ${entitlements.risk}, ${entitlements.owner}, ${entitlements.birthright}, ${entitlements.requestable}, ${entitlements.jitEligible}, ${entitlements.jitMaxDurationMs})
          is distinct from (excluded.name, excluded.target, excluded.kind, excluded.target_ref, excluded.risk, excluded.owner, excluded.birthright, excluded.requestable, excluded.jit_eligible, excluded.jit_max_duration_ms)`,
      })
      .returning({ id: entitlements.id });
    for (const { id } of changed) {
      await writeAudit(tx, { actor, action: 'entitlement.synced', subjectType: 'entitlement', subjectId: id, after: rows.find((r) => r.id === id) });
    }
    return changed.length;
  });
}
