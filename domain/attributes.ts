// One schema for a person's HR attributes, whichever door they came in by (webhook, SCIM,
// CSV). The same length caps and character rules everywhere, and nothing is trimmed or
// coerced: a value that is not what its field takes is an error naming the field, so what
// is stored (and written to the directory) is exactly what HR sent, or nothing.
import { z } from 'zod';
import { employeeIdSchema } from './employee-id.js';

/** Caps. A name or title longer than this is a mistake (or an attack), not a person. */
export const ATTRIBUTE_LIMITS = {
  text: 256,
  shortText: 64,
  email: 254,
  attributes: 100,
  key: 64,
  /** An attribute we do not know is kept as sent (any JSON), this big at most when serialised. */
  unknownJson: 4_096,
  /** ...and this deep at most. */
  unknownDepth: 8,
} as const;

/** Keys that must never be set on an object by input. */
const UNSAFE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
/** Attribute names: a letter or `_`, then letters, digits, `_ . -`. */
export const ATTRIBUTE_KEY_PATTERN = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;

// Control characters (C0, DEL, C1, NUL among them), lone surrogates, and the bidirectional
// embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069) that make text display
// other than it reads ("Trojan Source").
const FORBIDDEN_CHARACTERS = /[\p{Cc}\p{Cs}\u202A-\u202E\u2066-\u2069]/u;

/**
 * What is wrong with a text value, or null when it is fine: the one character rule of every
 * input. Not trimmed, not normalised: a padded or non-NFC value is refused, never fixed.
 */
export function textProblem(value: string, max: number = ATTRIBUTE_LIMITS.text): string | null {
  if (value.length > max) return `must be at most ${max} characters`;
  if (FORBIDDEN_CHARACTERS.test(value)) return 'must not contain control characters, NUL or bidirectional overrides';
  if (value !== value.trim()) return 'must not start or end with white space';
  if (value !== value.normalize('NFC')) return 'must be in Unicode normalisation form NFC';
  return null;
}

