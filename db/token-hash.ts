// Secrets handed out once (API bearer tokens, the links emailed to approvers) are kept only
// as their SHA-256 and found by it: a lookup by hash compares no secret in variable time.
import { createHash } from 'node:crypto';

/** SHA-256 hex of the token's UTF-8 bytes, as stored in api_tokens and approval_tokens. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}
