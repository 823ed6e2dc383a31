// The policy of an access request, before anything is recorded: may this person ask for this
// entitlement, for this long, and who must say yes? Pure and deterministic (no I/O, no clock,
// no randomness), so the API route answers a 422 from it and the accessRequest workflow can
// resolve and escalate approvers with it, replaying identically.
//
// The rules run in one fixed order (ACCESS_RULES) and the first that fails is the answer, so
// a requester always hears about the most basic problem first (what they typed, then what
// they asked for, then who they are, then what they already hold, then who would approve).
//
// Who may approve: an approver is an active person who is neither the subject nor the
// requester. When the route's approver (the manager, or the entitlement's owner) is missing,
// not active, or would approve their own request, the stage goes to the configured fallback
// approver, and without one the request is refused with the reason; it never waits for
// nobody. Self-approval is sent to the fallback rather than refused outright because the
// cases are real and legitimate (an owner asking for their own group, a chief executive whose
// HR record names themselves as manager, an admin asking for a report they manage), and a
// fallback is by construction someone else whose yes is still required. Nothing is ever
// approved without a decision by a different person.
import { textProblem } from './attributes.js';
import { formatDuration } from './duration.js';
import { canonicalEmployeeId } from './employee-id.js';
import type { IdentityStatus } from './types.js';

/** The longest justification kept; a request is a sentence or a paragraph, not a document. */
export const JUSTIFICATION_MAX_LENGTH = 1_000;

/** Every rule, in the order it is checked. The first that fails is the one reported. */
export const ACCESS_RULES = [
  'justification_required',
  'justification_invalid',
  'duration_invalid',
  'unknown_entitlement',
  'not_requestable',
  'unknown_subject',
  'subject_not_active',
  'duration_required',
  'duration_too_long',
  'already_held',
  'already_pending',
  'sod_conflict',
  // One step: approvers are resolved stage by stage, and the first stage that cannot be
  // resolved names the rule its last candidate failed (see resolveApprovalStages).
  'no_approver',
  'self_approval',
] as const;
export type AccessRule = (typeof ACCESS_RULES)[number];

// --- inputs -----------------------------------------------------------------------------

/** Who approves an entitlement: the subject's manager, its owner, or both in that order. */
export type ApprovalRoute = 'manager' | 'owner' | 'manager_then_owner';
export type ApproverRole = 'manager' | 'owner';

/** What the policy needs to know of one entitlement in the catalogue. */
export interface RequestableEntitlement {
  id: string;
  requestable: boolean;
  /** The resource owner's employee id, if one is recorded. */
  owner?: string | null;
  /** This entitlement's route; absent: the approval policy's default. */
  approver?: ApprovalRoute;
  /**
   * The longest grant a request may ask for, in ms. Required as a key (null: no limit, a
   * grant without end is allowed) so that a catalogue is mapped to it deliberately.
   */
  maxDurationMs: number | null;
}

export interface ApprovalPolicyInput {
  /** The route of entitlements that name none. */
  approver: ApprovalRoute;
  /** Who approves a stage whose own approver is missing, not active, or self. */
  fallbackApprover?: string | null;
}

/** A person as the policy sees them. */
export interface DirectoryPerson {
  status: IdentityStatus;
  managerId?: string | null;
}

/** Looks a person up by canonical employee id; undefined when nobody has that id. */
export type Directory = (employeeId: string) => DirectoryPerson | undefined;

export interface SodRule {
  name: string;
  conflicting: readonly string[];
}

export interface AccessRequestInput {
  /** The subject: who the access is for. */
  employeeId: string;
  entitlementId: string;
  justification: string;
  /** How long the grant lasts from when it is made, in ms; absent: no end. */
  durationMs?: number;
  /** The employee id the requesting token is bound to; null for an admin token bound to nobody. */
  requestedBy: string | null;
}

export interface AccessRequestContext {
  entitlements: readonly RequestableEntitlement[];
  /** The subject's record; null when the id is nobody's. */
  subject: DirectoryPerson | null;
  /** Entitlements the subject holds or is being given: every grant not revoked, birthright included. */
  held: readonly string[];
  /** Entitlements the subject has requested and that await a decision. */
  pending: readonly string[];
  directory: Directory;
  sod: readonly SodRule[];
  approval: ApprovalPolicyInput;
}

// --- outputs ----------------------------------------------------------------------------

export interface ApprovalStage {
  role: ApproverRole;
  /** Canonical employee id of the person who decides this stage. */
  approverId: string;
  /** Why the stage went to the fallback approver; null when its own approver decides. */
  fallbackReason: string | null;
}

