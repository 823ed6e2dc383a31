// The policy of a just-in-time elevation, and of its extension: may this person elevate to
// this entitlement now, for this long, and who must say yes? Pure and deterministic (no I/O,
// no clock: `now` is given), so the API answers a 422 from it and the workflow checks an
// extension with it, replaying identically. The rules run in a fixed order and the first
// that fails is the answer. Overlapping elevations of one entitlement are allowed: their
// access is reference-counted, never refused (GCP PAM refuses them; people then wait).
import { textProblem } from './attributes.js';
import { JUSTIFICATION_MAX_LENGTH, resolveApprovalStages, sodConflict, type ApprovalStage, type Directory, type DirectoryPerson, type SodRule } from './access-policy.js';
import { formatDuration } from './duration.js';
import { canonicalEmployeeId } from './employee-id.js';
import type { IdentityAttributes } from './types.js';

export const JIT_RULES = [
  'justification_required',
  'justification_invalid',
  'duration_invalid',
  'unknown_entitlement',
  'not_jit_eligible',
  'unknown_subject',
  'subject_not_active',
  'not_eligible',
  'duration_too_long',
  'ticket_required',
  'ticket_invalid',
  'cooldown',
  'sod_conflict',
  'break_glass_not_allowed',
  'too_many_extensions',
  'not_extendable',
  'no_approver',
  'self_approval',
] as const;
export type JitRule = (typeof JIT_RULES)[number];

export type JitApproval = 'none' | 'manager' | 'owner' | 'manager_then_owner';

export interface JitEligibilityRule {
  when: Record<string, string | string[]>;
  holds: string[];
}

/** One entitlement's JIT policy (the config's `jit` block), durations in ms. */
export interface JitEntitlementPolicy {
  id: string;
  owner: string | null;
  eligible: boolean | JitEligibilityRule | JitEligibilityRule[];
  maxDuration: number;
  defaultDuration?: number;
  approval: JitApproval;
  ticketRequired: boolean;
  ticketPattern?: string;
  cooldown: number;
  maxExtensions: number;
  breakGlass: boolean;
}

export interface JitSubject extends DirectoryPerson {
  attributes: IdentityAttributes;
}

/** What is asked for; services/jit.ts takes the same from the API (SubmitElevationInput). */
export interface ElevationInput {
  /** The subject: who is elevated. */
  employeeId: string;
  entitlementId: string;
  justification: string;
  /** Absent: the entitlement's defaultDuration (else a duration is required). */
  durationMs?: number;
  /** A change or incident reference, when the policy asks for one. */
  ticket?: string | null;
  /** An emergency: granted at once without approval, a critical alert and a review by the owner. */
  breakGlass?: boolean;
  /** The employee id the requesting token is bound to; null for an admin bound to nobody. */
  requestedBy: string | null;
}

export interface ElevationContext {
  /** The entitlements with a `jit` block. */
  policies: readonly JitEntitlementPolicy[];
  subject: JitSubject | null;
  /** Entitlements the subject holds (live grants) or has pending. */
  held: readonly string[];
  pending: readonly string[];
  /** When the subject's last elevation of this entitlement ended (ms), if one did. */
  lastEndedAt: number | null;
  now: number;
  directory: Directory;
  sod: readonly SodRule[];
  fallbackApprover: string | null;
}

export type ElevationDecision =
  | { ok: true; durationMs: number; stages: ApprovalStage[]; breakGlass: boolean }
  | { ok: false; rule: JitRule; detail: string; field: string };

const refuse = (rule: JitRule, detail: string, field: string): ElevationDecision => ({ ok: false, rule, detail, field });

/** Whether the person matches the entitlement's eligibility (one rule of a list suffices). */
export function isEligible(eligible: JitEntitlementPolicy['eligible'], attributes: IdentityAttributes, held: readonly string[]): boolean {
  if (typeof eligible === 'boolean') return eligible;
  const rules = Array.isArray(eligible) ? eligible : [eligible];
  return rules.some(
    (rule) =>
      Object.entries(rule.when).every(([attribute, expected]) => {
        const actual = attributes[attribute];
        if (typeof actual !== 'string') return false;
        return (Array.isArray(expected) ? expected : [expected]).some((value) => value.toLowerCase() === actual.toLowerCase());
      }) && rule.holds.every((id) => held.includes(id)),
  );
}

/** Who approves an elevation (or an extension) of this entitlement: no stage when `none`. */
export function elevationStages(policy: JitEntitlementPolicy, subjectId: string, context: Pick<ElevationContext, 'subject' | 'directory' | 'fallbackApprover'>, requestedBy: string | null) {
  if (policy.approval === 'none' || !context.subject) return { ok: true as const, stages: [] as ApprovalStage[] };
  return resolveApprovalStages({
    subjectId,
    subject: context.subject,
    requestedBy,
    entitlement: { id: policy.id, requestable: true, owner: policy.owner, approver: policy.approval, maxDurationMs: policy.maxDuration },
    policy: { approver: policy.approval, fallbackApprover: context.fallbackApprover },
    directory: context.directory,
  });
}

