// Alerts reach people: a raised alert goes through the real BullMQ queue and worker to real
// SMTP (the in-process capture) and to an HTTP receiver in this test that verifies the
// Standard Webhooks signature with the `standardwebhooks` library, as a SIEM or a chat relay
// would. Each case has its own database and Redis prefix, so the dispatcher sees only its alerts.
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { simpleParser } from 'mailparser';
import { pino } from 'pino';
import { Webhook } from 'standardwebhooks';
import { eq, inArray } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, dropDatabase, type Db } from '../../db/client.js';
import { alerts } from '../../db/schema.js';
import { raiseAlert, resolveAlerts, type NewAlert } from '../../services/alerts.js';
import { createAlertQueue, type AlertJob, type AlertsConfig, type DispatchOptions } from '../../services/alert-delivery.js';
import { createMailer } from '../../services/mailer.js';
import { deleteKeysWithPrefix, redisConnection } from '../../services/redis.js';
import { createAlertWorker, startAlertDispatcher } from '../../worker/alert-worker.js';
import type { Queue } from 'bullmq';
import { eventually, freshDatabase } from '../support/engine.js';
import { testConfig } from '../support/config.js';
import { testEnv, uniqueName } from '../support/env.js';
import { startSmtpCapture, type SmtpCapture } from '../support/smtp.js';

const logger = pino({ level: 'silent' });
const secret = `whsec_${randomBytes(32).toString('base64')}`;

// ---- the webhook receiver: verifies every request, answers what its path is told to ----

interface Received {
  path: string;
  headers: Record<string, string>;
  body: { type: string; timestamp: string; text: string; alerts: Array<{ id: string; kind: string; severity: string; subject: string; count: number; details: Record<string, unknown> }> };
}

let receiver: Server;
let receiverUrl: string;
let receiverPort: number;
const received: Received[] = [];
/** Requests whose signature did not verify: must stay empty. */
const refused: string[] = [];
const answers = new Map<string, number>();

let smtp: SmtpCapture;

