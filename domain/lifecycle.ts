// The lifecycle's one brain: pure, deterministic, safe to import from workflows.
//
// The workflow keeps every HR event it has taken in for a person. At each wake-up (an event
// arrived, a timer is due, an operator asked for a retry) it asks `decide` what the person
// should look like now and what to do about it; it executes the effects through activities
// and tells the core which of them succeeded (`recordEffect`). `explain` replays the same
// functions without executing anything. No rule of the lifecycle lives anywhere else.
//
// Why a fold rather than "apply each event as it comes": HR delivers late, twice and
// swapped, and the ingestion worker dispatches concurrently. So the person's state is a
// function of the SET of events received, folded in effective order (ties: event type,
// then id), never of the delivery order:
// - attributes are last-writer-wins per field by effective time;
// - the later of two leave_* events wins;
// - a terminate or rescind is terminal: a hire after it is void (a future starter
//   terminated or rescinded before the start never starts), and only a rehire effective
//   after it brings the person back;
// - whatever the fold says, the effects converge the targets to it: nobody terminal holds
//   anything, and an update to a leaver changes attributes only.
import { evaluateBirthright, type BirthrightGrant } from './birthright.js';
import { diffEntitlements, MOVER_ATTRIBUTES } from './entitlement-diff.js';
import type { PolicySnapshot } from './policy.js';
import { exponentialBackoffMs } from './retry-delay.js';
import type { EntitlementKind, GrantStatus, HrEventSignal, HrEventType, IdentityAttributes, IdentityStatus, RequestKind } from './types.js';

// --- state ------------------------------------------------------------------------------

export type EventOutcomeStatus = 'dispatched' | 'applied' | 'ignored' | 'failed';

export interface KnownEvent {
  eventId: string;
  type: HrEventType;
  /** Epoch ms of effectiveAt. */
  at: number;
  effectiveAt: string;
  attributes: IdentityAttributes;
  /** What was last recorded for it; undefined until it is due (or when a retry asks again). */
  outcome?: { status: EventOutcomeStatus; reason: string | null };
}

/** Who wrote a value, so a later writer (by effective order) can be told from an earlier one. */
export interface Writer {
  at: number;
  type: HrEventType;
  eventId: string;
}

export interface Field extends Writer {
  value: unknown;
}

/** A person folded from their events: what HR says, as of some moment. */
export interface Folded {
  employment: 'none' | 'hired' | 'terminated' | 'rescinded';
  /** The event that set `employment`, and the start of the current employment episode. */
  employmentEventId?: string;
  employmentAt?: number;
  hireAt?: number;
  hireEventId?: string;
  terminatedAt?: number;
  leave?: Writer & { onLeave: boolean };
  fields: Record<string, Field>;
}

export interface MoverTimer {
  dueAt: number;
  entitlementIds: string[];
  eventId: string;
}

/** What the engine has made true so far (in the database and the targets). */
export interface AppliedState {
  identityId?: string;
  status: IdentityStatus | 'none';
  /** The identity row as last written, to know when it needs writing again. */
  saved?: { status: IdentityStatus; attributes: IdentityAttributes; hireDate: string | null; terminationDate: string | null };
  /** Unknown (undefined) after a rebuild: the next decision sets it explicitly. */
  accountsEnabled?: boolean;
  /** Accounts deleted for this episode (termination time, or 0 for a rescind). */
  erasedFor?: number;
  /** Pending requests cancelled for this terminal episode (its event id). */
  requestsCancelledFor?: string;
  /**
   * The attributes the accounts were last brought up to date with (`updateAccounts`).
   * Undefined until the first change after the account was made: the attributes saved then
   * are the ones it was made with.
   */
  accountAttributes?: IdentityAttributes;
}

export interface LifecycleState {
  employeeId: string;
  /** Every event taken in, not yet compacted; sorted by effective order. */
  events: KnownEvent[];
  /** Older events folded into a snapshot to keep the state small (see compact). */
  base?: { folded: Folded; before: number; eventIds: string[] };
  applied: AppliedState;
  timers: MoverTimer[];
  /** Something arrived (an event, a retry) that the next decision must look at now. */
  dirty: boolean;
  /**
   * An effect failed for good (its alert is raised): what is overdue is not retried in a
   * tight loop, but at `retryAt`, on a capped backoff, or at the next event or an
   * operator's retry, whichever comes first.
   */
  stalled?: boolean;
  retryAt?: number;
  /** Consecutive decisions that failed, for the backoff; 0 after one that succeeds. */
  failures?: number;
  /** Events an operator asked to retry, until the next decision. */
  retrying?: string[];
  /**
   * Targets the last failed decision could not reach: its retry waits for their recovery
   * (workflows/target-recovery.ts), with `retryAt` only as a late fallback.
   */
  waitingOn?: string[];
  /** Target recoveries that released this person and wait to hear that it tried again. */
  releasedBy?: string[];
}