export interface SodConflict {
  /** The sod rule's name. */
  rule: string;
  /** The entitlement the subject holds or awaits that conflicts with the one requested. */
  entitlementId: string;
  source: 'held' | 'pending';
}

export type AccessRefusal = { ok: false; rule: AccessRule; detail: string; conflict?: SodConflict; stage?: ApproverRole };
export type AccessDecision = { ok: true; stages: ApprovalStage[] } | AccessRefusal;

export type StageResolution = { ok: true; stages: ApprovalStage[] } | { ok: false; rule: 'no_approver' | 'self_approval'; detail: string; stage: ApproverRole };

// --- the checks -------------------------------------------------------------------------

const refuse = (rule: AccessRule, detail: string, extra: Pick<AccessRefusal, 'conflict' | 'stage'> = {}): AccessRefusal => ({ ok: false, rule, detail, ...extra });

/** Whether a request may be made, and if so who approves it, stage by stage. */
export function checkAccessRequest(request: AccessRequestInput, context: AccessRequestContext): AccessDecision {
  const { justification, durationMs, entitlementId } = request;
  const subjectId = canonicalEmployeeId(request.employeeId);

  if (justification.trim() === '') return refuse('justification_required', 'a justification is required: say why the access is needed');
  const problem = textProblem(justification, JUSTIFICATION_MAX_LENGTH);
  if (problem) return refuse('justification_invalid', `the justification ${problem}`);

  if (durationMs !== undefined && !(Number.isSafeInteger(durationMs) && durationMs > 0)) {
    return refuse('duration_invalid', 'the duration must be a positive whole number of milliseconds');
  }

  // The id is what the requester typed: not echoed back.
  const entitlement = context.entitlements.find((e) => e.id === entitlementId);
  if (!entitlement) return refuse('unknown_entitlement', 'no entitlement has this id');
  if (!entitlement.requestable) return refuse('not_requestable', `${entitlement.id} is not requestable`);

  const subject = context.subject;
  if (!subject) return refuse('unknown_subject', `${subjectId} is not a known person`);
  if (subject.status !== 'active') return refuse('subject_not_active', `${subjectId} is ${subject.status}; only an active person can be given requested access`);

  const max = entitlement.maxDurationMs;
  if (max !== null && durationMs === undefined) return refuse('duration_required', `${entitlement.id} is granted for at most ${formatDuration(max)}: give a duration`);
  if (max !== null && durationMs !== undefined && durationMs > max) {
    return refuse('duration_too_long', `${entitlement.id} is granted for at most ${formatDuration(max)}, not ${formatDuration(durationMs)}`);
  }

  if (context.held.includes(entitlement.id)) return refuse('already_held', `${subjectId} already holds ${entitlement.id}`);
  if (context.pending.includes(entitlement.id)) return refuse('already_pending', `${subjectId} already has a request for ${entitlement.id} awaiting a decision`);

  const conflict = sodConflict(entitlement.id, context.held, context.pending, context.sod);
  if (conflict) {
    const how = conflict.source === 'held' ? 'holds' : 'has a pending request for';
    return refuse('sod_conflict', `separation of duties rule "${conflict.rule}": ${subjectId} ${how} ${conflict.entitlementId}, which conflicts with ${entitlement.id}`, { conflict });
  }

  const stages = resolveApprovalStages({ subjectId, subject, requestedBy: request.requestedBy, entitlement, policy: context.approval, directory: context.directory });
  if (!stages.ok) return refuse(stages.rule, stages.detail, { stage: stages.stage });
  return stages;
}

/**
 * The first separation-of-duties conflict of `entitlementId` with what is held or pending
 * (rules in config order, entitlements in each rule's order; held is named before pending),
 * or null.
 */
export function sodConflict(entitlementId: string, held: readonly string[], pending: readonly string[], rules: readonly SodRule[]): SodConflict | null {
  for (const rule of rules) {
    if (!rule.conflicting.includes(entitlementId)) continue;
    for (const other of rule.conflicting) {
      if (other === entitlementId) continue;
      if (held.includes(other)) return { rule: rule.name, entitlementId: other, source: 'held' };
      if (pending.includes(other)) return { rule: rule.name, entitlementId: other, source: 'pending' };
    }
  }
  return null;
}

// --- approvers --------------------------------------------------------------------------

export interface StageInput {
  subjectId: string;
  subject: DirectoryPerson;
  requestedBy: string | null;
  entitlement: RequestableEntitlement;
  policy: ApprovalPolicyInput;
  directory: Directory;
}

