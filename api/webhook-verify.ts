// Standard Webhooks verification with several secrets, for rotation. The `standardwebhooks`
// library does the work (HMAC-SHA256 over `id.timestamp.body`, constant-time comparison,
// 5 minute timestamp tolerance); this only decides which secret to try next: a different
// secret can only help when the signature did not match, never with a missing header or a
// stale timestamp, which fail at once.
import type { IncomingHttpHeaders } from 'node:http';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';

const NO_MATCH = 'No matching signature found';

export type WebhookVerification =
  | { ok: true; id: string; timestamp: string; secretIndex: number }
  | { ok: false; reason: string };

function single(value: string | string[] | undefined): string | undefined {
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

export class WebhookVerifier {
  private readonly hooks: Webhook[];

  /** @param secrets `whsec_…` secrets, newest first; all are accepted during rotation. */
  constructor(secrets: readonly string[]) {
    this.hooks = secrets.map((secret, index) => {
      try {
        return new Webhook(secret);
      } catch (err) {
        throw new Error(`webhook secret #${index + 1} is not a valid whsec_ secret: ${(err as Error).message}`);
      }
    });
  }

  get secretCount(): number {
    return this.hooks.length;
  }

  /** Verifies the raw body bytes against the three `webhook-*` headers. Never throws. */
  verify(rawBody: Buffer | string, headers: IncomingHttpHeaders): WebhookVerification {
    const id = single(headers['webhook-id']);
    const timestamp = single(headers['webhook-timestamp']);
    const signature = single(headers['webhook-signature']);
    if (!id || !timestamp || !signature) return { ok: false, reason: 'Missing required headers' };
    if (this.hooks.length === 0) return { ok: false, reason: 'No webhook secret is configured' };
    const wanted = { 'webhook-id': id, 'webhook-timestamp': timestamp, 'webhook-signature': signature };
    for (const [secretIndex, hook] of this.hooks.entries()) {
      try {
        hook.verify(rawBody, wanted, { jsonParse: false });
        return { ok: true, id, timestamp, secretIndex };
      } catch (err) {
        if (err instanceof WebhookVerificationError && err.message === NO_MATCH) continue;
        return { ok: false, reason: err instanceof WebhookVerificationError ? err.message : 'Invalid signature headers' };
      }
    }
    return { ok: false, reason: NO_MATCH };
  }
}