export function checkElevation(input: ElevationInput, context: ElevationContext): ElevationDecision {
  const subjectId = canonicalEmployeeId(input.employeeId);
  if (input.justification.trim() === '') return refuse('justification_required', 'a justification is required: say why the access is needed', 'justification');
  const problem = textProblem(input.justification, JUSTIFICATION_MAX_LENGTH);
  if (problem) return refuse('justification_invalid', `the justification ${problem}`, 'justification');
  if (input.durationMs !== undefined && !(Number.isSafeInteger(input.durationMs) && input.durationMs > 0)) return refuse('duration_invalid', 'the duration must be longer than 0', 'duration');

  const policy = context.policies.find((p) => p.id === input.entitlementId);
  if (!policy) return refuse('unknown_entitlement', 'no entitlement with this id can be elevated to', 'entitlementId');
  if (policy.eligible === false) return refuse('not_jit_eligible', `${policy.id} cannot be elevated to`, 'entitlementId');
  const subject = context.subject;
  if (!subject) return refuse('unknown_subject', `${subjectId} is not a known person`, 'employeeId');
  if (subject.status !== 'active') return refuse('subject_not_active', `${subjectId} is ${subject.status}; only an active person can elevate`, 'employeeId');
  if (!isEligible(policy.eligible, subject.attributes, context.held)) return refuse('not_eligible', `${subjectId} does not meet the eligibility rules of ${policy.id}`, 'entitlementId');

  const durationMs = input.durationMs ?? policy.defaultDuration;
  if (durationMs === undefined) return refuse('duration_invalid', `${policy.id} has no default duration: give one`, 'duration');
  if (durationMs > policy.maxDuration) return refuse('duration_too_long', `${policy.id} is elevated for at most ${formatDuration(policy.maxDuration)}, not ${formatDuration(durationMs)}`, 'duration');

  const ticket = input.ticket?.trim() ?? '';
  if (policy.ticketRequired && ticket === '') return refuse('ticket_required', `${policy.id} needs a ticket reference`, 'ticket');
  if (ticket !== '') {
    const ticketProblem = textProblem(ticket, 200);
    if (ticketProblem) return refuse('ticket_invalid', `the ticket ${ticketProblem}`, 'ticket');
    if (policy.ticketPattern && !new RegExp(policy.ticketPattern, 'u').test(ticket)) return refuse('ticket_invalid', `the ticket does not match the pattern ${policy.id} requires`, 'ticket');
  }

  if (policy.cooldown > 0 && context.lastEndedAt !== null && context.now - context.lastEndedAt < policy.cooldown) {
    const wait = policy.cooldown - (context.now - context.lastEndedAt);
    return refuse('cooldown', `${policy.id} can be elevated to again in ${formatDuration(Math.ceil(wait / 1000) * 1000)} (cool-down ${formatDuration(policy.cooldown)})`, 'entitlementId');
  }

  const conflict = sodConflict(policy.id, context.held, context.pending, context.sod);
  if (conflict) return refuse('sod_conflict', `separation of duties rule "${conflict.rule}": ${subjectId} ${conflict.source === 'held' ? 'holds' : 'has a pending request for'} ${conflict.entitlementId}`, 'entitlementId');

  if (input.breakGlass) {
    if (!policy.breakGlass) return refuse('break_glass_not_allowed', `${policy.id} allows no break-glass elevation`, 'breakGlass');
    return { ok: true, durationMs, stages: [], breakGlass: true };
  }
  const stages = elevationStages(policy, subjectId, context, input.requestedBy === null ? null : canonicalEmployeeId(input.requestedBy));
  if (!stages.ok) return refuse(stages.rule, stages.detail, 'entitlementId');
  return { ok: true, durationMs, stages: stages.stages, breakGlass: false };
}

export interface ExtensionInput {
  /** How much longer, from the current expiry. */
  durationMs: number;
  extensionsSoFar: number;
  /** The current expiry (ms). */
  expiresAt: number;
  now: number;
}

/**
 * An extension goes through policy again: within the count, and the elevation may not then
 * reach further than maxDuration from now. The approval it needs is the elevation's own.
 */
export function checkExtension(policy: JitEntitlementPolicy, input: ExtensionInput): { ok: true; newExpiresAt: number } | { ok: false; rule: JitRule; detail: string; field: string } {
  if (!(Number.isSafeInteger(input.durationMs) && input.durationMs > 0)) return { ok: false, rule: 'duration_invalid', detail: 'the duration must be longer than 0', field: 'duration' };
  if (input.expiresAt <= input.now) return { ok: false, rule: 'not_extendable', detail: 'this elevation has ended', field: 'id' };
  if (input.extensionsSoFar >= policy.maxExtensions) return { ok: false, rule: 'too_many_extensions', detail: `${policy.id} may be extended ${policy.maxExtensions} time(s)`, field: 'duration' };
  const newExpiresAt = input.expiresAt + input.durationMs;
  if (newExpiresAt - input.now > policy.maxDuration) {
    return { ok: false, rule: 'duration_too_long', detail: `${policy.id} is elevated for at most ${formatDuration(policy.maxDuration)} from now`, field: 'duration' };
  }
  return { ok: true, newExpiresAt };
}