/** A zod string under the text rule. */
export const textSchema = (max: number = ATTRIBUTE_LIMITS.text) =>
  z.string('must be a string').superRefine((value, ctx) => {
    const problem = textProblem(value, max);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

/**
 * What is wrong with an attribute we do not know, or null. Any JSON is kept, bounded in size
 * and depth, with every string in it (keys too) under the text rule and its cap, as a known
 * attribute's (a `displayName` or `city` is no longer than a `title`). Walked with a stack, not
 * recursion, so no input can exhaust the call stack.
 */
export function unknownValueProblem(value: unknown): string | null {
  const stack: Array<{ value: unknown; depth: number }> = [{ value, depth: 0 }];
  let size = 0;
  while (stack.length) {
    const { value: current, depth } = stack.pop()!;
    if (depth > ATTRIBUTE_LIMITS.unknownDepth) return `must be nested at most ${ATTRIBUTE_LIMITS.unknownDepth} levels deep`;
    if (current === null || typeof current === 'boolean') size += 5;
    else if (typeof current === 'number') {
      if (!Number.isFinite(current)) return 'must be JSON';
      size += 24;
    } else if (typeof current === 'string') {
      const problem = textProblem(current);
      if (problem) return problem;
      size += current.length + 2;
    } else if (Array.isArray(current)) {
      size += 2 + current.length;
      for (const item of current) stack.push({ value: item, depth: depth + 1 });
    } else if (typeof current === 'object' && Object.getPrototypeOf(current) === Object.prototype) {
      for (const [key, item] of Object.entries(current)) {
        const problem = textProblem(key, ATTRIBUTE_LIMITS.key);
        if (problem) return `has a key that ${problem}`;
        size += key.length + 4;
        stack.push({ value: item, depth: depth + 1 });
      }
      size += 2;
    } else {
      return 'must be JSON';
    }
    if (size > ATTRIBUTE_LIMITS.unknownJson) return `must be JSON of at most ${ATTRIBUTE_LIMITS.unknownJson} characters`;
  }
  return null;
}

const unknownAttribute = z.unknown().superRefine((value, ctx) => {
  const problem = value === undefined ? 'must be a JSON value' : unknownValueProblem(value);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

/** The attributes the engine knows, and the rule each value must meet. */
export const KNOWN_ATTRIBUTES = {
  givenName: textSchema(),
  familyName: textSchema(),
  email: z.email('must be an e-mail address').max(ATTRIBUTE_LIMITS.email, `must be at most ${ATTRIBUTE_LIMITS.email} characters`),
  department: textSchema(),
  title: textSchema(),
  location: textSchema(),
  employmentType: textSchema(ATTRIBUTE_LIMITS.shortText),
  /** The manager's employee id, canonical like the person's. */
  managerId: employeeIdSchema('must be a string'),
} as const;

const attributesObject = z
  .object({
    givenName: KNOWN_ATTRIBUTES.givenName.optional(),
    familyName: KNOWN_ATTRIBUTES.familyName.optional(),
    email: KNOWN_ATTRIBUTES.email.optional(),
    department: KNOWN_ATTRIBUTES.department.optional(),
    title: KNOWN_ATTRIBUTES.title.optional(),
    location: KNOWN_ATTRIBUTES.location.optional(),
    employmentType: KNOWN_ATTRIBUTES.employmentType.optional(),
    managerId: KNOWN_ATTRIBUTES.managerId.optional(),
  })
  .catchall(unknownAttribute);

/**
 * A person's attributes, from any input. Every field optional (an update sends what
 * changed); unknown ones kept as sent under the rules above. Issues are reported at the
 * attribute's own path, so each door can name the field as its sender knows it.
 */
export const identityAttributesSchema = z.unknown().transform((input, ctx): z.output<typeof attributesObject> => {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    ctx.addIssue({ code: 'custom', message: 'must be an object' });
    return z.NEVER;
  }
  // The names as sent, before zod rebuilds the object (which would drop a `__proto__` silently).
  const keys = Object.keys(input);
  let badNames = keys.length > ATTRIBUTE_LIMITS.attributes;
  if (badNames) ctx.addIssue({ code: 'custom', message: `must have at most ${ATTRIBUTE_LIMITS.attributes} attributes` });
  for (const key of keys) {
    if (ATTRIBUTE_KEY_PATTERN.test(key) && !UNSAFE_KEYS.has(key)) continue;
    badNames = true;
    ctx.addIssue({ code: 'custom', path: [key], message: `attribute names must be 1..${ATTRIBUTE_LIMITS.key} characters: a letter or _, then letters, digits, _ . -` });
  }
  // The values whatever the names, so one answer lists every bad field.
  const values = attributesObject.safeParse(input);
  if (!values.success) for (const issue of values.error.issues) ctx.addIssue({ code: 'custom', path: issue.path, message: issue.message });
  if (values.success && !badNames) return values.data;
  // Refused either way (issues were added); the input as sent is what refinements further out
  // that still run (the webhook's "a hire needs a name") get to look at.
  return input as z.output<typeof attributesObject>;
});

/** The shape the attributes are parsed into, for documentation (the OpenAPI document). */
export const identityAttributesShape = attributesObject;

export type ParsedAttributes = z.output<typeof identityAttributesSchema>;

/** Attributes as a result: the parsed value, or each bad attribute with what is wrong with it. */
export function parseAttributes(input: unknown): { ok: true; attributes: ParsedAttributes } | { ok: false; issues: Array<{ attribute: string; message: string }> } {
  const result = identityAttributesSchema.safeParse(input);
  if (result.success) return { ok: true, attributes: result.data };
  return { ok: false, issues: result.error.issues.map((issue) => ({ attribute: issue.path.map(String).join('.'), message: issue.message })) };
}
