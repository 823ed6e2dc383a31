// The access request policy over random catalogues, people, holdings and requests, against
// an oracle written from the rules as documented (not from the code): the rule reported is
// always the first that fails in ACCESS_RULES order, a request that passes never conflicts
// with what the subject holds or awaits, and every approver it names may decide.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ACCESS_RULES,
  JUSTIFICATION_MAX_LENGTH,
  checkAccessRequest,
  directoryOf,
  type AccessRequestContext,
  type AccessRequestInput,
  type AccessRule,
  type DirectoryPerson,
  type RequestableEntitlement,
} from '../../domain/access-policy.js';
import { IDENTITY_STATUSES } from '../../domain/types.js';

const HOUR = 3_600_000;
const PEOPLE = ['P1', 'P2', 'P3', 'P4', 'P5'];
const ENTITLEMENTS = ['a', 'b', 'c', 'd', 'e'];
const ROUTES = ['manager', 'owner', 'manager_then_owner'] as const;

// Mostly what passes, sometimes what does not, so that requests reach every rule (approver
// resolution included) and pass often enough for the properties about passing to bite.
const mostly = <T>(good: readonly T[], bad: readonly T[]) => fc.oneof({ arbitrary: fc.constantFrom(...good), weight: 5 }, { arbitrary: fc.constantFrom(...bad), weight: 1 });
const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: null, freq: 6 });
// Lower-case spellings of ids somebody has, and an id nobody has.
const personRef = mostly([...PEOPLE, 'p1', 'p2'], ['X9']);
const justification = mostly(['needed for INC-1', 'x', 'x'.repeat(JUSTIFICATION_MAX_LENGTH)], ['', '   ', ' padded', 'bell\u0007', 'x'.repeat(JUSTIFICATION_MAX_LENGTH + 1)]);
const duration = mostly([undefined, HOUR, 4 * HOUR], [5 * HOUR, 0, -1, 1.5]);
const status = mostly(['active' as const], IDENTITY_STATUSES.filter((x) => x !== 'active'));

const person = fc.record({ status, managerId: maybe(personRef) });

const catalogueEntry = (id: string) =>
  fc.record({
    id: fc.constant(id),
    requestable: mostly([true], [false]),
    owner: maybe(personRef),
    approver: fc.option(fc.constantFrom(...ROUTES), { nil: undefined }),
    maxDurationMs: maybe(fc.constantFrom(HOUR, 4 * HOUR)),
  });

const someEntitlements = fc.uniqueArray(fc.constantFrom(...ENTITLEMENTS), { maxLength: 2 });

const scenario = fc.record({
  people: fc.tuple(...PEOPLE.map(() => person)),
  catalogue: fc.tuple(...ENTITLEMENTS.map(catalogueEntry)),
  held: someEntitlements,
  pending: someEntitlements,
  sod: fc.array(fc.record({ name: fc.constantFrom('r1', 'r2'), conflicting: fc.uniqueArray(fc.constantFrom(...ENTITLEMENTS), { minLength: 2, maxLength: 3 }) }), { maxLength: 2 }),
  route: fc.constantFrom(...ROUTES),
  fallbackApprover: maybe(personRef),
  employeeId: personRef,
  entitlementId: mostly(ENTITLEMENTS, ['zz']),
  justification,
  durationMs: duration,
  requestedBy: maybe(personRef),
});
type Scenario = typeof scenario extends fc.Arbitrary<infer T> ? T : never;

function build(s: Scenario): { request: AccessRequestInput; context: AccessRequestContext; people: Record<string, DirectoryPerson> } {
  const people = Object.fromEntries(PEOPLE.map((id, i) => [id, s.people[i]!]));
  const directory = directoryOf(people);
  const request: AccessRequestInput = { employeeId: s.employeeId, entitlementId: s.entitlementId, justification: s.justification, requestedBy: s.requestedBy };
  if (s.durationMs !== undefined) request.durationMs = s.durationMs;
  const context: AccessRequestContext = {
    entitlements: s.catalogue as RequestableEntitlement[],
    subject: directory(s.employeeId) ?? null,
    held: s.held,
    pending: s.pending,
    directory,
    sod: s.sod,
    approval: { approver: s.route, fallbackApprover: s.fallbackApprover },
  };
  return { request, context, people };
}

