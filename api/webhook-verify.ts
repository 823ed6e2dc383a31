// Standard Webhooks verification (HMAC-SHA256, keyed with the base64-decoded `whsec_` secret,
// over `${webhook-id}.${webhook-timestamp}.` followed by the body), with several secrets for
// rotation. Done here with node:crypto, not with the `standardwebhooks` library: that library
// turns a Buffer body into a string before signing (a lossy UTF-8 decode, so two different
// byte bodies that decode to the same U+FFFD text share one signature), and it reads the
// timestamp with parseInt (so `1764400000xyz` passes). Here the signature is computed over
// the exact bytes received, and a timestamp is whole seconds in ASCII digits or nothing.
// A different secret can only help when the signature did not match, never with a missing
// header or a bad or stale timestamp, which fail at once.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

const NO_MATCH = 'No matching signature found';
const SECRET_PREFIX = 'whsec_';
/** How far the timestamp may be from now, either way (the spec's recommendation). */
const TOLERANCE_SECONDS = 5 * 60;
/** Canonical base64 only: Buffer.from(…, 'base64') would silently skip anything else. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const DIGITS = /^[0-9]+$/;

export type WebhookVerification =
  | { ok: true; id: string; timestamp: string; secretIndex: number }
  | { ok: false; reason: string };

function single(value: string | string[] | undefined): string | undefined {
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

/** The HMAC key of a `whsec_…` secret (the prefix is optional, as in the spec's libraries). */
function secretKey(secret: string): Buffer {
  const encoded = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  if (encoded.length === 0) throw new Error('the secret is empty');
  if (!BASE64.test(encoded)) throw new Error('the secret is not base64');
  return Buffer.from(encoded, 'base64');
}

/** The `v1` signatures of a `webhook-signature` header: space-separated `v1,<base64>` entries. */
function v1Signatures(header: string): Buffer[] {
  const signatures: Buffer[] = [];
  for (const entry of header.split(' ')) {
    const comma = entry.indexOf(',');
    if (comma > 0 && entry.slice(0, comma) === 'v1') signatures.push(Buffer.from(entry.slice(comma + 1), 'utf8'));
  }
  return signatures;
}

export class WebhookVerifier {
  private readonly keys: Buffer[];

  /** @param secrets `whsec_…` secrets, newest first; all are accepted during rotation. */
  constructor(secrets: readonly string[]) {
    this.keys = secrets.map((secret, index) => {
      try {
        return secretKey(secret);
      } catch (err) {
        throw new Error(`webhook secret #${index + 1} is not a valid whsec_ secret: ${(err as Error).message}`);
      }
    });
  }

  get secretCount(): number {
    return this.keys.length;
  }

  /** Verifies the raw body bytes against the three `webhook-*` headers. Never throws. */
  verify(rawBody: Uint8Array | string, headers: IncomingHttpHeaders): WebhookVerification {
    const id = single(headers['webhook-id']);
    const timestamp = single(headers['webhook-timestamp']);
    const signature = single(headers['webhook-signature']);
    if (!id || !timestamp || !signature) return { ok: false, reason: 'Missing required headers' };
    if (this.keys.length === 0) return { ok: false, reason: 'No webhook secret is configured' };
    if (!DIGITS.test(timestamp)) return { ok: false, reason: 'Invalid timestamp: webhook-timestamp must be whole seconds since the epoch, in ASCII digits' };
    const now = Math.floor(Date.now() / 1000);
    const seconds = Number(timestamp);
    if (now - seconds > TOLERANCE_SECONDS) return { ok: false, reason: 'Message timestamp too old' };
    if (seconds - now > TOLERANCE_SECONDS) return { ok: false, reason: 'Message timestamp too new' };

    const body = typeof rawBody === 'string' ? Buffer.from(rawBody, 'utf8') : rawBody;
    const given = v1Signatures(signature);
    for (const [secretIndex, key] of this.keys.entries()) {
      // The timestamp is signed as sent (all digits, checked above), not re-formatted.
      const expected = Buffer.from(createHmac('sha256', key).update(`${id}.${timestamp}.`, 'utf8').update(body).digest('base64'), 'utf8');
      // timingSafeEqual needs equal lengths; a length says nothing about the secret.
      if (given.some((candidate) => candidate.length === expected.length && timingSafeEqual(candidate, expected))) {
        return { ok: true, id, timestamp, secretIndex };
      }
    }
    return { ok: false, reason: NO_MATCH };
  }
}
