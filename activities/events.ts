// Activities around HR events and the lifecycle's own state: where each event ended up
// (applied, ignored with why, failed with an alert), and the person rebuilt from the
// database when a workflow run starts without carried state.
import { and, desc, eq, inArray } from 'drizzle-orm';
import { hrEventSignalOf, setHrEventStatus } from '../db/inbox.js';
import { hrEvents, identities } from '../db/schema.js';
import { compareEvents, initialState, type KnownEvent, type LifecycleState } from '../domain/lifecycle.js';
import { ENGINE_ACTOR, type HrEventStatus, type IdentityAttributes, type IdentityStatus } from '../domain/types.js';
import { raiseAlert, resolveAlerts } from '../services/alerts.js';
import type { ActivityDeps } from './deps.js';

/** Events handed to a workflow before, newest first; enough to rebuild any real person. */
const REBUILD_EVENTS = 400;

const eventFailedKey = (eventId: string) => `event_failed:${eventId}`;

export function createEventActivities({ db }: ActivityDeps) {
  return {
    /** Records where an HR event ended up; an event that now applies resolves its failure alert. */
    async setEventStatus(eventId: string, status: HrEventStatus, reason: string | null): Promise<void> {
      await setHrEventStatus(db, eventId, status, reason, ENGINE_ACTOR, {
        alongside: async (tx) => {
          if (status === 'applied' || status === 'ignored') await resolveAlerts(tx, [eventFailedKey(eventId)], `event ${status}`, eventId);
        },
      });
    },

    /** A step of this event failed for good: the event is `failed` with the error, and a person is told. */
    async markEventFailed(input: { eventId: string; employeeId: string; error: string; alert: boolean }): Promise<void> {
      await setHrEventStatus(db, input.eventId, 'failed', input.error.slice(0, 2000), ENGINE_ACTOR, {
        alongside: async (tx, event) => {
          if (!input.alert) return;
          const losesAccess = event.type === 'terminate' || event.type === 'rescind' || event.type === 'leave_start';
          await raiseAlert(
            tx,
            {
              kind: 'event_failed',
              severity: losesAccess ? 'critical' : 'warning',
              subject: `Applying the ${event.type} of ${input.employeeId} failed; retry with: jml retry ${input.eventId}`,
              details: { eventId: input.eventId, employeeId: input.employeeId, type: event.type, error: input.error.slice(0, 500) },
              dedupeKey: eventFailedKey(input.eventId),
            },
            input.eventId,
          );
        },
      });
    },

    /**
     * The person as the database knows them: their identity row and every event handed to a
     * workflow before. A run that starts without carried state begins here, never from nothing.
     */
    async loadLifecycleState(employeeId: string): Promise<LifecycleState> {
      const state = initialState(employeeId);
      const [identity] = await db.select().from(identities).where(eq(identities.employeeId, employeeId));
      const rows = await db
        .select()
        .from(hrEvents)
        .where(and(eq(hrEvents.employeeId, employeeId), inArray(hrEvents.status, ['dispatched', 'applied', 'ignored', 'failed'])))
        .orderBy(desc(hrEvents.effectiveAt))
        .limit(REBUILD_EVENTS);
      state.events = rows
        .map((row): KnownEvent => {
          const signal = hrEventSignalOf(row);
          const status = row.status as 'dispatched' | 'applied' | 'ignored' | 'failed';
          // A plain `dispatched` was never decided: decide it when due. The rest keep their outcome.
          const outcome = status === 'dispatched' && row.reason === null ? undefined : { status, reason: row.reason };
          return { eventId: signal.eventId, type: signal.type, at: row.effectiveAt.getTime(), effectiveAt: signal.effectiveAt, attributes: signal.attributes, ...(outcome ? { outcome } : {}) };
        })
        .sort(compareEvents);
      if (identity) {
        state.applied = {
          identityId: identity.id,
          status: identity.status as IdentityStatus,
          saved: {
            status: identity.status as IdentityStatus,
            attributes: identity.attributes as IdentityAttributes,
            hireDate: identity.hireDate?.toISOString() ?? null,
            terminationDate: identity.terminationDate?.toISOString() ?? null,
          },
          // Unknown: the first decision sets accounts explicitly, and erasure and request
          // cancellation are done again if due (both are idempotent).
        };
      }
      state.dirty = true;
      return state;
    },
  };
}
