// Delivering alerts to people: an email to `alerts.email` and a signed POST to each
// `alerts.webhook` (Standard Webhooks), through the BullMQ `alerts` queue.
//
// The alert row is the outbox. raiseAlert commits an alert `pending` with its cause; a
// periodic pass (dispatchPendingAlerts) hands pending alerts to the queue, so an alert raised
// while Redis was down is delivered once Redis is back, and nothing is enqueued from inside a
// transaction that might still roll back. A job carries alert ids only: the row is the truth.
//
// Delivery state (`alerts.delivery_status`, shown by the API):
//   pending    not yet handed to every channel (waiting, or being retried)
//   delivered  every channel took it (`delivered_at`)
//   failed     a channel still refused it after the job's last attempt, or refused it for good
//   none       no channel is configured: the alert is only shown (API, CLI)
// Every attempt on every channel is appended to `notifications` ({channel, at, ok, error?}):
// `email` or `webhook:<host>`, never an address, a URL path or a secret.
//
// Retries: a job is attempted `attempts` times with exponential backoff (8 from 30 s: about an
// hour). A retry sends only to the channels (and recipients) that have not taken it yet, so a
// webhook outage does not repeat the email. After the last attempt the alert is `failed`. A
// failed alert that is still open (nobody acknowledged or resolved it) gets another round an
// hour after its last attempt (`redeliverFailedAfterMs`), to the channels whose last attempt
// failed only, and stays `failed` until one succeeds: an outage of a day costs a few dozen
// attempts, never a lost alert, and people who got it are not asked again.
import { createHash } from 'node:crypto';
import { Queue, UnrecoverableError, type ConnectionOptions, type Job } from 'bullmq';
import { and, asc, eq, inArray, sql } from 'drizzle-orm';
import { Webhook } from 'standardwebhooks';
import type { Db } from '../db/client.js';
import { alerts } from '../db/schema.js';
import type { JmlConfig } from '../domain/config.js';
import { alertMail, alertWebhookBody, type AlertView } from './alert-templates.js';
import { MailError, type Mailer } from './mailer.js';
import { withTimeout } from './with-timeout.js';

export const ALERTS_QUEUE = 'alerts';
export type AlertsConfig = JmlConfig['alerts'];
export type DeliveryStatus = 'pending' | 'delivered' | 'failed' | 'none';

export interface AlertJob {
  alertIds: string[];
  /** Channel (and email recipient) keys that took this job's message in an earlier attempt. */
  done?: string[];
  /** Keys that refused it for good (a permanent MailError): not tried again in this job. */
  gaveUp?: string[];
}

type AlertRow = typeof alerts.$inferSelect;
type Notification = AlertRow['notifications'][number];

/** Attempts kept per alert in `notifications`: an outage of days must not grow a row without end. */
const NOTIFICATIONS_KEPT = 100;
const WEBHOOK_TIMEOUT_MS = 10_000;
/** Alerts handed to the queue per pass; a digest carries at most this many. */
const DISPATCH_BATCH = 100;
const REDELIVER_FAILED_AFTER_MS = 60 * 60_000;
/** One dispatcher pass at a time across all worker processes (try-lock: a busy pass is skipped, not waited for). */
const DISPATCH_LOCK = 7_310_130;

export function createAlertQueue(connection: ConnectionOptions, prefix: string, options: { attempts?: number; backoffMs?: number } = {}): Queue<AlertJob> {
  return new Queue<AlertJob>(ALERTS_QUEUE, {
    connection,
    prefix,
    defaultJobOptions: {
      attempts: options.attempts ?? 8,
      backoff: { type: 'exponential', delay: options.backoffMs ?? 30_000 },
      // The row keeps the outcome; finished jobs are only kept a while for inspection.
      removeOnComplete: { age: 3_600, count: 1_000 },
      removeOnFail: { age: 86_400, count: 1_000 },
    },
  });
}

// ---- channels -------------------------------------------------------------------------

interface WebhookChannel {
  /** In `notifications`: `webhook:<host>` (host and port only: no credentials, no path, no query). */
  label: string;
  /** In job data: a hash of the URL, so that a changed URL is sent to afresh. */
  key: string;
  url: string;
}

const hash = (value: string) => createHash('sha256').update(value).digest('base64url').slice(0, 22);
const emailKey = (address: string) => `email:${hash(address.toLowerCase())}`;