/**
 * Who decides each stage: the subject's manager, the entitlement's owner, or the manager and
 * then the owner. Two stages stay two even when one person fills both roles: each role's yes
 * is recorded as that role's, and nothing is approved on a decision not made.
 */
export function resolveApprovalStages(input: StageInput): StageResolution {
  const route = input.entitlement.approver ?? input.policy.approver;
  const roles: ApproverRole[] = route === 'manager_then_owner' ? ['manager', 'owner'] : [route];
  const subjectId = canonicalEmployeeId(input.subjectId);
  const requester = input.requestedBy === null ? null : canonicalEmployeeId(input.requestedBy);
  const who: Candidates = { subjectId, requester, directory: input.directory };
  const stages: ApprovalStage[] = [];
  for (const role of roles) {
    const own =
      role === 'manager'
        ? candidate('manager', input.subject.managerId, `no manager is recorded for ${subjectId}`, who)
        : candidate('owner', input.entitlement.owner, `${input.entitlement.id} has no owner recorded`, who);
    if (own.ok) {
      stages.push({ role, approverId: own.approverId, fallbackReason: null });
      continue;
    }
    const fallback = input.policy.fallbackApprover;
    if (!fallback) return { ok: false, rule: own.rule, detail: `${own.reason}, and no fallback approver is configured`, stage: role };
    const instead = candidate('fallback approver', fallback, 'no fallback approver is configured', who);
    if (!instead.ok) return { ok: false, rule: instead.rule, detail: `${own.reason}, and ${instead.reason}`, stage: role };
    stages.push({ role, approverId: instead.approverId, fallbackReason: own.reason });
  }
  return { ok: true, stages };
}

interface Candidates {
  subjectId: string;
  requester: string | null;
  directory: Directory;
}

/** Whether `id` (the `label` of a stage) can approve; `missing` says why when there is nobody. */
function candidate(
  label: string,
  id: string | null | undefined,
  missing: string,
  { subjectId, requester, directory }: Candidates,
): { ok: true; approverId: string } | { ok: false; rule: 'no_approver' | 'self_approval'; reason: string } {
  if (!id) return { ok: false, rule: 'no_approver', reason: missing };
  const approverId = canonicalEmployeeId(id);
  // Self before status: the subject is active here, so "is the subject" is the true reason.
  if (approverId === subjectId) return { ok: false, rule: 'self_approval', reason: `the ${label} ${approverId} is the person the access is for` };
  if (approverId === requester) return { ok: false, rule: 'self_approval', reason: `the ${label} ${approverId} made the request` };
  const person = directory(approverId);
  if (!person) return { ok: false, rule: 'no_approver', reason: `the ${label} ${approverId} is not a known person` };
  if (person.status !== 'active') return { ok: false, rule: 'no_approver', reason: `the ${label} ${approverId} is ${person.status}` };
  return { ok: true, approverId };
}

/**
 * Where a stage escalates to when its approver stays silent: the approver's own manager, if
 * active and not excluded (the subject and the requester, so escalation never becomes
 * self-approval). Otherwise nobody, with why: the stage keeps waiting until it expires.
 */
export function escalationApprover(
  stageApprover: string,
  directory: Directory,
  exclude: ReadonlyArray<string | null> = [],
): { ok: true; approverId: string } | { ok: false; reason: string } {
  const approverId = canonicalEmployeeId(stageApprover);
  const approver = directory(approverId);
  if (!approver) return { ok: false, reason: `the approver ${approverId} is not a known person` };
  const managerId = approver.managerId;
  if (!managerId) return { ok: false, reason: `no manager is recorded for the approver ${approverId}` };
  const id = canonicalEmployeeId(managerId);
  if (id === approverId) return { ok: false, reason: `the approver ${approverId} is recorded as their own manager` };
  if (exclude.some((x) => x !== null && canonicalEmployeeId(x) === id)) return { ok: false, reason: `the approver's manager ${id} is the subject or the requester` };
  const manager = directory(id);
  if (!manager) return { ok: false, reason: `the approver's manager ${id} is not a known person` };
  if (manager.status !== 'active') return { ok: false, reason: `the approver's manager ${id} is ${manager.status}` };
  return { ok: true, approverId: id };
}

/** A Directory over a plain record of people keyed by employee id (own keys only, ids folded). */
export function directoryOf(people: Readonly<Record<string, DirectoryPerson>>): Directory {
  const byId = new Map(Object.entries(people).map(([id, person]) => [canonicalEmployeeId(id), person]));
  return (employeeId) => byId.get(canonicalEmployeeId(employeeId));
}