export function initialState(employeeId: string): LifecycleState {
  return { employeeId, events: [], applied: { status: 'none' }, timers: [], dirty: false };
}

// --- inputs -----------------------------------------------------------------------------

export interface Holding {
  grantId: string;
  entitlementId: string;
  kind: EntitlementKind;
  target: string;
  grantStatus: GrantStatus;
  requestKind: RequestKind;
}

export interface Holdings {
  holdings: Holding[];
  /** Entitlements that approved (non-birthright) requests keep due. */
  requestedEntitlements: string[];
}

export type RevokeReason = 'leaver' | 'mover' | 'rescinded' | 'expired' | 'manual' | 'withdrawn' | 'review';

export type Effect =
  | { kind: 'saveIdentity'; status: IdentityStatus; attributes: IdentityAttributes; hireDate: string | null; terminationDate: string | null; effectiveAt: string; eventId: string }
  | {
      kind: 'provision';
      items: BirthrightGrant[];
      enabled: boolean;
      reenable: boolean;
      eventId: string;
      /**
       * Entitlements whose grant had already failed: tried again in passing. Failing again
       * does not fail an unrelated event (the grant keeps its own failed status and alert),
       * unless an operator asked to retry this very event.
       */
      retried: string[];
      retryRequested: boolean;
    }
  | { kind: 'revoke'; holdings: Holding[]; reason: RevokeReason; eventId: string; why: string }
  | { kind: 'setAccountsEnabled'; enabled: boolean; reason: string; eventId: string }
  /** The person's attributes changed: every account they hold is brought up to date (created `enabled` if it went missing). */
  | { kind: 'updateAccounts'; attributes: IdentityAttributes; enabled: boolean; eventId: string }
  | { kind: 'deleteAccounts'; reason: string; eventId: string; episode: number }
  | { kind: 'cancelRequests'; reason: string; eventId: string }
  | { kind: 'moverReview'; entitlementIds: string[]; eventId: string }
  | { kind: 'eventOutcome'; eventId: string; status: EventOutcomeStatus; reason: string | null };

export interface Decision {
  /** What HR says the person is now. */
  status: IdentityStatus | 'none';
  effects: Effect[];
}

// --- ordering and the fold --------------------------------------------------------------

/** Ties at one instant: the day's natural order, so the result never depends on delivery. */
const RANK: Record<HrEventType, number> = { hire: 0, rehire: 1, update: 2, leave_start: 3, leave_end: 4, terminate: 5, rescind: 6 };

export function compareEvents(a: Pick<KnownEvent, 'at' | 'type' | 'eventId'>, b: Pick<KnownEvent, 'at' | 'type' | 'eventId'>): number {
  return a.at - b.at || RANK[a.type] - RANK[b.type] || (a.eventId < b.eventId ? -1 : a.eventId > b.eventId ? 1 : 0);
}


export function emptyFold(): Folded {
  return { employment: 'none', fields: {} };
}

/** One event onto the fold. Events must come in effective order for employment; fields and leave are order-free. */
export function foldEvent(f: Folded, e: KnownEvent): void {
  for (const [key, value] of Object.entries(e.attributes)) {
    const current = f.fields[key];
    if (!current || compareEvents(e, current) > 0) f.fields[key] = { value, at: e.at, type: e.type, eventId: e.eventId };
  }
  switch (e.type) {
    case 'hire':
      // A hire after a terminate or rescind is void: only a rehire brings the person back.
      if (f.employment === 'none') open(f, e);
      break;
    case 'rehire':
      if (f.employment !== 'hired') open(f, e);
      break;
    case 'terminate':
      if (f.employment === 'none' || f.employment === 'hired') {
        f.employment = 'terminated';
        f.employmentEventId = e.eventId;
        f.employmentAt = e.at;
        f.terminatedAt = e.at;
      }
      break;
    case 'rescind':
      if (f.employment === 'none' || f.employment === 'hired') {
        f.employment = 'rescinded';
        f.employmentEventId = e.eventId;
        f.employmentAt = e.at;
      }
      break;
    case 'leave_start':
    case 'leave_end':
      if (!f.leave || compareEvents(e, f.leave) > 0) f.leave = { onLeave: e.type === 'leave_start', at: e.at, type: e.type, eventId: e.eventId };
      break;
    case 'update':
      break;
  }
}

