// Random HR histories for one person, and what they must end in.
//
// The generator makes what HR really sends: any mix of the seven event types, effective
// times that collide (the same instant) or nearly collide (1 ms apart), attributes from
// small domains so later writers often overwrite earlier ones, deliveries back-dated and
// future-dated, swapped, and sometimes twice. Times are abstract (slots), so the pure
// property test can run a history in hours and the end-to-end test in seconds.
//
// The oracle (`expectedOutcome`) is written from the lifecycle specification of issue 7
// alone, NOT from domain/lifecycle.ts: the tests compare the core and the engine with it,
// so a rule the core gets wrong shows as a disagreement instead of being copied.
import fc from 'fast-check';
import { evaluateBirthright } from '../../domain/birthright.js';
import type { BirthrightRule } from '../../domain/config.js';
import type { HrEventType, IdentityAttributes } from '../../domain/types.js';

/** Effective times fall on slots 0..MAX_SLOT of the history's scale. */
const MAX_SLOT = 8;
/** Deliveries are placed in 1/ARRIVAL_STEPS of a slot, from 4 slots before slot 0 to 4 after MAX_SLOT. */
const ARRIVAL_STEPS = 60;
const FIRST_ARRIVAL = -4 * ARRIVAL_STEPS;
const LAST_ARRIVAL = (MAX_SLOT + 4) * ARRIVAL_STEPS;

export interface HistoryEvent {
  /** Unique within the history; its letter makes the tie-break by id random. */
  id: string;
  type: HrEventType;
  /** Effective at `slot` slots after the history's start, plus `tick` ms (near-collisions). */
  slot: number;
  tick: number;
  attributes: IdentityAttributes;
  /** Two delivery schedules of the same event, in arrival steps (two entries: a duplicate delivery). */
  arrivals: [number[], number[]];
}

export type History = HistoryEvent[];

// Small domains: departments that share a birthright rule (Engineering, Product
// Engineering), one that has its own (Sales) and one that has none.
const VALUES = {
  givenName: ['Ada', 'Grace', 'Linus'],
  familyName: ['Lovelace', 'Hopper'],
  department: ['Engineering', 'Sales', 'Product Engineering', 'Finance'],
  employmentType: ['employee', 'contractor'],
  title: ['Engineer', 'Manager', 'Analyst'],
  location: ['London', 'Paris'],
} as const;

const anyValue = <K extends keyof typeof VALUES>(key: K) => fc.constantFrom(...VALUES[key]);

const attributeFields = {
  givenName: anyValue('givenName'),
  familyName: anyValue('familyName'),
  department: anyValue('department'),
  employmentType: anyValue('employmentType'),
  title: anyValue('title'),
  location: anyValue('location'),
};

/** Any subset of the attributes, each with a random value. */
const someAttributes: fc.Arbitrary<IdentityAttributes> = fc.record(attributeFields, { requiredKeys: [] });

/** A hire carries the name (the webhook requires it) and usually the rest. */
const hireAttributes: fc.Arbitrary<IdentityAttributes> = fc.record(attributeFields, { requiredKeys: ['givenName', 'familyName'] });

/** Terminations, rescinds and leaves mostly carry nothing, sometimes a change. */
const mostlyNoAttributes = fc.oneof({ weight: 3, arbitrary: fc.constant({}) }, { weight: 1, arbitrary: someAttributes });

// Deliveries anywhere in the window, and often exactly on a slot: an event (or a repeat)
// arriving at the very instant another one takes effect.
const arrivalStep = fc.oneof(fc.integer({ min: FIRST_ARRIVAL, max: LAST_ARRIVAL }), fc.integer({ min: 0, max: MAX_SLOT }).map((slot) => slot * ARRIVAL_STEPS));
const arrivals = fc.array(arrivalStep, { minLength: 1, maxLength: 2 });

function eventOf(type: HrEventType, attributes: fc.Arbitrary<IdentityAttributes>, weight: number) {
  return {
    weight,
    arbitrary: fc.record({
      type: fc.constant(type),
      attributes,
      slot: fc.integer({ min: 0, max: MAX_SLOT }),
      tick: fc.constantFrom(0, 0, 1),
      letter: fc.constantFrom('a', 'b', 'c'),
      arrivals: fc.tuple(arrivals, arrivals),
    }),
  };
}

/** One person's history: 1..8 events. */
export const historyArbitrary: fc.Arbitrary<History> = fc
  .array(
    fc.oneof(
      eventOf('hire', hireAttributes, 4),
      eventOf('update', someAttributes, 4),
      eventOf('terminate', mostlyNoAttributes, 2),
      eventOf('rehire', someAttributes, 1),
      eventOf('rescind', mostlyNoAttributes, 1),
      eventOf('leave_start', mostlyNoAttributes, 2),
      eventOf('leave_end', mostlyNoAttributes, 2),
    ),
    { minLength: 1, maxLength: 8 },
  )
  .map((events) => events.map(({ letter, ...e }, i) => ({ id: `${letter}${i}`, ...e })));

// --- times ------------------------------------------------------------------------------

/** Where a history's slots are in real time. */
export interface Scale {
  /** Epoch ms of slot 0. */
  start: number;
  slotMs: number;
}

export function effectiveTime(e: HistoryEvent, scale: Scale): number {
  return scale.start + e.slot * scale.slotMs + e.tick;
}

export interface ScheduledDelivery {
  event: HistoryEvent;
  /** Epoch ms. */
  arrivesAt: number;
}

