// Birthright policy: which entitlements a person gets from their HR attributes alone.
import type { BirthrightRule } from './config.js';
import type { IdentityAttributes } from './types.js';

export interface BirthrightGrant {
  entitlementId: string;
  /** Every rule that grants it; an entitlement stays due while any of them matches. */
  rules: string[];
}

function matches(rule: BirthrightRule, attributes: IdentityAttributes): boolean {
  return Object.entries(rule.when).every(([attribute, expected]) => {
    const actual = attributes[attribute];
    if (typeof actual !== 'string') return false;
    const accepted = Array.isArray(expected) ? expected : [expected];
    return accepted.some((value) => value.toLowerCase() === actual.toLowerCase());
  });
}

/** Evaluates every rule; the result is sorted by entitlement id so it is stable. */
export function evaluateBirthright(rules: readonly BirthrightRule[], attributes: IdentityAttributes): BirthrightGrant[] {
  const due = new Map<string, string[]>();
  for (const rule of rules) {
    if (!matches(rule, attributes)) continue;
    for (const entitlementId of rule.grant) due.set(entitlementId, [...(due.get(entitlementId) ?? []), rule.name]);
  }
  return [...due.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([entitlementId, ruleNames]) => ({ entitlementId, rules: ruleNames }));
}
