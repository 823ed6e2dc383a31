import { eq } from 'drizzle-orm';
import { writeAudit } from '../db/audit.js';
import { identities } from '../db/schema.js';
import { ENGINE_ACTOR, type IdentityAttributes, type IdentityStatus } from '../domain/types.js';
import type { ActivityDeps } from './deps.js';

export interface UpsertIdentityInput {
  employeeId: string;
  status: IdentityStatus;
  /** Merged over what is stored: updates carry only the attributes that changed. */
  attributes: IdentityAttributes;
  hireDate?: string;
  terminationDate?: string | null;
  effectiveAt: string;
  eventId: string;
}

export interface IdentitySnapshot {
  id: string;
  employeeId: string;
  status: IdentityStatus;
  attributes: IdentityAttributes;
}

export function createIdentityActivities({ db }: ActivityDeps) {
  return {
    /** Creates or updates the person. Idempotent: applying the same input twice writes once. */
    async upsertIdentity(input: UpsertIdentityInput): Promise<IdentitySnapshot> {
      return db.transaction(async (tx) => {
        const [before] = await tx.select().from(identities).where(eq(identities.employeeId, input.employeeId)).for('update');
        const attributes = { ...(before?.attributes ?? {}), ...input.attributes };
        const values = {
          status: input.status,
          attributes,
          hireDate: input.hireDate ? new Date(input.hireDate) : (before?.hireDate ?? null),
          terminationDate: input.terminationDate === undefined ? (before?.terminationDate ?? null) : input.terminationDate ? new Date(input.terminationDate) : null,
          lastEffectiveAt: new Date(input.effectiveAt),
          updatedAt: new Date(),
        };
        const unchanged =
          before &&
          before.status === values.status &&
          JSON.stringify(before.attributes) === JSON.stringify(attributes) &&
          before.terminationDate?.getTime() === values.terminationDate?.getTime();
        if (before && unchanged) return { id: before.id, employeeId: before.employeeId, status: before.status as IdentityStatus, attributes };
        const [row] = before
          ? await tx.update(identities).set(values).where(eq(identities.id, before.id)).returning()
          : await tx.insert(identities).values({ employeeId: input.employeeId, ...values }).returning();
        if (!row) throw new Error('identity upsert returned no row');
        await writeAudit(tx, {
          actor: ENGINE_ACTOR,
          action: before ? 'identity.updated' : 'identity.created',
          subjectType: 'identity',
          subjectId: row.id,
          before: before ? { status: before.status, attributes: before.attributes } : null,
          after: { status: row.status, attributes: row.attributes },
          correlationId: input.eventId,
        });
        return { id: row.id, employeeId: row.employeeId, status: row.status as IdentityStatus, attributes: row.attributes };
      });
    },
  };
}