function open(f: Folded, e: KnownEvent): void {
  f.employment = 'hired';
  f.employmentEventId = e.eventId;
  f.employmentAt = e.at;
  f.hireAt = e.at;
  f.hireEventId = e.eventId;
  delete f.terminatedAt;
}

function cloneFold(f: Folded): Folded {
  return { ...f, fields: { ...f.fields }, ...(f.leave ? { leave: { ...f.leave } } : {}) };
}

/** The fold of every known event effective at or before `asOf` (all of them by default). */
export function foldAsOf(state: LifecycleState, asOf = Number.POSITIVE_INFINITY): Folded {
  const f = state.base ? cloneFold(state.base.folded) : emptyFold();
  for (const e of state.events) if (e.at <= asOf) foldEvent(f, e);
  return f;
}

export function attributesOf(f: Folded): IdentityAttributes {
  return Object.fromEntries(Object.entries(f.fields).map(([k, v]) => [k, v.value])) as IdentityAttributes;
}

// --- what HR says now -------------------------------------------------------------------

export interface Desired {
  status: IdentityStatus | 'none';
  folded: Folded;
  attributes: IdentityAttributes;
  /** Birthright access should be in place (pre-provisioned, active or on leave). */
  provisioned: boolean;
  /** Accounts should be enabled (only meaningful when provisioned). */
  enabled: boolean;
  /** A future hire or rehire that will open an episode, when the person is not employed now. */
  upcoming?: KnownEvent;
}

/** The first future hire or rehire that really opens an employment episode (not voided by an earlier terminal event). */
function upcomingStart(state: LifecycleState, now: number): KnownEvent | undefined {
  for (const e of state.events) {
    if (e.at <= now || (e.type !== 'hire' && e.type !== 'rehire')) continue;
    const f = foldAsOf(state, e.at);
    if (f.employment === 'hired' && f.hireEventId === e.eventId) return e;
  }
  return undefined;
}

export function desiredAt(state: LifecycleState, now: number, policy: PolicySnapshot): Desired {
  const current = foldAsOf(state, now);
  const hired = current.employment === 'hired';
  const upcoming = hired ? undefined : upcomingStart(state, now);
  if (upcoming) {
    // A future starter (or returner): the person exists as pre_hire, carrying the data the
    // hire brings; accounts are pre-provisioned `preProvisionLead` before the start.
    const terminalNow = current.employment === 'terminated' || current.employment === 'rescinded';
    const provisioned = now >= upcoming.at - policy.lifecycle.preProvisionLead;
    // A returner stays what they are now (holding nothing, erased on time) until the
    // rehire's pre-provisioning begins.
    if (terminalNow && !provisioned) {
      return { status: current.employment as IdentityStatus, folded: current, attributes: attributesOf(current), provisioned: false, enabled: false, upcoming };
    }
    const atStart = foldAsOf(state, upcoming.at);
    return { status: 'pre_hire', folded: atStart, attributes: attributesOf(atStart), provisioned, enabled: !policy.lifecycle.preProvisionDisabled, upcoming };
  }
  const anyHire = state.events.some((e) => e.type === 'hire' || e.type === 'rehire') || (state.base?.folded.hireEventId !== undefined);
  if (current.employment === 'none' || !anyHire) {
    return { status: 'none', folded: current, attributes: attributesOf(current), provisioned: false, enabled: false };
  }
  if (current.employment === 'terminated' || current.employment === 'rescinded') {
    return { status: current.employment, folded: current, attributes: attributesOf(current), provisioned: false, enabled: false };
  }
  const onLeave = current.leave !== undefined && current.leave.onLeave && current.leave.at >= (current.hireAt ?? 0);
  return { status: onLeave ? 'on_leave' : 'active', folded: current, attributes: attributesOf(current), provisioned: true, enabled: !onLeave };
}

// --- taking events in -------------------------------------------------------------------

/** Takes one event in. A repeated id changes nothing (a redelivered job). Returns false then. */
export function receive(state: LifecycleState, event: HrEventSignal): boolean {
  if (isKnown(state, event.eventId)) return false;
  const known: KnownEvent = { eventId: event.eventId, type: event.type, at: Date.parse(event.effectiveAt), effectiveAt: event.effectiveAt, attributes: event.attributes ?? {} };
  state.events.push(known);
  state.events.sort(compareEvents);
  state.dirty = true;
  delete state.stalled;
  return true;
}