beforeAll(async () => {
  smtp = await startSmtpCapture();
  const verifier = new Webhook(secret);
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)]));
      try {
        const body = verifier.verify(raw, headers) as Received['body'];
        received.push({ path: req.url ?? '', headers, body });
      } catch (err) {
        refused.push(`${req.url}: ${(err as Error).message}`);
        res.writeHead(401).end();
        return;
      }
      res.writeHead(answers.get(req.url ?? '') ?? 204).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  receiverPort = (receiver.address() as AddressInfo).port;
  receiverUrl = `http://127.0.0.1:${receiverPort}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => receiver?.close(() => resolve()));
  await smtp?.stop();
  expect(refused).toEqual([]);
});

// ---- one delivery pipeline per case ----------------------------------------------------

interface Delivery {
  db: Db;
  queue: Queue<AlertJob>;
  config: AlertsConfig;
  /** Starts the outbox pass again with other options (the one running is stopped). */
  restartDispatcher(options: DispatchOptions): Promise<void>;
  stop(): Promise<void>;
}

const running: Delivery[] = [];

async function startDelivery(alertsConfig: Record<string, unknown>, options: { raw?: AlertsConfig; dispatch?: DispatchOptions } = {}): Promise<Delivery> {
  const databaseUrl = await freshDatabase(testEnv.databaseUrl);
  const handle = createDb(databaseUrl, { max: 5 });
  const prefix = `${testEnv.redisPrefix}:${uniqueName('alerts')}`;
  // Through the real config schema (defaults, the secret check), unless a case needs what the schema would refuse.
  const config = options.raw ?? testConfig(testEnv.ldap, { alerts: alertsConfig }).alerts;
  const mailer = createMailer({ smtpUrl: smtp.url, from: 'jml@example.com' });
  // Three attempts 50 ms apart: the retry path in milliseconds.
  const queue = createAlertQueue(redisConnection(testEnv.redisUrl, 'producer'), prefix, { attempts: 3, backoffMs: 50 });
  const worker = createAlertWorker({ db: handle.db, alerts: config, mailer, logger, connection: redisConnection(testEnv.redisUrl, 'worker'), prefix });
  const dispatch = (o: DispatchOptions) => startAlertDispatcher(handle.db, queue, config, logger, { intervalMs: 200, redeliverFailedAfterMs: null, ...o });
  let dispatcher = dispatch(options.dispatch ?? {});
  const delivery: Delivery = {
    db: handle.db,
    queue,
    config,
    async restartDispatcher(o) {
      await dispatcher.stop();
      dispatcher = dispatch(o);
    },
    async stop() {
      await dispatcher.stop();
      await worker.close();
      await queue.close();
      await mailer.close();
      await handle.close();
      await dropDatabase(databaseUrl);
      await deleteKeysWithPrefix(testEnv.redisUrl, prefix);
    },
  };
  running.push(delivery);
  return delivery;
}

afterAll(async () => {
  for (const delivery of running.splice(0)) await delivery.stop();
});

// ---- helpers -----------------------------------------------------------------------------

function grantFailed(n: string, overrides: Partial<NewAlert> = {}): NewAlert {
  return {
    kind: 'grant_failed',
    severity: 'critical',
    subject: `Granting vpn-${n} to E${n} failed`,
    details: { grantId: `g-${n}`, employeeId: `E${n}`, entitlementId: `vpn-${n}`, target: 'corp-ldap', error: 'LDAP 53: unwilling to perform' },
    dedupeKey: `grant_failed:${n}`,
    ...overrides,
  };
}

async function raise(db: Db, ...items: NewAlert[]): Promise<string[]> {
  // One transaction: the alerts commit together, as a burst does.
  return db.transaction(async (tx) => {
    const ids: string[] = [];
    for (const item of items) ids.push((await raiseAlert(tx, item))!);
    return ids;
  });
}

async function alertRow(db: Db, id: string) {
  const [row] = await db.select().from(alerts).where(eq(alerts.id, id));
  return row!;
}

async function waitForDelivery(db: Db, id: string, status: 'delivered' | 'failed' | 'none') {
  return eventually(async () => {
    const row = await alertRow(db, id);
    return row.deliveryStatus === status ? row : undefined;
  }, 20_000);
}

const mailTo = (address: string) => smtp.messages.filter((m) => m.to.includes(address));
const hooksAt = (path: string) => received.filter((r) => r.path === path);
const recipient = () => `ops-${uniqueName('r')}@example.com`;
const hookPath = () => `/${uniqueName('hook')}`;

// ---- the cases ---------------------------------------------------------------------------

describe('alert delivery', () => {
  it('emails a raised alert over SMTP and posts it, signed, to the webhook; a repeat while open sends nothing more; a reopened alert is delivered again', async () => {
    const [alice, bob] = [recipient(), recipient()];
    const path = hookPath();
    const { db } = await startDelivery({ email: [alice, bob], webhook: [`${receiverUrl}${path}`], webhookSecret: secret });

    const [id] = await raise(db, grantFailed('1001'));
    const row = await waitForDelivery(db, id!, 'delivered');

    // The email: to each recipient, naming severity and kind, with the facts and the error.
    expect(mailTo(alice)).toHaveLength(1);
    expect(mailTo(bob)).toHaveLength(1);
    const mail = await simpleParser(mailTo(alice)[0]!.raw);
    expect(mail.subject).toContain('[critical] grant_failed');
    expect(mail.subject).toContain('Granting vpn-1001 to E1001 failed');
    expect(mail.text).toContain('Granting vpn-1001 to E1001 failed');
    expect(mail.text).toMatch(/Employee: E1001/);
    expect(mail.text).toMatch(/Access: vpn-1001/);
    expect(mail.text).toMatch(/Target system: corp-ldap/);
    expect(mail.text).toContain('> LDAP 53: unwilling to perform');
    expect(mail.text).toMatch(/Seen: once/);
    expect(mail.html).toContain('<html lang="en">');
    expect(mail.html).toContain('<th scope="row"');

    // The webhook: verified by the receiver (anything else would be in `refused`), one alert.
    const hooks = hooksAt(path);
    expect(hooks).toHaveLength(1);
    expect(hooks[0]!.body.type).toBe('jml.alert');
    expect(hooks[0]!.body.alerts).toEqual([expect.objectContaining({ id, kind: 'grant_failed', severity: 'critical', count: 1, details: expect.objectContaining({ employeeId: 'E1001' }) })]);
    expect(hooks[0]!.headers['webhook-id']).toBeTruthy();

    // The delivery state, as the API shows it: both channels took it, and nothing says where they point.
    expect(row.deliveredAt).toBeInstanceOf(Date);
    expect(row.notifications.map((n) => [n.channel, n.ok])).toEqual(expect.arrayContaining([['email', true], [`webhook:127.0.0.1:${receiverPort}`, true]]));
    expect(row.notifications).toHaveLength(2);
    expect(JSON.stringify(row.notifications)).not.toContain(path);
    expect(JSON.stringify(row.notifications)).not.toContain(alice);

    // Raised again while open (a retry): counted, not sent. A later alert's delivery proves a pass ran since.
    await raise(db, grantFailed('1001'));
    const [marker] = await raise(db, grantFailed('1002', { severity: 'warning' }));
    await waitForDelivery(db, marker!, 'delivered');
    const repeated = await alertRow(db, id!);
    expect(repeated.count).toBe(2);
    expect(repeated.deliveryStatus).toBe('delivered');
    expect(repeated.notifications).toHaveLength(2);
    expect(mailTo(alice).filter((m) => m.subject?.includes('E1001'))).toHaveLength(1);
    expect(hooksAt(path).filter((h) => h.body.alerts.some((a) => a.id === id))).toHaveLength(1);

    // Resolved, then its cause comes back: open again, and delivered again.
    await db.transaction((tx) => resolveAlerts(tx, ['grant_failed:1001'], 'a retry made the grant active'));
    await raise(db, grantFailed('1001'));
    await eventually(async () => (mailTo(alice).filter((m) => m.subject?.includes('E1001')).length === 2 ? true : undefined));
    const reopened = await waitForDelivery(db, id!, 'delivered');
    expect(reopened.count).toBe(1);
    expect(reopened.status).toBe('open');
    await eventually(async () => (hooksAt(path).filter((h) => h.body.alerts.some((a) => a.id === id)).length === 2 ? true : undefined));
    const again = await eventually(async () => {
      const r = await alertRow(db, id!);
      return r.notifications.length === 4 ? r : undefined;
    });
    expect(again.notifications.filter((n) => n.channel === 'email').map((n) => n.ok)).toEqual([true, true]);
  });

  it('sends one digest, by email and by webhook, when more than digestAfter alerts open at once', async () => {
    const ops = recipient();
    const path = hookPath();
    const { db } = await startDelivery({ email: [ops], webhook: [`${receiverUrl}${path}`], webhookSecret: secret, digestAfter: 5 });

    const ids = await raise(db, ...Array.from({ length: 7 }, (_, i) => grantFailed(`20${i}`, { severity: i < 2 ? 'critical' : 'warning' })));
    await eventually(async () => {
      const rows = await db.select().from(alerts).where(inArray(alerts.id, ids));
      return rows.every((r) => r.deliveryStatus === 'delivered') ? rows : undefined;
    });

    expect(mailTo(ops)).toHaveLength(1);
    const mail = await simpleParser(mailTo(ops)[0]!.raw);
    expect(mail.subject).toBe('JML alerts: 7 opened at once (2 critical, 5 warning)');
    for (let i = 0; i < 7; i += 1) expect(mail.text).toContain(`grant_failed: Granting vpn-20${i} to E20${i} failed`);
    // Most severe first: the critical ones lead.
    expect(mail.text!.indexOf('[critical]')).toBeLessThan(mail.text!.indexOf('[warning]'));
    expect(mail.html).toContain('<th scope="col"');

    const hooks = hooksAt(path);
    expect(hooks).toHaveLength(1);
    expect(hooks[0]!.body.type).toBe('jml.alert.digest');
    expect(hooks[0]!.body.alerts.map((a) => a.id).sort()).toEqual([...ids].sort());
  });

  it('a webhook answering 500 is retried, then the alert is failed with the error recorded; the email went once; a later round delivers it', async () => {
    const ops = recipient();
    const path = hookPath();
    answers.set(path, 500);
    const delivery = await startDelivery({ email: [ops], webhook: [`${receiverUrl}${path}`], webhookSecret: secret });
    const { db } = delivery;

    const [id] = await raise(db, grantFailed('3001'));
    const failed = await waitForDelivery(db, id!, 'failed');
    const hookLabel = `webhook:127.0.0.1:${receiverPort}`;
    // Three attempts (the queue's setting here), each recorded; the email was not sent again on retries.
    expect(failed.notifications.filter((n) => n.channel === hookLabel)).toEqual(Array.from({ length: 3 }, () => expect.objectContaining({ ok: false, error: 'HTTP 500' })));
    expect(failed.notifications.filter((n) => n.channel === 'email')).toEqual([expect.objectContaining({ ok: true })]);
    expect(failed.deliveredAt).toBeNull();
    expect(mailTo(ops)).toHaveLength(1);
    const attempts = hooksAt(path);
    expect(attempts).toHaveLength(3);
    // One message, retried: the same webhook-id each time, so a receiver can drop repeats.
    expect(new Set(attempts.map((a) => a.headers['webhook-id'])).size).toBe(1);

    // The receiver is back; the alert is still open: its next round goes to the webhook only.
    answers.set(path, 200);
    await delivery.restartDispatcher({ redeliverFailedAfterMs: 0 });
    const delivered = await waitForDelivery(db, id!, 'delivered');
    expect(delivered.notifications.at(-1)).toEqual(expect.objectContaining({ channel: hookLabel, ok: true }));
    expect(hooksAt(path)).toHaveLength(4);
    expect(mailTo(ops)).toHaveLength(1);
  });

  it('a recipient the mailer refuses for good is not retried: the alert is failed after one attempt', async () => {
    // A display name: the mailer takes plain addresses only, and refuses this permanently.
    // (The config schema would refuse it first; this case goes past it on purpose.)
    const raw: AlertsConfig = { email: ['Ops <ops@example.com>'], webhook: [], ratePerMinute: 600, digestAfter: 5 };
    const { db } = await startDelivery({}, { raw });
    const [id] = await raise(db, grantFailed('4001'));
    const row = await waitForDelivery(db, id!, 'failed');
    expect(row.notifications).toEqual([expect.objectContaining({ channel: 'email', ok: false, error: expect.stringContaining('permanent') })]);
  });

  it('with no channel configured, an alert is only shown: delivery state none', async () => {
    const { db } = await startDelivery({});
    const [id] = await raise(db, grantFailed('5001'));
    const row = await waitForDelivery(db, id!, 'none');
    expect(row.notifications).toEqual([]);
  });

  it('keeps to alerts.ratePerMinute: the third alert in a minute waits in the queue', async () => {
    const ops = recipient();
    const { db, queue } = await startDelivery({ email: [ops], ratePerMinute: 2, digestAfter: 5 });
    const ids = await raise(db, grantFailed('6001'), grantFailed('6002'), grantFailed('6003'));
    await eventually(async () => {
      const rows = await db.select().from(alerts).where(inArray(alerts.id, ids));
      return rows.filter((r) => r.deliveryStatus === 'delivered').length === 2 ? true : undefined;
    });
    // The limiter lets the third go only after the minute: it is still pending, its job waiting.
    const rows = await db.select().from(alerts).where(inArray(alerts.id, ids));
    const waiting = rows.filter((r) => r.deliveryStatus === 'pending');
    expect(waiting).toHaveLength(1);
    expect(waiting[0]!.notifications).toEqual([]);
    const counts = await queue.getJobCounts('wait', 'delayed', 'prioritized');
    expect(counts.wait! + counts.delayed! + counts.prioritized!).toBe(1);
    expect(mailTo(ops)).toHaveLength(2);
  });
});