function webhookChannels(config: AlertsConfig): WebhookChannel[] {
  const hosts = config.webhook.map((url) => new URL(url).host);
  return config.webhook.map((url, i) => {
    const host = hosts[i]!;
    // Two webhooks on one host (two Slack channels) are told apart by their order among that host's.
    const sameHost = hosts.filter((h) => h === host).length > 1 ? ` (${hosts.slice(0, i + 1).filter((h) => h === host).length})` : '';
    return { label: `webhook:${host}${sameHost}`, key: `webhook:${hash(url)}`, url };
  });
}

export function hasAlertChannels(config: AlertsConfig): boolean {
  return config.email.length > 0 || config.webhook.length > 0;
}

/** A webhook failure as it may be recorded: a status or an error code, never the URL. */
class WebhookError extends Error {}

async function postWebhook(channel: WebhookChannel, signer: Webhook, messageId: string, body: string, timeoutMs: number): Promise<void> {
  const now = new Date();
  let response: Response;
  try {
    response = await fetch(channel.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': 'jml-engine',
        'webhook-id': messageId,
        'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
        'webhook-signature': signer.sign(messageId, now, body),
      },
      body,
      // A redirect is a failure, not followed: the signed body goes only where it was configured to.
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    const { name, cause } = err as { name?: string; cause?: { code?: unknown } };
    if (name === 'TimeoutError' || name === 'AbortError') throw new WebhookError(`no answer within ${Math.round(timeoutMs / 1000)} s`);
    // undici's message names the address; only its code is kept.
    throw new WebhookError(`connection failed (${typeof cause?.code === 'string' ? cause.code : 'network error'})`);
  }
  // The answer is not read: only the status matters, and the connection is freed at once.
  await response.body?.cancel().catch(() => undefined);
  if (response.status < 200 || response.status > 299) throw new WebhookError(`HTTP ${response.status}`);
}

// ---- the job processor ----------------------------------------------------------------

export interface AlertDeliveryDeps {
  db: Db;
  alerts: AlertsConfig;
  mailer: Mailer;
  webhookTimeoutMs?: number;
}

export interface DeliverOptions {
  /**
   * Stable for all attempts of one delivery: the webhook-id (receivers drop a repeat) and the
   * email's Message-ID. Default: derived from the alert ids.
   */
  deliveryId?: string;
  /** Keys that took the message in an earlier attempt (AlertJob.done). */
  done?: readonly string[];
  /** Keys that refused it for good in an earlier attempt (AlertJob.gaveUp). */
  gaveUp?: readonly string[];
  /** The job's last attempt: what has not been delivered now is `failed`. */
  finalAttempt?: boolean;
}

export interface DeliveryOutcome {
  /** `nothing`: none of the alerts was still waiting for delivery (delivered meanwhile, or unknown ids). */
  state: 'delivered' | 'retry' | 'failed' | 'nothing';
  /** The alerts this attempt was for. */
  alertIds: string[];
  done: string[];
  gaveUp: string[];
  /** This attempt's failures, by channel label, as recorded. */
  failures: Array<{ channel: string; error: string; permanent: boolean }>;
}

function view(row: AlertRow): AlertView {
  return {
    id: row.id,
    kind: row.kind,
    severity: row.severity,
    status: row.status,
    subject: row.subject,
    details: (row.details ?? {}) as Record<string, unknown>,
    count: row.count,
    firstSeenAt: row.createdAt.toISOString(),
    lastSeenAt: row.lastSeenAt.toISOString(),
  };
}

/** Channel labels whose latest recorded attempt for this alert failed (or that have none). */
function channelsStillOwed(row: AlertRow, labels: string[]): Set<string> {
  const latest = new Map<string, boolean>();
  for (const n of row.notifications) latest.set(n.channel, n.ok);
  return new Set(labels.filter((label) => latest.get(label) !== true));
}

const BULLMQ_ID = /^[A-Za-z0-9_-]+$/;

/**
 * One delivery attempt of these alerts (one alert, or a digest): one email to every
 * `alerts.email` recipient and one signed POST per `alerts.webhook`, except to those that took
 * it already (`done`). Records each channel's result on each alert, sets the delivery state,
 * and says whether to retry.
 */