/** Whether each rule before approver resolution fails, decided from the documented rules. */
function failing(request: AccessRequestInput, context: AccessRequestContext): Set<AccessRule> {
  const out = new Set<AccessRule>();
  const j = request.justification;
  const d = request.durationMs;
  const e = context.entitlements.find((x) => x.id === request.entitlementId);
  const s = context.subject;
  if (!/\S/.test(j)) out.add('justification_required');
  if (j.length > JUSTIFICATION_MAX_LENGTH || j !== j.trim() || /\p{Cc}/u.test(j)) out.add('justification_invalid');
  if (d !== undefined && !(Number.isInteger(d) && d > 0)) out.add('duration_invalid');
  if (!e) out.add('unknown_entitlement');
  if (e && !e.requestable) out.add('not_requestable');
  if (!s) out.add('unknown_subject');
  if (s && s.status !== 'active') out.add('subject_not_active');
  if (e?.maxDurationMs != null && d === undefined) out.add('duration_required');
  if (e?.maxDurationMs != null && d !== undefined && d > e.maxDurationMs) out.add('duration_too_long');
  if (context.held.includes(request.entitlementId)) out.add('already_held');
  if (context.pending.includes(request.entitlementId)) out.add('already_pending');
  if (conflicts(request.entitlementId, context).length) out.add('sod_conflict');
  return out;
}

/** Every entitlement held or pending that some sod rule puts against the requested one. */
function conflicts(requested: string, context: AccessRequestContext): string[] {
  const mine = new Set([...context.held, ...context.pending]);
  return context.sod.filter((r) => r.conflicting.includes(requested)).flatMap((r) => r.conflicting.filter((x) => x !== requested && mine.has(x)));
}

const APPROVER_RULES: AccessRule[] = ['no_approver', 'self_approval'];

describe('access policy properties', () => {
  it('reports the first failing rule in ACCESS_RULES order, and approvers only when every other rule passes', () => {
    fc.assert(
      fc.property(scenario, (s) => {
        const { request, context } = build(s);
        const result = checkAccessRequest(request, context);
        const failed = failing(request, context);
        const first = ACCESS_RULES.find((rule) => failed.has(rule));
        if (first) {
          expect(result.ok ? 'ok' : result.rule).toBe(first);
        } else if (!result.ok) {
          expect(APPROVER_RULES).toContain(result.rule);
        }
      }),
      { numRuns: 2_000 },
    );
  });

  it('never passes a request that conflicts with what the subject holds or has pending', () => {
    fc.assert(
      fc.property(scenario, (s) => {
        const { request, context } = build(s);
        const result = checkAccessRequest(request, context);
        if (result.ok) expect(conflicts(request.entitlementId, context)).toEqual([]);
        else if (result.rule === 'sod_conflict') expect(conflicts(request.entitlementId, context)).toContain(result.conflict?.entitlementId);
      }),
      { numRuns: 2_000 },
    );
  });

  it('names, for each stage of the route, an active approver who is neither the subject nor the requester', () => {
    fc.assert(
      fc.property(scenario, (s) => {
        const { request, context, people } = build(s);
        const result = checkAccessRequest(request, context);
        if (!result.ok) return;
        const entitlement = context.entitlements.find((e) => e.id === request.entitlementId)!;
        const route = entitlement.approver ?? context.approval.approver;
        expect(result.stages.map((stage) => stage.role)).toEqual(route === 'manager_then_owner' ? ['manager', 'owner'] : [route]);
        for (const stage of result.stages) {
          expect(people[stage.approverId]?.status).toBe('active');
          expect(stage.approverId).not.toBe(request.employeeId.toUpperCase());
          expect(stage.approverId).not.toBe(request.requestedBy?.toUpperCase());
          // Its own approver decides unless the stage says why it went to the fallback.
          const own = stage.role === 'manager' ? context.subject?.managerId : entitlement.owner;
          if (stage.fallbackReason === null) expect(stage.approverId).toBe(own?.toUpperCase());
          else expect(stage.approverId).toBe(context.approval.fallbackApprover?.toUpperCase());
        }
      }),
      { numRuns: 2_000 },
    );
  });
});
