// The webhook verifier: Standard Webhooks signatures over the exact body bytes, with several
// secrets for rotation. Signatures come from two signers: the `standardwebhooks` library (what
// most senders use; it signs text, so only for bodies that are valid UTF-8) and `signBytes`
// below, the spec's formula over raw bytes with node:crypto.
import { createHmac, randomBytes } from 'node:crypto';
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

/** `v1,` HMAC-SHA256 of `${id}.${timestamp}.` + the bytes, keyed with the decoded secret, as the spec says. */
function signBytes(secret: string, id: string, timestamp: string, bytes: Uint8Array): string {
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  return `v1,${createHmac('sha256', key).update(Buffer.concat([Buffer.from(`${id}.${timestamp}.`), bytes])).digest('base64')}`;
}

function rawHeaders(secret: string, bytes: Uint8Array, id = 'msg_raw', timestamp = String(Math.floor(Date.now() / 1000))) {
  return { 'webhook-id': id, 'webhook-timestamp': timestamp, 'webhook-signature': signBytes(secret, id, timestamp, bytes) };
}

/** A body with the bytes `ff fe` in a name: not valid UTF-8; a lossy decode makes them U+FFFD U+FFFD. */
const invalidUtf8 = Buffer.concat([Buffer.from('{"type":"hire","employeeId":"E1","attributes":{"givenName":"'), Buffer.from([0xff, 0xfe]), Buffer.from('","familyName":"Lovelace"}}')]);

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
    expect(() => new WebhookVerifier(['whsec_not base64!'])).toThrow(/secret #1 is not a valid whsec_ secret: the secret is not base64/);
  });

  it('agrees with the library on a body that is valid UTF-8, non-ASCII included', () => {
    const text = JSON.stringify({ type: 'hire', employeeId: 'E1', attributes: { givenName: 'Zoë', familyName: 'Brontë' } });
    const verifier = new WebhookVerifier([current]);
    // Signed by the library over the text, verified over its UTF-8 bytes, and the other way round.
    expect(verifier.verify(Buffer.from(text, 'utf8'), headers(current, text, 'msg_lib'))).toMatchObject({ ok: true, id: 'msg_lib' });
    const raw = rawHeaders(current, Buffer.from(text, 'utf8'), 'msg_raw_utf8');
    expect(() => new Webhook(current).verify(text, raw)).not.toThrow();
    expect(verifier.verify(Buffer.from(text, 'utf8'), raw)).toMatchObject({ ok: true, id: 'msg_raw_utf8' });
  });
});

