// Reconciliation: what a target holds, read whole in pages, against what the engine believes
// (live grants by status, identities by status). The engine's view is authoritative:
//   drift_missing     a grant `active` whose account or membership the target does not show,
//                     or an account that should be enabled and is disabled;
//   drift_unexpected  a membership of a group the engine manages (an entitlement's ref) with
//                     no live grant (revoked access re-added, hand-added access), or an enabled
//                     account that has no live grant or whose person should have it disabled
//                     (a leaver's orphan, an OpenLDAP admin password reset clearing the lock).
// One alert per (target, person, entitlement) and kind. A grant on its way (pending,
// provisioning, revoking, failed) is not drift: its own alerts cover it. Every finding is read
// again, from the database and from the target, before it is raised, so a grant that moved
// while the listing was read is not taken for drift. With `repair` (or the target's
// autoRemediate) each finding is repaired through the connector and proven by read-back,
// audited `reconcile.repaired`, and its alert resolves; alerts whose finding is gone resolve.
import { ApplicationFailure } from '@temporalio/activity';
import { and, eq, inArray, ne, sql } from 'drizzle-orm';
import { writeAudit } from '../db/audit.js';
import { alerts, entitlements, grants, identities, reconcileRuns } from '../db/schema.js';
import { canonicalEmployeeId } from '../domain/employee-id.js';
import { ENGINE_ACTOR, type IdentityAttributes } from '../domain/types.js';
import { raiseAlert, resolveAlerts } from '../services/alerts.js';
import type { Connector } from './connectors/types.js';
import type { ActivityDeps } from './deps.js';

export const DRIFT_KINDS = ['drift_missing', 'drift_unexpected'] as const;
export type DriftKind = (typeof DRIFT_KINDS)[number];

export interface ReconcileCounts {
  /** Accounts and managed groups the target listed. */
  accounts: number;
  groups: number;
  drift_missing: number;
  drift_unexpected: number;
  repaired: number;
  repairFailed: number;
  /** Drift alerts resolved because their finding is gone or was repaired. */
  resolved: number;
  durationMs: number;
}

export interface ReconcileResult {
  runId: string;
  target: string;
  repair: boolean;
  counts: ReconcileCounts;
  /** Why the run could not finish (the target did not answer, it cannot be listed). */
  error?: string;
}

/** What a finding is about: the account's existence, its enabled state, or a group membership. */
type Aspect = 'account' | 'enabled' | 'membership';

interface Finding {
  kind: DriftKind;
  aspect: Aspect;
  employeeId: string;
  entitlementId: string;
  /** The group's reference (membership findings). */
  groupRef?: string;
  /** One line for people. */
  what: string;
}

const LIVE = ['pending', 'provisioning', 'active', 'failed', 'revoking'] as const;
type IdentityStatus = 'pre_hire' | 'active' | 'on_leave' | 'terminated' | 'rescinded';

/** Whether the person's account should be enabled; null when it may be either (pre-hire: pre-provisioned disabled, or not). */
function expectEnabled(status: IdentityStatus | undefined): boolean | null {
  if (status === 'active') return true;
  if (status === 'pre_hire') return null;
  return false; // on leave, left, rescinded
}

/** Findings read again at once: enough to hide the round trips, few enough not to crowd the target. */
const RECHECK_CONCURRENCY = 8;

/** Alerts raised per transaction. */
const RAISE_CHUNK = 100;

const chunked = <T>(list: T[], size: number): T[][] => Array.from({ length: Math.ceil(list.length / size) }, (_, i) => list.slice(i * size, (i + 1) * size));