export function isKnown(state: LifecycleState, eventId: string): boolean {
  return state.events.some((e) => e.eventId === eventId) || (state.base?.eventIds.includes(eventId) ?? false);
}

/** An operator asks to try an event again: its outcome is decided afresh at once. */
export function requestRetry(state: LifecycleState, eventId: string): boolean {
  const event = state.events.find((e) => e.eventId === eventId);
  if (!event) return false;
  delete event.outcome;
  state.dirty = true;
  delete state.stalled;
  state.retrying = [...(state.retrying ?? []), eventId];
  return true;
}

/**
 * An operator asks to retry a failed grant of this person (`POST /grants/{id}/retry`, `jml
 * retry-grant`): the retry of the failed decision is due now rather than at the end of its
 * backoff, or of its wait for a target's recovery. The decision that runs then provisions
 * (or revokes) every failed grant afresh, and decides the failed events again.
 */
export function requestGrantRetry(state: LifecycleState, now: number): void {
  state.retryAt = Math.min(state.retryAt ?? now, now);
  delete state.waitingOn;
  state.dirty = true;
}

// --- when to wake -----------------------------------------------------------------------

/** The next moment a decision is due: now if something arrived, else the soonest timer; undefined: sleep until an event. */
export function nextWakeAt(state: LifecycleState, now: number, policy: PolicySnapshot): number | undefined {
  if (state.dirty) return now;
  const times: number[] = [];
  const desired = desiredAt(state, now, policy);
  for (const e of state.events) {
    if (e.at > now) times.push(e.at);
    if ((e.type === 'hire' || e.type === 'rehire') && e.at - policy.lifecycle.preProvisionLead > now) times.push(e.at - policy.lifecycle.preProvisionLead);
    // Due and undecided, or parked / scheduled and now decidable: the same test as decide's.
    if (e.at <= now && isDecidable(e, desired)) times.push(now);
  }
  for (const t of state.timers) times.push(t.dueAt);
  const terminatedAt = desired.folded.terminatedAt;
  if (desired.status === 'terminated' && terminatedAt !== undefined && state.applied.erasedFor !== terminatedAt && state.applied.status !== 'none') {
    times.push(terminatedAt + policy.lifecycle.deleteAfter);
  }
  if (state.stalled && state.retryAt !== undefined) times.push(state.retryAt);
  const wakes = times.filter((t) => Number.isFinite(t) && !(state.stalled && t <= now && t !== state.retryAt));
  return wakes.length ? Math.max(now, Math.min(...wakes)) : undefined;
}

// --- deciding ---------------------------------------------------------------------------

const TERMINAL: ReadonlySet<string> = new Set(['terminated', 'rescinded']);

