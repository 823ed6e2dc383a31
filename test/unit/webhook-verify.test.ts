// The webhook verifier: Standard Webhooks signatures with several secrets for rotation.
import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { WebhookVerifier } from '../../api/webhook-verify.js';

const newSecret = () => `whsec_${randomBytes(24).toString('base64')}`;
const current = newSecret();
const previous = newSecret();
const body = JSON.stringify({ type: 'hire', employeeId: 'E1', attributes: { givenName: 'Ada', familyName: 'Lovelace' } });

function headers(secret: string, payload: string, id = 'msg_1', at = new Date()) {
  return {
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': new Webhook(secret).sign(id, at, payload),
  };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('WebhookVerifier', () => {
  it('accepts a valid signature over the raw bytes', () => {
    const verifier = new WebhookVerifier([current]);
    const result = verifier.verify(Buffer.from(body), headers(current, body, 'msg_valid'));
    expect(result).toMatchObject({ ok: true, id: 'msg_valid', secretIndex: 0 });
  });

  it('accepts a signature made with the second secret during rotation', () => {
    const verifier = new WebhookVerifier([current, previous]);
    expect(verifier.verify(Buffer.from(body), headers(previous, body))).toMatchObject({ ok: true, secretIndex: 1 });
  });

  it('refuses a signature made with a secret it does not know', () => {
    const verifier = new WebhookVerifier([current, previous]);
    expect(verifier.verify(Buffer.from(body), headers(newSecret(), body))).toEqual({ ok: false, reason: 'No matching signature found' });
  });

  it('refuses a stale timestamp at once, even when a later secret would match', () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const signedAt = new Date('2026-11-02T09:00:00Z');
    vi.setSystemTime(signedAt);
    const verifier = new WebhookVerifier([current, previous]);
    const signed = headers(previous, body, 'msg_stale', signedAt);
    expect(verifier.verify(Buffer.from(body), signed)).toMatchObject({ ok: true });

    vi.setSystemTime(new Date(signedAt.getTime() + 6 * 60_000));
    expect(verifier.verify(Buffer.from(body), signed)).toEqual({ ok: false, reason: 'Message timestamp too old' });
  });

  it('refuses a timestamp from the future', () => {
    const verifier = new WebhookVerifier([current]);
    const result = verifier.verify(Buffer.from(body), headers(current, body, 'msg_future', new Date(Date.now() + 6 * 60_000)));
    expect(result).toEqual({ ok: false, reason: 'Message timestamp too new' });
  });

  it.each(['webhook-id', 'webhook-timestamp', 'webhook-signature'] as const)('refuses a request without the %s header', (name) => {
    const verifier = new WebhookVerifier([current]);
    const signed: Record<string, string> = headers(current, body);
    delete signed[name];
    expect(verifier.verify(Buffer.from(body), signed)).toEqual({ ok: false, reason: 'Missing required headers' });
  });

  it('refuses a tampered body', () => {
    const verifier = new WebhookVerifier([current, previous]);
    const signed = headers(current, body);
    const tampered = body.replace('Lovelace', 'Byron');
    expect(verifier.verify(Buffer.from(tampered), signed)).toEqual({ ok: false, reason: 'No matching signature found' });
  });

  it('refuses everything when no secret is configured', () => {
    const verifier = new WebhookVerifier([]);
    expect(verifier.verify(Buffer.from(body), headers(current, body))).toMatchObject({ ok: false });
  });

  it('names a secret that is not a whsec_ secret', () => {
    expect(() => new WebhookVerifier([current, 'whsec_'])).toThrow(/secret #2/);
  });
});