/** `fn` over `items`, at most `limit` at a time, results in the items' order. */
async function mapConcurrently<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < items.length; i = next++) results[i] = await fn(items[i]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

export const driftKey = (kind: DriftKind, target: string, employeeId: string, entitlementId: string) => `${kind}:${target}:${employeeId}:${entitlementId}`;

/** Only what reconcile touches, so that a tool (bench/reconcile.ts) can run it without the rest of a worker. */
export type ReconcileDeps = Pick<ActivityDeps, 'db' | 'config' | 'connectors' | 'logger'>;

export function createReconcileActivities({ db, config, connectors, logger }: ReconcileDeps) {
  /** The engine's view of one (person, entitlement): the live grant's status, if any. */
  async function liveGrantStatus(employeeId: string, entitlementId: string): Promise<string | undefined> {
    const [row] = await db
      .select({ status: grants.status })
      .from(grants)
      .innerJoin(identities, eq(identities.id, grants.identityId))
      .where(and(eq(identities.employeeId, employeeId), eq(grants.entitlementId, entitlementId), ne(grants.status, 'revoked')));
    return row?.status;
  }

  /**
   * Reads the engine and the target again for one finding: true when the drift is still there.
   * A group is read again once per run (`groups`), however many of its members are findings.
   */
  async function stillThere(connector: Connector, finding: Finding, identityStatus: IdentityStatus | undefined, groups: Map<string, Promise<Set<string>>>): Promise<boolean> {
    const status = await liveGrantStatus(finding.employeeId, finding.entitlementId);
    if (finding.aspect === 'membership') {
      if (finding.kind === 'drift_missing' && status !== 'active') return false;
      if (finding.kind === 'drift_unexpected' && status !== undefined) return false;
      const ref = finding.groupRef!;
      let members = groups.get(ref);
      if (!members) groups.set(ref, (members = connector.listGroupMembers(ref).then((ids) => new Set(ids.map(canonicalEmployeeId)))));
      const member = (await members).has(finding.employeeId);
      return finding.kind === 'drift_missing' ? !member : member;
    }
    const account = await connector.readAccount(finding.employeeId);
    if (finding.kind === 'drift_missing') return status === 'active' && (finding.aspect === 'account' ? !account : account?.enabled === false);
    return account?.enabled === true && (status === undefined || (status === 'active' && expectEnabled(identityStatus) === false));
  }

  /** Repairs one finding through the connector and proves it by read-back; throws when it could not. */
  async function repair(connector: Connector, finding: Finding, identity: { status: IdentityStatus; attributes: IdentityAttributes } | undefined): Promise<void> {
    const { employeeId, groupRef } = finding;
    if (finding.aspect === 'membership') {
      if (finding.kind === 'drift_missing') await connector.addToGroup(employeeId, groupRef!);
      else await connector.removeFromGroup(employeeId, groupRef!);
      const member = await connector.isGroupMember(employeeId, groupRef!);
      if (member !== (finding.kind === 'drift_missing')) throw new Error(`read-back ${member ? 'still finds' : 'does not find'} ${employeeId} among the members of ${groupRef}`);
      return;
    }
    const enabled = finding.kind === 'drift_missing';
    if (finding.aspect === 'account') {
      await connector.ensureAccount({ employeeId, attributes: identity?.attributes ?? {}, enabled });
      if (enabled) await connector.setAccountEnabled(employeeId, true);
    } else {
      await connector.setAccountEnabled(employeeId, enabled);
    }
    const account = await connector.readAccount(employeeId);
    if (!account || account.enabled !== enabled) throw new Error(`read-back finds the account of ${employeeId} ${account ? (account.enabled ? 'enabled' : 'disabled') : 'absent'}`);
  }

  return {
    /** The targets a reconcile run covers: every configured one, or the one named. */
    async reconcileTargetIds(only: string | null): Promise<string[]> {
      const ids = config.targets.map((t) => t.id);
      if (only === null) return ids;
      if (!ids.includes(only)) throw ApplicationFailure.nonRetryable(`unknown target "${only}"`, 'ConfigError');
      return [only];
    },

    async reconcileTarget(input: { target: string; repair: boolean }): Promise<ReconcileResult> {
      const started = Date.now();
      const targetConfig = config.targets.find((t) => t.id === input.target);
      if (!targetConfig) throw ApplicationFailure.nonRetryable(`unknown target "${input.target}"`, 'ConfigError');
      const target = targetConfig.id;
      const doRepair = input.repair || targetConfig.autoRemediate === true;
      const [run] = await db.insert(reconcileRuns).values({ target, repair: doRepair }).returning({ id: reconcileRuns.id });
      if (!run) throw new Error('reconcile run insert returned no row');
      const counts: ReconcileCounts = { accounts: 0, groups: 0, drift_missing: 0, drift_unexpected: 0, repaired: 0, repairFailed: 0, resolved: 0, durationMs: 0 };
      const finish = async (error?: string): Promise<ReconcileResult> => {
        counts.durationMs = Date.now() - started;
        await db.update(reconcileRuns).set({ finishedAt: new Date(), counts: { ...counts }, error: error ?? null }).where(eq(reconcileRuns.id, run.id));
        return { runId: run.id, target, repair: doRepair, counts, ...(error ? { error } : {}) };
      };
      try {
        const connector = connectors.get(target);
        const listing = connector?.directory;
        if (!connector || !listing) return await finish(`target "${target}" cannot be listed by its connector`);

        // --- the engine's view ------------------------------------------------------------
        const managed = await db.select().from(entitlements).where(eq(entitlements.target, target));
        const accountEntitlement = managed.find((e) => e.kind === 'account');
        /** groupKey(ref) -> the entitlements naming that group. */
        const groupEntitlements = new Map<string, Array<{ id: string; ref: string }>>();
        for (const e of managed) {
          if (e.kind === 'account' || !e.targetRef) continue;
          const key = listing.groupKey(e.targetRef);
          groupEntitlements.set(key, [...(groupEntitlements.get(key) ?? []), { id: e.id, ref: e.targetRef }]);
        }
        const people = new Map<string, { status: IdentityStatus; attributes: IdentityAttributes }>();
        for (const row of await db.select({ employeeId: identities.employeeId, status: identities.status, attributes: identities.attributes }).from(identities)) {
          people.set(row.employeeId, { status: row.status as IdentityStatus, attributes: row.attributes });
        }
        /** entitlementId -> employeeId -> live grant status. */
        const believed = new Map<string, Map<string, string>>();
        if (managed.length) {
          const rows = await db
            .select({ employeeId: identities.employeeId, entitlementId: grants.entitlementId, status: grants.status })
            .from(grants)
            .innerJoin(identities, eq(identities.id, grants.identityId))
            .where(and(inArray(grants.status, [...LIVE]), inArray(grants.entitlementId, managed.map((e) => e.id))));
          for (const row of rows) {
            let byPerson = believed.get(row.entitlementId);
            if (!byPerson) believed.set(row.entitlementId, (byPerson = new Map()));
            byPerson.set(row.employeeId, row.status);
          }
        }

        // --- the target's view, a page at a time -------------------------------------------
        const findings: Finding[] = [];
        if (accountEntitlement) {
          const accountGrants = believed.get(accountEntitlement.id) ?? new Map<string, string>();
          const seen = new Set<string>();
          for await (const page of listing.listAccounts()) {
            for (const account of page) {
              counts.accounts++;
              seen.add(account.employeeId);
              const person = people.get(account.employeeId);
              if (!person) continue; // not a person the engine knows: not managed
              const status = accountGrants.get(account.employeeId);
              const base = { aspect: 'enabled' as const, employeeId: account.employeeId, entitlementId: accountEntitlement.id };
              const expected = expectEnabled(person.status);
              if (account.enabled && (status === undefined || (status === 'active' && expected === false))) {
                findings.push({ ...base, kind: 'drift_unexpected', what: `the account of ${account.employeeId} is enabled in ${target}, but the person is ${person.status}${status ? '' : ' and holds no account grant'}` });
              } else if (!account.enabled && status === 'active' && expected === true) {
                findings.push({ ...base, kind: 'drift_missing', what: `the account of ${account.employeeId} is disabled in ${target}, but the person is active` });
              }
            }
          }
          for (const [employeeId, status] of accountGrants) {
            if (status === 'active' && !seen.has(employeeId)) {
              findings.push({ kind: 'drift_missing', aspect: 'account', employeeId, entitlementId: accountEntitlement.id, what: `the account of ${employeeId} is not in ${target}, but its grant is active` });
            }
          }
        }
        const groupsSeen = new Set<string>();
        const membershipFindings = (entitlement: { id: string; ref: string }, members: Set<string>) => {
          const holders = believed.get(entitlement.id) ?? new Map<string, string>();
          for (const employeeId of members) {
            if (holders.has(employeeId)) continue; // active, or on its way (its own alerts cover it)
            findings.push({ kind: 'drift_unexpected', aspect: 'membership', employeeId, entitlementId: entitlement.id, groupRef: entitlement.ref, what: `${employeeId} is a member of ${entitlement.ref} in ${target} without a live grant of ${entitlement.id}` });
          }
          for (const [employeeId, status] of holders) {
            if (status === 'active' && !members.has(employeeId)) {
              findings.push({ kind: 'drift_missing', aspect: 'membership', employeeId, entitlementId: entitlement.id, groupRef: entitlement.ref, what: `${employeeId} is not a member of ${entitlement.ref} in ${target}, but the grant of ${entitlement.id} is active` });
            }
          }
        };
        for await (const page of listing.listGroups()) {
          for (const group of page) {
            const key = listing.groupKey(group.ref);
            const named = groupEntitlements.get(key);
            if (!named) continue; // a group the engine does not manage
            counts.groups++;
            groupsSeen.add(key);
            const members = new Set(group.members);
            for (const entitlement of named) membershipFindings(entitlement, members);
          }
        }
        // A managed group that does not exist has no members.
        for (const [key, named] of groupEntitlements) {
          if (!groupsSeen.has(key)) for (const entitlement of named) membershipFindings(entitlement, new Set());
        }

        // --- each finding read again, raised, and (asked to) repaired ---------------------------
        const open = new Set<string>();
        // Read again several at a time (each is a database query and two or three target reads);
        // raising and repairing stay one at a time, in the order found.
        const regroups = new Map<string, Promise<Set<string>>>();
        const confirmed = await mapConcurrently(findings, RECHECK_CONCURRENCY, (finding) => stillThere(connector, finding, people.get(finding.employeeId)?.status, regroups));
        const raised = findings
          .filter((_, i) => confirmed[i])
          .map((finding) => ({
            finding,
            dedupeKey: driftKey(finding.kind, target, finding.employeeId, finding.entitlementId),
            details: { target, employeeId: finding.employeeId, entitlementId: finding.entitlementId, aspect: finding.aspect, ...(finding.groupRef ? { groupRef: finding.groupRef } : {}), runId: run.id },
          }));
        // Raised before any repair, so that a repair's alert resolving says it was there. A
        // transaction per chunk: the audit chain is taken once per chunk, not once per alert.
        for (const chunk of chunked(raised, RAISE_CHUNK)) {
          await db.transaction(async (tx) => {
            for (const { finding, dedupeKey, details } of chunk) {
              await raiseAlert(tx, { kind: finding.kind, severity: finding.kind === 'drift_unexpected' ? 'critical' : 'warning', subject: `Drift: ${finding.what}`, details, dedupeKey }, run.id);
            }
          });
        }
        for (const { finding, dedupeKey, details } of raised) {
          counts[finding.kind]++;
          if (!doRepair) {
            open.add(dedupeKey);
            continue;
          }
          const person = people.get(finding.employeeId);
          try {
            await repair(connector, finding, person);
          } catch (err) {
            counts.repairFailed++;
            open.add(dedupeKey);
            const error = (err as Error).message.slice(0, 500);
            await db.transaction((tx) =>
              writeAudit(tx, { actor: ENGINE_ACTOR, action: 'reconcile.repair_failed', subjectType: 'identity', subjectId: finding.employeeId, after: { ...details, kind: finding.kind, error }, correlationId: run.id }),
            );
            continue;
          }
          counts.repaired++;
          await db.transaction(async (tx) => {
            await writeAudit(tx, { actor: ENGINE_ACTOR, action: 'reconcile.repaired', subjectType: 'identity', subjectId: finding.employeeId, after: { ...details, kind: finding.kind, verified: true }, correlationId: run.id });
            counts.resolved += await resolveAlerts(tx, [dedupeKey], 'repaired by reconcile, verified by read-back', run.id);
          });
        }

        // --- drift alerts of this target whose finding is gone -----------------------------------
        const stale = await db
          .select({ dedupeKey: alerts.dedupeKey })
          .from(alerts)
          .where(and(inArray(alerts.kind, [...DRIFT_KINDS]), ne(alerts.status, 'resolved'), sql`${alerts.details}->>'target' = ${target}`));
        const gone = stale.map((a) => a.dedupeKey).filter((key) => !open.has(key));
        if (gone.length) counts.resolved += await db.transaction((tx) => resolveAlerts(tx, gone, 'no longer found by reconcile', run.id));
        const result = await finish();
        logger.info({ target, ...counts }, 'reconcile finished');
        return result;
      } catch (err) {
        const error = (err as Error).message.slice(0, 2000);
        logger.warn({ target, err: error }, 'reconcile failed');
        return finish(error);
      }
    },
  };
}