/** A due event gets its outcome now: never decided yet, or parked (waiting for the hire, scheduled) and now decidable. */
function isDecidable(e: KnownEvent, desired: Desired): boolean {
  return e.outcome === undefined || (e.outcome.status === 'dispatched' && desired.status !== 'none');
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function isMoverChange(before: IdentityAttributes | undefined, after: IdentityAttributes): boolean {
  if (!before) return false;
  return MOVER_ATTRIBUTES.some((key) => (before[key] ?? null) !== (after[key] ?? null));
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Why an event that is now due ends the way it does. */
function outcomeOf(state: LifecycleState, e: KnownEvent, desired: Desired, folded: Folded): { status: EventOutcomeStatus; reason: string | null } {
  if (desired.status === 'none') return { status: 'dispatched', reason: 'waiting for the hire of this person' };
  const wonFields = Object.values(folded.fields).some((f) => f.eventId === e.eventId);
  const attrsOnly = (why: string) => (wonFields ? { status: 'applied' as const, reason: `attributes only: ${why}` } : { status: 'ignored' as const, reason: why });
  const by = (id: string | undefined) => {
    const other = state.events.find((x) => x.eventId === id);
    return other ? `${other.type} effective ${other.effectiveAt}` : 'an earlier event';
  };
  switch (e.type) {
    case 'update': {
      if (Object.keys(e.attributes).length === 0) return { status: 'ignored', reason: 'no attributes to change' };
      if (wonFields) return { status: 'applied', reason: TERMINAL.has(desired.status) ? `attributes only: the person is ${desired.status}` : null };
      return { status: 'ignored', reason: `stale: every attribute it sets has a later value (effective ${iso(Math.max(...Object.keys(e.attributes).map((k) => folded.fields[k]?.at ?? 0)))})` };
    }
    case 'hire':
    case 'rehire':
      if (folded.employmentEventId === e.eventId || folded.hireEventId === e.eventId) return { status: 'applied', reason: null };
      if (folded.employment === 'terminated' || folded.employment === 'rescinded') {
        const when = folded.employmentAt ?? 0;
        if (when < e.at && e.type === 'hire') return attrsOnly(`the person was ${folded.employment} by ${by(folded.employmentEventId)}; only a rehire brings them back`);
        return attrsOnly(`${by(folded.employmentEventId)} ends this employment (a terminal event wins over a hire it does not follow)`);
      }
      return attrsOnly(`already employed since ${by(folded.hireEventId)}`);
    case 'terminate':
    case 'rescind':
      if (folded.employmentEventId === e.eventId) return { status: 'applied', reason: null };
      return attrsOnly(`already ${folded.employment === 'hired' ? 'employed again by a later event' : folded.employment} (${by(folded.employmentEventId)})`);
    case 'leave_start':
    case 'leave_end':
      if (folded.leave?.eventId !== e.eventId) return attrsOnly(`stale: ${by(folded.leave?.eventId)} is later`);
      if (desired.status !== 'active' && desired.status !== 'on_leave') return attrsOnly(`the person is ${desired.status}; leave applies to active people only`);
      return { status: 'applied', reason: null };
  }
}

/**
 * What to do now. Mutates `state` for what is decided without a side effect (timers, which
 * events are due); everything with a side effect is an Effect, recorded by `recordEffect`
 * once the workflow has executed it.
 */
export function decide(state: LifecycleState, now: number, policy: PolicySnapshot, held: Holdings): Decision {
  state.dirty = false;
  // The retry of a failed decision is due: decide the failed events afresh (they end
  // applied, or failed again with the backoff doubled).
  const retryDue = state.retryAt !== undefined && now >= state.retryAt;
  if (retryDue) {
    for (const e of state.events) if (e.outcome?.status === 'failed') delete e.outcome;
    delete state.stalled;
    delete state.retryAt;
  }
  const retrying = new Set(state.retrying ?? []);
  delete state.retrying;
  const desired = desiredAt(state, now, policy);
  const { folded, attributes } = desired;
  const effects: Effect[] = [];
  const applied = state.applied;
  const live = held.holdings.filter((h) => h.grantStatus !== 'revoked');
  // Events whose outcome is to be decided now: due, and not decided (or parked for the hire).
  const decidingNow = state.events.filter((e) => e.at <= now && isDecidable(e, desired));
  const upcoming = desired.upcoming;
  // The event a failure is pinned on: the newest due event, else the one that set employment.
  const cause = decidingNow.at(-1)?.eventId ?? folded.employmentEventId ?? upcoming?.eventId ?? state.events.at(-1)?.eventId ?? 'unknown';
  // Future hires are taken in at once: the person exists as pre_hire from the moment HR says so.
  if (upcoming && upcoming.outcome === undefined) decidingNow.push(upcoming);

  if (desired.status !== 'none') {
    const status = desired.status;
    const hireDate = folded.hireAt !== undefined ? iso(folded.hireAt) : upcoming ? upcoming.effectiveAt : null;
    const terminationDate = folded.terminatedAt !== undefined && status === 'terminated' ? iso(folded.terminatedAt) : null;
    const record = { status, attributes, hireDate, terminationDate };
    if (!applied.saved || !sameJson(applied.saved, record)) {
      effects.push({ kind: 'saveIdentity', ...record, effectiveAt: iso(Math.min(now, folded.employmentAt ?? now)), eventId: folded.employmentEventId ?? cause });
    }
  }

  if (desired.status === 'terminated' || desired.status === 'rescinded') {
    const reason: RevokeReason = desired.status === 'terminated' ? 'leaver' : 'rescinded';
    const terminal = folded.employmentEventId ?? cause;
    state.timers = [];
    if (live.length) effects.push({ kind: 'revoke', holdings: orderForRevoke(live), reason, eventId: terminal, why: desired.status === 'terminated' ? 'leaver: every grant goes' : 'hire rescinded: every grant goes' });
    if (applied.requestsCancelledFor !== terminal) effects.push({ kind: 'cancelRequests', reason, eventId: terminal });
    const episode = desired.status === 'rescinded' ? 0 : (folded.terminatedAt as number);
    const eraseDue = desired.status === 'rescinded' || now >= episode + policy.lifecycle.deleteAfter;
    // Erase only someone the engine ever provisioned (or may have: unknown after a rebuild).
    if (eraseDue && applied.erasedFor !== episode && applied.status !== 'none') {
      effects.push({ kind: 'deleteAccounts', reason: desired.status === 'rescinded' ? 'hire rescinded' : 'retention period over', eventId: terminal, episode });
    }
  } else if (desired.provisioned) {
    const due = evaluateBirthright(policy.birthright, attributes);
    const diff = diffEntitlements(due, live, held.requestedEntitlements);
    const wasTerminal = TERMINAL.has(applied.status) || applied.accountsEnabled === false;
    if (diff.add.length) {
      const failedBefore = new Set(live.filter((h) => h.grantStatus === 'failed').map((h) => h.entitlementId));
      effects.push({
        kind: 'provision',
        items: diff.add,
        enabled: desired.enabled,
        reenable: desired.enabled && wasTerminal,
        eventId: cause,
        retried: diff.add.filter((d) => failedBefore.has(d.entitlementId)).map((d) => d.entitlementId),
        retryRequested: retrying.has(cause) || retryDue,
      });
    }
    // Accounts already there but in the wrong state: the start date, a leave, its end.
    const holdsAccount = live.some((h) => h.kind === 'account' && h.grantStatus === 'active');
    const accountAdded = diff.add.some((d) => policy.entitlements[d.entitlementId]?.kind === 'account');
    if (holdsAccount && !accountAdded && applied.accountsEnabled !== desired.enabled) {
      const reason = desired.status === 'on_leave' ? 'leave of absence' : desired.status === 'pre_hire' ? 'pre-provisioned before the start date' : applied.status === 'pre_hire' ? 'start date' : 'back from leave';
      effects.push({ kind: 'setAccountsEnabled', enabled: desired.enabled, reason, eventId: desired.status === 'on_leave' || applied.status === 'on_leave' ? (folded.leave?.eventId ?? cause) : (folded.hireEventId ?? cause) });
    }
    // Attributes changed (a mover, a new title or name): the accounts follow. Never for someone
    // terminal (this branch is not reached), so an erased account is never made again. An
    // account made (or adopted) now gets the attributes with it; one made before a rebuild
    // was made with the attributes saved then. Until updateAccounts succeeds, the old ones
    // stay the reference, so a failed update is made again at the next decision.
    if (accountAdded) applied.accountAttributes = attributes;
    else if (holdsAccount) {
      const pushed = applied.accountAttributes ?? applied.saved?.attributes;
      if (pushed !== undefined && !sameJson(pushed, attributes)) {
        applied.accountAttributes = pushed;
        effects.push({ kind: 'updateAccounts', attributes, enabled: desired.enabled, eventId: cause });
      }
    }
    // A move: what is no longer due goes after the grace period (a pre-hire never used it: at once).
    const timed = new Set(state.timers.flatMap((t) => t.entitlementIds));
    const untimed = diff.remove.filter((id) => !timed.has(id));
    const grace = desired.status === 'pre_hire' ? 0 : policy.lifecycle.moverGracePeriod;
    const firing = state.timers.filter((t) => t.dueAt <= now);
    state.timers = state.timers.filter((t) => t.dueAt > now);
    const revokeNow = new Set([...(grace <= 0 ? untimed : []), ...firing.flatMap((t) => t.entitlementIds).filter((id) => diff.remove.includes(id))]);
    if (grace > 0 && untimed.length) state.timers.push({ dueAt: now + grace, entitlementIds: untimed, eventId: cause });
    // Timers whose entitlements are all due again have nothing left to do.
    state.timers = state.timers.map((t) => ({ ...t, entitlementIds: t.entitlementIds.filter((id) => diff.remove.includes(id)) })).filter((t) => t.entitlementIds.length);
    if (revokeNow.size) {
      effects.push({ kind: 'revoke', holdings: orderForRevoke(live.filter((h) => revokeNow.has(h.entitlementId))), reason: 'mover', eventId: firing[0]?.eventId ?? cause, why: 'no birthright rule or approved request wants it any more' });
    }
    if (diff.review.length && (desired.status === 'active' || desired.status === 'on_leave') && isMoverChange(applied.saved?.attributes, attributes)) {
      effects.push({ kind: 'moverReview', entitlementIds: diff.review, eventId: cause });
    }
  }

  for (const e of decidingNow) {
    const outcome =
      e === upcoming
        ? { status: 'dispatched' as const, reason: `scheduled: ${policy.lifecycle.preProvisionLead > 0 ? `accounts pre-provisioned from ${iso(e.at - policy.lifecycle.preProvisionLead)}, ` : ''}start ${e.effectiveAt}` }
        : outcomeOf(state, e, desired, folded);
    effects.push({ kind: 'eventOutcome', eventId: e.eventId, ...outcome });
  }
  return { status: desired.status, effects };
}

/** Accounts first: the person is locked out at once, then the groups go. */
function orderForRevoke(holdings: Holding[]): Holding[] {
  return [...holdings.filter((h) => h.kind === 'account'), ...holdings.filter((h) => h.kind !== 'account')];
}

/** The workflow executed `effect` successfully: remember what is now true. */
export function recordEffect(state: LifecycleState, effect: Effect, result?: { identityId?: string }): void {
  const applied = state.applied;
  switch (effect.kind) {
    case 'saveIdentity':
      applied.saved = { status: effect.status, attributes: effect.attributes, hireDate: effect.hireDate, terminationDate: effect.terminationDate };
      applied.status = effect.status;
      if (result?.identityId) applied.identityId = result.identityId;
      if (!TERMINAL.has(effect.status)) {
        delete applied.requestsCancelledFor;
        delete applied.erasedFor;
      }
      break;
    case 'provision':
      if (effect.items.length) applied.accountsEnabled = effect.enabled;
      break;
    case 'setAccountsEnabled':
      applied.accountsEnabled = effect.enabled;
      break;
    case 'updateAccounts':
      applied.accountAttributes = effect.attributes;
      break;
    case 'revoke':
      if (effect.reason !== 'mover') applied.accountsEnabled = false;
      break;
    case 'deleteAccounts':
      applied.erasedFor = effect.episode;
      applied.accountsEnabled = false;
      break;
    case 'cancelRequests':
      applied.requestsCancelledFor = effect.eventId;
      break;
    case 'moverReview':
      break;
    case 'eventOutcome': {
      const event = state.events.find((e) => e.eventId === effect.eventId);
      if (event) event.outcome = { status: effect.status, reason: effect.reason };
      break;
    }
  }
}

/** An effect failed for good: its cause event is `failed`; the decision is retried on the next event or an operator's retry. */
export function recordFailure(state: LifecycleState, eventId: string, error: string): void {
  const event = state.events.find((e) => e.eventId === eventId);
  if (event) event.outcome = { status: 'failed', reason: error };
  state.stalled = true;
}

/**
 * A decision that had failures is tried again on a capped exponential backoff: the whole
 * decision, so whatever did not converge (a lock, a revocation, a grant) is done again.
 * Called once per decision by the workflow, after its effects ran.
 */
export function scheduleRetry(state: LifecycleState, now: number, policy: PolicySnapshot, failed: boolean, waitingOn: WaitingOn = { targets: [], only: false }): void {
  delete state.waitingOn;
  if (!failed) {
    delete state.failures;
    delete state.retryAt;
    delete state.stalled;
    return;
  }
  const { initialInterval, maximumInterval } = policy.retries.afterFailure;
  const failures = (state.failures ?? 0) + 1;
  state.failures = failures;
  state.stalled = true;
  if (waitingOn.targets.length) state.waitingOn = [...new Set(waitingOn.targets)].sort();
  // Failed only because targets were unreachable: their recovery releases the retry (leavers
  // first); the longest backoff stays as a fallback should that signal never come.
  const backoff = waitingOn.only && waitingOn.targets.length ? maximumInterval : exponentialBackoffMs(failures, { initialInterval, maximumInterval });
  state.retryAt = now + backoff;
}

/** What a failed decision waits for: unreachable targets, and whether nothing else failed. */
export interface WaitingOn {
  targets: string[];
  only: boolean;
}

/**
 * A target answers again (its recovery released this person). Once no target it waits for
 * is still down, the failed decision is due at once. Either way the next decision runs now,
 * so the recovery hears back (`releasedBy`) that this person has tried.
 */
export function targetRecovered(state: LifecycleState, target: string, recoveryId: string, now: number): void {
  state.dirty = true;
  state.releasedBy = [...new Set([...(state.releasedBy ?? []), recoveryId])];
  if (!state.waitingOn?.includes(target)) return;
  state.waitingOn = state.waitingOn.filter((t) => t !== target);
  if (state.waitingOn.length > 0) return;
  delete state.waitingOn;
  if (state.retryAt !== undefined) state.retryAt = Math.min(state.retryAt, now);
}

// --- keeping the state small ------------------------------------------------------------

const KEEP_EVENTS = 200;

/**
 * Folds the oldest decided events into `base` once there are many, so continue-as-new
 * carries a bounded state. An event older than the base that arrives later is folded on
 * top of it (attributes and leave stay exact; employment follows the base).
 */
export function compact(state: LifecycleState): void {
  if (state.events.length <= KEEP_EVENTS * 2) return;
  const old = state.events.slice(0, state.events.length - KEEP_EVENTS);
  if (old.some((e) => e.outcome === undefined || e.outcome.status === 'dispatched')) return;
  const folded = state.base ? cloneFold(state.base.folded) : emptyFold();
  for (const e of old) foldEvent(folded, e);
  const last = old.at(-1) as KnownEvent;
  state.base = { folded, before: last.at, eventIds: [...(state.base?.eventIds ?? []), ...old.map((e) => e.eventId)].slice(-2_000) };
  state.events = state.events.slice(old.length);
}

// --- simulation: explain and the property tests replay the core with nothing executed -----

export interface SimulatedPerson {
  state: LifecycleState;
  holdings: Holdings;
}

/** Applies a decision as if every effect succeeded (used by explain and by simulations). */
export function simulateEffects(sim: SimulatedPerson, decision: Decision, policy: PolicySnapshot): void {
  // Fresh ids, never one already held: a later revoke must remove exactly its own grant.
  let seq = Math.max(0, ...sim.holdings.holdings.map((h) => Number(/^sim-(\d+)$/.exec(h.grantId)?.[1] ?? 0)));
  for (const effect of decision.effects) {
    if (effect.kind === 'provision') {
      for (const item of effect.items) {
        const entitlement = policy.entitlements[item.entitlementId];
        sim.holdings.holdings = sim.holdings.holdings.filter((h) => h.entitlementId !== item.entitlementId || h.grantStatus === 'revoked');
        sim.holdings.holdings.push({ grantId: `sim-${(seq += 1)}`, entitlementId: item.entitlementId, kind: entitlement?.kind ?? 'group', target: entitlement?.target ?? '', grantStatus: 'active', requestKind: 'birthright' });
      }
    }
    if (effect.kind === 'revoke') {
      const gone = new Set(effect.holdings.map((h) => h.grantId));
      sim.holdings.holdings = sim.holdings.holdings.filter((h) => !gone.has(h.grantId));
    }
    recordEffect(sim.state, effect, effect.kind === 'saveIdentity' ? { identityId: sim.state.applied.identityId ?? `sim-${sim.state.employeeId}` } : undefined);
  }
}

export interface Delivery {
  event: HrEventSignal;
  /** When the workflow receives it (epoch ms). */
  arrivesAt: number;
}

export interface SimulationResult {
  status: IdentityStatus | 'none';
  attributes: IdentityAttributes;
  holdings: Holding[];
  accountsEnabled: boolean | undefined;
  erased: boolean;
  outcomes: Record<string, { status: EventOutcomeStatus; reason: string | null } | undefined>;
  decisions: Array<{ at: number; decision: Decision }>;
}

/**
 * Runs the lifecycle as the workflow does — events arrive at their times, decisions at each
 * wake — until `until`, with every effect succeeding. A pure replay of the core.
 */
export function simulateLifecycle(input: { employeeId: string; policy: PolicySnapshot; deliveries: Delivery[]; until: number; requestedEntitlements?: string[]; maxSteps?: number }): SimulationResult {
  const sim: SimulatedPerson = { state: initialState(input.employeeId), holdings: { holdings: [], requestedEntitlements: input.requestedEntitlements ?? [] } };
  const arrivals = [...input.deliveries].sort((a, b) => a.arrivesAt - b.arrivesAt);
  const decisions: SimulationResult['decisions'] = [];
  let now = arrivals[0]?.arrivesAt ?? input.until;
  for (let steps = 0; steps < (input.maxSteps ?? 10_000); steps += 1) {
    const wake = nextWakeAt(sim.state, now, input.policy);
    const arrival = arrivals[0];
    if (arrival && (wake === undefined || arrival.arrivesAt <= wake) && arrival.arrivesAt <= input.until) {
      now = Math.max(now, arrival.arrivesAt);
      arrivals.shift();
      receive(sim.state, arrival.event);
      continue;
    }
    if (wake === undefined || wake > input.until) break;
    now = wake;
    const decision = decide(sim.state, now, input.policy, sim.holdings);
    decisions.push({ at: now, decision });
    simulateEffects(sim, decision, input.policy);
  }
  const desired = desiredAt(sim.state, input.until, input.policy);
  return {
    status: sim.state.applied.status,
    attributes: desired.attributes,
    holdings: sim.holdings.holdings,
    accountsEnabled: sim.state.applied.accountsEnabled,
    erased: sim.state.applied.erasedFor !== undefined,
    outcomes: Object.fromEntries(sim.state.events.map((e) => [e.eventId, e.outcome])),
    decisions,
  };
}
