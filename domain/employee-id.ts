// Employee ids are case-insensitive everywhere: directories match `uid` without regard to
// case, so `E1001` and `e1001` are one person. Every input (webhook, SCIM, CSV, API path or
// query) folds the id with this one function before it is stored, compared or looked up;
// Postgres backs it with a unique index on lower(employee_id).
//
// Upper case is the canonical spelling because HR ids are usually written that way (E1001),
// so what an operator sees matches what HR sent.
import { z } from 'zod';

/** Letters, digits, `.`, `_`, `-`; 1..64 characters. ASCII only, so folding is exact. */
export const EMPLOYEE_ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
export const EMPLOYEE_ID_RULE = 'must be 1..64 characters of letters, digits, . _ -';

export function canonicalEmployeeId(id: string): string {
  return id.toUpperCase();
}

/** The canonical id, or null when `id` is not a valid employee id (never trimmed: a padded id is refused). */
export function parseEmployeeId(id: unknown): string | null {
  return typeof id === 'string' && EMPLOYEE_ID_PATTERN.test(id) ? canonicalEmployeeId(id) : null;
}

/** The zod form of the rule, for request schemas: valid as sent, never trimmed, folded. */
export const employeeIdSchema = (typeError: string) => z.string(typeError).regex(EMPLOYEE_ID_PATTERN, EMPLOYEE_ID_RULE).transform(canonicalEmployeeId);