export async function deliverAlerts(deps: AlertDeliveryDeps, alertIds: string[], options: DeliverOptions = {}): Promise<DeliveryOutcome> {
  const done = new Set(options.done ?? []);
  const gaveUp = new Set(options.gaveUp ?? []);
  const rows = alertIds.length
    ? await deps.db
        .select()
        .from(alerts)
        .where(and(inArray(alerts.id, alertIds), inArray(alerts.deliveryStatus, ['pending', 'failed'])))
        .orderBy(asc(alerts.createdAt))
    : [];
  const nothing: DeliveryOutcome = { state: 'nothing', alertIds: [], done: [...done], gaveUp: [...gaveUp], failures: [] };
  if (rows.length === 0) return nothing;

  const webhooks = webhookChannels(deps.alerts);
  const labels = [...(deps.alerts.email.length ? ['email'] : []), ...webhooks.map((w) => w.label)];
  if (labels.length === 0) {
    // Queued before the channels were removed from the config: shown only, as the dispatcher would have decided.
    await deps.db.update(alerts).set({ deliveryStatus: 'none' }).where(and(inArray(alerts.id, rows.map((r) => r.id)), eq(alerts.deliveryStatus, 'pending')));
    return nothing;
  }
  // A pending alert is owed to every channel; a failed one (a later round) only to those whose last attempt failed.
  const owed = new Set<string>();
  for (const row of rows) {
    const forRow = row.deliveryStatus === 'pending' ? new Set(labels) : channelsStillOwed(row, labels);
    for (const label of forRow.size ? forRow : labels) owed.add(label);
  }

  const views = rows.map(view);
  const deliveryId = options.deliveryId && BULLMQ_ID.test(options.deliveryId) ? options.deliveryId : `alerts-${hash(rows.map((r) => r.id).join(','))}`;
  const attemptedAt = new Date().toISOString();
  const entries: Notification[] = [];
  const failures: DeliveryOutcome['failures'] = [];
  const settled = (key: string) => done.has(key) || gaveUp.has(key);

  const sendEmail = async () => {
    const recipients = deps.alerts.email.filter((address) => !settled(emailKey(address)));
    if (!owed.has('email') || recipients.length === 0) return;
    const mail = alertMail(views);
    const errors: MailError[] = [];
    for (const to of recipients) {
      try {
        await deps.mailer.send({ to, ...mail, messageId: `<${deliveryId}@jml>` });
        done.add(emailKey(to));
      } catch (err) {
        const error = err instanceof MailError ? err : new MailError('sending mail failed', 'EUNKNOWN');
        if (error.permanent) gaveUp.add(emailKey(to));
        errors.push(error);
      }
    }
    if (errors.length === 0) {
      entries.push({ channel: 'email', at: attemptedAt, ok: true });
      return;
    }
    const permanent = deps.alerts.email.every((address) => settled(emailKey(address)));
    const error = `${errors.length} of ${deps.alerts.email.length} recipient${deps.alerts.email.length === 1 ? '' : 's'}: ${errors[0]!.message}${permanent ? ' (permanent: not retried)' : ''}`;
    entries.push({ channel: 'email', at: attemptedAt, ok: false, error });
    failures.push({ channel: 'email', error, permanent });
  };

  const sendWebhooks = async () => {
    const pendingHooks = webhooks.filter((w) => owed.has(w.label) && !settled(w.key));
    if (pendingHooks.length === 0) return;
    // The config requires a secret with any webhook; the check keeps an unsigned POST impossible.
    if (!deps.alerts.webhookSecret) throw new Error('alerts.webhookSecret is not set: webhooks are not sent unsigned');
    const signer = new Webhook(deps.alerts.webhookSecret);
    const body = JSON.stringify(alertWebhookBody(views, attemptedAt));
    await Promise.all(
      pendingHooks.map(async (hook) => {
        try {
          await postWebhook(hook, signer, deliveryId, body, deps.webhookTimeoutMs ?? WEBHOOK_TIMEOUT_MS);
          done.add(hook.key);
          entries.push({ channel: hook.label, at: attemptedAt, ok: true });
        } catch (err) {
          const error = err instanceof WebhookError ? err.message : 'sending failed';
          entries.push({ channel: hook.label, at: attemptedAt, ok: false, error });
          failures.push({ channel: hook.label, error, permanent: false });
        }
      }),
    );
  };

  await Promise.all([sendEmail(), sendWebhooks()]);

  const keys = [...deps.alerts.email.map(emailKey), ...webhooks.map((w) => w.key)];
  const keyLabel = (key: string) => (key.startsWith('email:') ? 'email' : webhooks.find((w) => w.key === key)!.label);
  const owedKeys = keys.filter((key) => owed.has(keyLabel(key)));
  const state: DeliveryOutcome['state'] = owedKeys.every((key) => done.has(key))
    ? 'delivered'
    : options.finalAttempt || owedKeys.every(settled)
      ? 'failed'
      : 'retry';

  await recordAttempt(deps.db, rows.map((r) => r.id), entries, state);
  return { state, alertIds: rows.map((r) => r.id), done: [...done], gaveUp: [...gaveUp], failures };
}