/** Every delivery of one schedule (0 or 1), in arrival order. */
export function deliverySchedule(history: History, scale: Scale, schedule: 0 | 1): ScheduledDelivery[] {
  const stepMs = scale.slotMs / ARRIVAL_STEPS;
  return history
    .flatMap((event) => event.arrivals[schedule].map((step) => ({ event, arrivesAt: Math.round(scale.start + step * stepMs) })))
    .sort((a, b) => a.arrivesAt - b.arrivesAt);
}

/** The latest moment anything in the history happens (an effective time or an arrival). */
export function lastMoment(history: History, scale: Scale): number {
  const arrivals = [...deliverySchedule(history, scale, 0), ...deliverySchedule(history, scale, 1)].map((d) => d.arrivesAt);
  return Math.max(...history.map((e) => effectiveTime(e, scale)), ...arrivals);
}

/** A readable account of a history, for failure messages. */
export function describeHistory(history: History, scale: Scale, schedule: 0 | 1 = 0): string {
  const iso = (ms: number) => new Date(ms).toISOString();
  const events = history.map((e) => `  ${e.id} ${e.type} effective ${iso(effectiveTime(e, scale))} ${JSON.stringify(e.attributes)}`);
  const order = deliverySchedule(history, scale, schedule).map((d) => `${d.event.id}@${iso(d.arrivesAt)}`);
  return `events:\n${events.join('\n')}\ndelivered: ${order.join(', ')}`;
}

// --- the oracle -------------------------------------------------------------------------

export type ExpectedStatus = 'none' | 'pre_hire' | 'active' | 'on_leave' | 'terminated' | 'rescinded';

export interface Expected {
  status: ExpectedStatus;
  attributes: IdentityAttributes;
  /** Birthright entitlement ids held at the end (sorted); requested ones come on top. */
  entitlements: string[];
  /** The directory account, once every deadline (grace, deleteAfter) has passed. */
  account: 'absent' | 'enabled' | 'disabled';
}

interface OracleEvent {
  id: string;
  type: HrEventType;
  at: number;
  attributes: IdentityAttributes;
}

// The specification's effective order: time, then the day's natural order, then id.
const TYPE_RANK: Record<HrEventType, number> = { hire: 0, rehire: 1, update: 2, leave_start: 3, leave_end: 4, terminate: 5, rescind: 6 };

function inEffectiveOrder(a: OracleEvent, b: OracleEvent): number {
  if (a.at !== b.at) return a.at - b.at;
  if (a.type !== b.type) return TYPE_RANK[a.type] - TYPE_RANK[b.type];
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** The specification's fold of the events known (repeats count once), as of `asOf`. */
function foldAsSpecified(known: OracleEvent[], asOf: number): { status: ExpectedStatus; attributes: IdentityAttributes } {
  const due = [...new Map(known.filter((e) => e.at <= asOf).map((e) => [e.id, e])).values()].sort(inEffectiveOrder);

  // Attributes: per field, the last writer in effective order, whatever its type.
  const attributes: IdentityAttributes = {};
  for (const e of due) Object.assign(attributes, e.attributes);

  let employment: 'none' | 'hired' | 'terminated' | 'rescinded' = 'none';
  let episodeStart = Number.NaN;
  let leave: { onLeave: boolean; at: number } | undefined;
  for (const e of due) {
    switch (e.type) {
      case 'hire': // void after a terminate or rescind: only a rehire brings a person back
        if (employment === 'none') [employment, episodeStart] = ['hired', e.at];
        break;
      case 'rehire':
        if (employment !== 'hired') [employment, episodeStart] = ['hired', e.at];
        break;
      case 'terminate':
      case 'rescind':
        if (employment === 'none' || employment === 'hired') employment = e.type === 'terminate' ? 'terminated' : 'rescinded';
        break;
      case 'leave_start':
      case 'leave_end': // the later one wins
        leave = { onLeave: e.type === 'leave_start', at: e.at };
        break;
      case 'update':
        break;
    }
  }

  // Someone with no hire or rehire known at all does not exist; a future-dated one is pre_hire.
  let status: ExpectedStatus;
  if (!known.some((e) => e.type === 'hire' || e.type === 'rehire')) status = 'none';
  else if (employment === 'none') status = 'pre_hire';
  else if (employment === 'hired') status = leave?.onLeave && leave.at >= episodeStart ? 'on_leave' : 'active';
  else status = employment;
  return { status, attributes };
}

function oracleEvents(history: History, scale: Scale): OracleEvent[] {
  return history.map((e) => ({ id: e.id, type: e.type, at: effectiveTime(e, scale), attributes: e.attributes }));
}

/**
 * What the specification says a person ends as, once every effective time, grace period
 * and retention period is over, from the SET of their events.
 */
export function expectedOutcome(history: History, scale: Scale, birthright: readonly BirthrightRule[]): Expected {
  const { status, attributes } = foldAsSpecified(oracleEvents(history, scale), Number.POSITIVE_INFINITY);
  const employed = status === 'active' || status === 'on_leave';
  return {
    status,
    attributes,
    entitlements: employed ? evaluateBirthright(birthright, attributes).map((g) => g.entitlementId).sort() : [],
    account: status === 'active' ? 'enabled' : status === 'on_leave' ? 'disabled' : 'absent',
  };
}

/**
 * The status at `at` from the events received by then, and whether a rehire is known to
 * come later (a returner may be pre-provisioned before it).
 */
export function statusAsOf(history: History, scale: Scale, at: number, received: ReadonlySet<string>): { status: ExpectedStatus; rehireAhead: boolean } {
  const known = oracleEvents(history, scale).filter((e) => received.has(e.id));
  return { status: foldAsSpecified(known, at).status, rehireAhead: known.some((e) => e.type === 'rehire' && e.at > at) };
}