describe('WebhookVerifier over raw bytes', () => {
  it('accepts a signature over the raw bytes of a body that is not valid UTF-8', () => {
    const verifier = new WebhookVerifier([current]);
    expect(verifier.verify(invalidUtf8, rawHeaders(current, invalidUtf8, 'msg_ff_fe'))).toMatchObject({ ok: true, id: 'msg_ff_fe', secretIndex: 0 });
  });

  it('refuses the same bytes signed over their lossily decoded text', () => {
    const decoded = Buffer.from(invalidUtf8.toString('utf8'), 'utf8');
    expect(decoded.equals(invalidUtf8)).toBe(false); // ff fe became ef bf bd ef bf bd
    const overDecoded = rawHeaders(current, decoded, 'msg_decoded');
    const verifier = new WebhookVerifier([current]);
    expect(verifier.verify(invalidUtf8, overDecoded)).toEqual({ ok: false, reason: 'No matching signature found' });
    // That signature belongs to the decoded bytes only: two bodies no longer share one.
    expect(verifier.verify(decoded, overDecoded)).toMatchObject({ ok: true });
    // The library's own signature over the Buffer is the lossy one, and is refused just the same.
    const librarySigned = headers(current, invalidUtf8 as unknown as string, 'msg_library');
    expect(verifier.verify(invalidUtf8, librarySigned)).toEqual({ ok: false, reason: 'No matching signature found' });
  });

  it('refuses the body when any one byte is changed', () => {
    const verifier = new WebhookVerifier([current, previous]);
    const signed = rawHeaders(current, invalidUtf8);
    for (const index of [0, invalidUtf8.indexOf(0xff), invalidUtf8.length - 1]) {
      const tampered = Buffer.from(invalidUtf8);
      tampered[index] = tampered[index]! ^ 0x01;
      expect(verifier.verify(tampered, signed)).toEqual({ ok: false, reason: 'No matching signature found' });
    }
    // One byte more, or one less, is another body too.
    expect(verifier.verify(Buffer.concat([invalidUtf8, Buffer.from(' ')]), signed)).toMatchObject({ ok: false });
    expect(verifier.verify(invalidUtf8.subarray(1), signed)).toMatchObject({ ok: false });
  });

  it.each(['1764400000xyz', 'NOW_xyz', ' NOW', 'NOW ', '+NOW', 'NOW.0', '-1', '0xNOW', 'NOWe0', '１２３'])(
    'refuses the timestamp %j, signed as sent, as invalid',
    (template) => {
      const timestamp = template.replace('NOW', String(Math.floor(Date.now() / 1000)));
      const verifier = new WebhookVerifier([current]);
      const result = verifier.verify(invalidUtf8, rawHeaders(current, invalidUtf8, 'msg_ts', timestamp));
      expect(result).toMatchObject({ ok: false, reason: expect.stringMatching(/^Invalid timestamp/) });
    },
  );

  it('signs the timestamp as sent: the same instant spelled with a leading zero is another message', () => {
    const now = String(Math.floor(Date.now() / 1000));
    const verifier = new WebhookVerifier([current]);
    const signed = rawHeaders(current, invalidUtf8, 'msg_zero', now);
    expect(verifier.verify(invalidUtf8, signed)).toMatchObject({ ok: true, timestamp: now });
    expect(verifier.verify(invalidUtf8, { ...signed, 'webhook-timestamp': `0${now}` })).toEqual({ ok: false, reason: 'No matching signature found' });
  });

  it('rotation: accepts any configured secret, newest first, and any v1 entry of the header', () => {
    const verifier = new WebhookVerifier([current, previous]);
    const byPrevious = rawHeaders(previous, invalidUtf8, 'msg_rot');
    expect(verifier.verify(invalidUtf8, byPrevious)).toMatchObject({ ok: true, secretIndex: 1 });

    // A sender mid-rotation signs with both; the newest secret is the one reported.
    const byCurrent = rawHeaders(current, invalidUtf8, 'msg_rot');
    const both = `${byPrevious['webhook-signature']} ${byCurrent['webhook-signature']}`;
    expect(verifier.verify(invalidUtf8, { ...byPrevious, 'webhook-signature': both })).toMatchObject({ ok: true, secretIndex: 0 });

    // Unknown versions and stray entries are skipped; a v1 entry that matches is enough.
    const digest = byCurrent['webhook-signature'].slice('v1,'.length);
    const noisy = `v2,${digest} v1a,${digest} garbage v1,AAAA ${byCurrent['webhook-signature']}`;
    expect(verifier.verify(invalidUtf8, { ...byCurrent, 'webhook-signature': noisy })).toMatchObject({ ok: true, secretIndex: 0 });
    // ...and without it, nothing matches: not the digest under another version, nor the digest
    // with a character added (which a lenient base64 decode would read as the same bytes).
    expect(verifier.verify(invalidUtf8, { ...byCurrent, 'webhook-signature': `v2,${digest} v1,${digest}=` })).toEqual({ ok: false, reason: 'No matching signature found' });

    // A secret that was retired is no longer accepted.
    expect(new WebhookVerifier([current]).verify(invalidUtf8, byPrevious)).toEqual({ ok: false, reason: 'No matching signature found' });
  });
});