/** Appends this attempt's results to each alert and sets its delivery state; `retry` leaves the state as it is. */
async function recordAttempt(db: Db, ids: string[], entries: Notification[], state: DeliveryOutcome['state']): Promise<void> {
  await db.transaction(async (tx) => {
    const current = await tx
      .select({ id: alerts.id, notifications: alerts.notifications, deliveryStatus: alerts.deliveryStatus })
      .from(alerts)
      .where(inArray(alerts.id, ids))
      .orderBy(asc(alerts.id))
      .for('update');
    for (const row of current) {
      const notifications = [...row.notifications, ...entries].slice(-NOTIFICATIONS_KEPT);
      // Delivered by another job meanwhile (or switched off): the record grows, the state stays.
      const stillOwed = row.deliveryStatus === 'pending' || row.deliveryStatus === 'failed';
      const set: Partial<typeof alerts.$inferInsert> = { notifications };
      if (stillOwed && state === 'delivered') Object.assign(set, { deliveryStatus: 'delivered', deliveredAt: new Date() });
      if (stillOwed && state === 'failed') set.deliveryStatus = 'failed';
      await tx.update(alerts).set(set).where(eq(alerts.id, row.id));
    }
  });
}

/** Thrown to BullMQ so that it retries; says which channels failed, never where they point. */
export class AlertDeliveryError extends Error {
  constructor(readonly failures: DeliveryOutcome['failures']) {
    super(`alert delivery failed on ${failures.map((f) => `${f.channel} (${f.error})`).join(', ') || 'no channel'}`);
    this.name = 'AlertDeliveryError';
  }
}

/**
 * The BullMQ processor: one attempt of the job's delivery. What succeeded is kept in the job's
 * data, so the next attempt skips it; a failure throws for BullMQ's backoff, and once nothing
 * can be retried (last attempt, or only permanent failures) the alert is `failed`.
 */
export async function processAlertJob(deps: AlertDeliveryDeps, job: Job<AlertJob>): Promise<DeliveryOutcome> {
  const finalAttempt = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
  const outcome = await deliverAlerts(deps, job.data.alertIds, { deliveryId: job.id, done: job.data.done, gaveUp: job.data.gaveUp, finalAttempt });
  if (outcome.state === 'retry') {
    await job.updateData({ ...job.data, done: outcome.done, gaveUp: outcome.gaveUp });
    throw new AlertDeliveryError(outcome.failures);
  }
  if (outcome.state === 'failed') {
    // Nothing more to do in this job: BullMQ records it failed without another attempt.
    throw new UnrecoverableError(new AlertDeliveryError(outcome.failures).message);
  }
  return outcome;
}

// ---- the dispatcher (outbox pass) -----------------------------------------------------

export interface DispatchOptions {
  /** Alerts looked at per pass; a digest carries at most this many. */
  batch?: number;
  /** An open alert whose delivery failed gets another round this long after its last attempt; null: never. */
  redeliverFailedAfterMs?: number | null;
  /** Bound on each Redis call: BullMQ would wait for an unreachable Redis forever. */
  redisTimeoutMs?: number;
}

export interface DispatchCounts {
  /** Jobs added: single alerts and digests. */
  jobs: number;
  /** Alerts in digest jobs. */
  digested: number;
  /** Failed alerts given another round. */
  redelivering: number;
  /** Pending alerts set to `none`: no channel is configured. */
  none: number;
}

/** BullMQ job ids may not contain ':'; a round key keeps a later round of one alert from reusing a finished job's id. */
function roundKey(row: Pick<AlertRow, 'id' | 'notifications'>): string {
  const last = row.notifications.at(-1);
  return `${row.id}.${last ? Date.parse(last.at) || row.notifications.length : 0}`;
}

export function alertJobId(row: Pick<AlertRow, 'id' | 'notifications'>): string {
  return `alert-${roundKey(row).replace(/[^A-Za-z0-9_-]/g, '_')}`;
}

