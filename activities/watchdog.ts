// The SLA watchdog's one step: every grant or revocation still not final after
// `lifecycle.grantSla` in its status raises `grant_stuck`, saying where it is stuck (the step,
// the attempt, the last error); one alert per grant, counted when seen again. An alert whose
// grant has moved on is resolved here too (the read-backs resolve it as well, at once).
import { and, eq, inArray, lt, notInArray, sql } from 'drizzle-orm';
import { alerts, entitlements, grants, identities } from '../db/schema.js';
import { raiseAlert, resolveAlerts } from '../services/alerts.js';
import type { ActivityDeps } from './deps.js';

/** Not final: on its way to active or revoked. (`failed` has its own alert, grant_failed or revoke_failed.) */
const UNDERWAY = ['pending', 'provisioning', 'revoking'] as const;

/** Which step a grant in this status waits on. */
const STEP: Record<(typeof UNDERWAY)[number], string> = {
  pending: 'waiting to be provisioned (provisionGrant)',
  provisioning: 'provisionGrant / verifyGrant (read-back)',
  revoking: 'revokeGrant / verifyRevoked (read-back)',
};

export function createWatchdogActivities({ db, config }: ActivityDeps) {
  return {
    async checkGrantSla(): Promise<{ stuck: number; resolved: number }> {
      const slaMs = config.lifecycle.grantSla;
      const rows = await db
        .select({ grant: grants, employeeId: identities.employeeId, target: entitlements.target })
        .from(grants)
        .innerJoin(identities, eq(identities.id, grants.identityId))
        .innerJoin(entitlements, eq(entitlements.id, grants.entitlementId))
        .where(and(inArray(grants.status, [...UNDERWAY]), lt(grants.statusSince, sql`now() - ${`${slaMs} milliseconds`}::interval`)))
        .limit(1_000);
      const stuckKeys = rows.map(({ grant }) => `grant_stuck:${grant.id}`);
      return db.transaction(async (tx) => {
        for (const { grant, employeeId, target } of rows) {
          const status = grant.status as (typeof UNDERWAY)[number];
          const minutes = Math.floor((Date.now() - grant.statusSince.getTime()) / 60_000);
          await raiseAlert(
            tx,
            {
              kind: 'grant_stuck',
              // Access that should be gone and is not is the worse of the two.
              severity: status === 'revoking' ? 'critical' : 'warning',
              subject: `${status === 'revoking' ? 'Revoking' : 'Granting'} ${grant.entitlementId} ${status === 'revoking' ? 'from' : 'to'} ${employeeId} is not done after ${minutes} min: ${status}, attempt ${grant.attempts}`,
              details: { grantId: grant.id, employeeId, entitlementId: grant.entitlementId, target, grantStatus: status, step: STEP[status], attempts: grant.attempts, lastError: grant.lastError, since: grant.statusSince.toISOString(), slaMs },
              dedupeKey: `grant_stuck:${grant.id}`,
            },
            grant.requestId,
          );
        }
        // Open grant_stuck alerts whose grant is no longer stuck: their cause is gone.
        const stale = await tx
          .select({ dedupeKey: alerts.dedupeKey })
          .from(alerts)
          .where(and(eq(alerts.kind, 'grant_stuck'), inArray(alerts.status, ['open', 'acknowledged']), stuckKeys.length ? notInArray(alerts.dedupeKey, stuckKeys) : undefined));
        const resolved = await resolveAlerts(tx, stale.map((a) => a.dedupeKey), 'the grant is no longer stuck');
        return { stuck: rows.length, resolved };
      });
    },
  };
}