export function digestJobId(rows: Array<Pick<AlertRow, 'id' | 'notifications'>>): string {
  return `digest-${hash(rows.map(roundKey).sort().join(','))}`;
}

/** Alert ids in jobs that are waiting, delayed (a backoff) or running: not to be enqueued again. */
async function alertIdsInFlight(queue: Queue<AlertJob>, timeoutMs: number): Promise<Set<string>> {
  const jobs = await withTimeout(queue.getJobs(['waiting', 'prioritized', 'delayed', 'active', 'paused', 'waiting-children']), timeoutMs, `Redis did not answer within ${timeoutMs} ms`);
  return new Set(jobs.flatMap((job) => job?.data?.alertIds ?? []));
}

/**
 * One outbox pass: pending alerts (oldest first, a batch) that no live job carries go to the
 * queue, one job each, or, when more than `digestAfter` wait at once, one digest job for all of
 * them; open failed alerts whose last attempt is `redeliverFailedAfterMs` old get another round.
 * Without any channel configured, pending alerts become `none`. Job ids are derived from the
 * alert and its delivery round, so a job added twice (two processes) is one job.
 */
export async function dispatchPendingAlerts(db: Db, queue: Queue<AlertJob>, config: AlertsConfig, options: DispatchOptions = {}): Promise<DispatchCounts> {
  const counts: DispatchCounts = { jobs: 0, digested: 0, redelivering: 0, none: 0 };
  const batch = options.batch ?? DISPATCH_BATCH;
  const redisTimeoutMs = options.redisTimeoutMs ?? 2_000;
  const redeliverAfter = options.redeliverFailedAfterMs === undefined ? REDELIVER_FAILED_AFTER_MS : options.redeliverFailedAfterMs;

  await db.transaction(async (tx) => {
    const [lock] = await tx.execute<{ locked: boolean }>(sql`select pg_try_advisory_xact_lock(${DISPATCH_LOCK}) as locked`);
    if (!lock?.locked) return; // another process is doing this pass

    if (!hasAlertChannels(config)) {
      const switchedOff = await tx.update(alerts).set({ deliveryStatus: 'none' }).where(eq(alerts.deliveryStatus, 'pending')).returning({ id: alerts.id });
      counts.none = switchedOff.length;
      return;
    }

    const pending = await tx
      .select({ id: alerts.id, notifications: alerts.notifications })
      .from(alerts)
      .where(eq(alerts.deliveryStatus, 'pending'))
      .orderBy(asc(alerts.createdAt))
      .limit(batch);
    const failed =
      redeliverAfter === null
        ? []
        : await tx
            .select({ id: alerts.id, notifications: alerts.notifications })
            .from(alerts)
            .where(
              and(
                eq(alerts.deliveryStatus, 'failed'),
                eq(alerts.status, 'open'),
                sql`coalesce((${alerts.notifications} -> -1 ->> 'at')::timestamptz, ${alerts.lastSeenAt}) <= now() - make_interval(secs => ${redeliverAfter / 1000})`,
              ),
            )
            .orderBy(asc(alerts.createdAt))
            .limit(batch);
    if (pending.length === 0 && failed.length === 0) return;

    // Read after the rows: a job that finished in between finds its alerts delivered and does nothing.
    const inFlight = await alertIdsInFlight(queue, redisTimeoutMs);
    const fresh = pending.filter((row) => !inFlight.has(row.id));
    const again = failed.filter((row) => !inFlight.has(row.id));

    const jobs: Array<{ name: string; data: AlertJob; opts: { jobId: string } }> = [];
    if (fresh.length > config.digestAfter) {
      jobs.push({ name: 'alert-digest', data: { alertIds: fresh.map((r) => r.id) }, opts: { jobId: digestJobId(fresh) } });
      counts.digested = fresh.length;
    } else {
      for (const row of fresh) jobs.push({ name: 'alert', data: { alertIds: [row.id] }, opts: { jobId: alertJobId(row) } });
    }
    // A later round goes alone: it is owed only to the channels that failed it.
    for (const row of again) jobs.push({ name: 'alert', data: { alertIds: [row.id] }, opts: { jobId: alertJobId(row) } });
    counts.redelivering = again.length;
    if (jobs.length === 0) return;
    await withTimeout(queue.addBulk(jobs), redisTimeoutMs, `Redis did not answer within ${redisTimeoutMs} ms`);
    counts.jobs = jobs.length;
  });
  return counts;
}
