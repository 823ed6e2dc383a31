// Process wiring for alert delivery: the BullMQ worker that sends each alert job (rate
// limited to `alerts.ratePerMinute` jobs a minute, each one email and one POST per webhook),
// and the periodic outbox pass that hands pending alerts to the queue. The work itself is in
// services/alert-delivery.ts.
import { Worker as BullWorker, type ConnectionOptions, type Queue } from 'bullmq';
import type { Logger } from 'pino';
import type { Db } from '../db/client.js';
import { dispatchPendingAlerts, processAlertJob, type AlertDeliveryDeps, type AlertJob, type AlertsConfig, type DispatchOptions, ALERTS_QUEUE, AlertDeliveryError } from '../services/alert-delivery.js';
import { runPeriodically } from '../services/periodic.js';

export function createAlertWorker(deps: AlertDeliveryDeps & { logger: Logger; connection: ConnectionOptions; prefix: string; concurrency?: number }): BullWorker<AlertJob> {
  const worker = new BullWorker<AlertJob>(ALERTS_QUEUE, async (job) => processAlertJob(deps, job), {
    connection: deps.connection,
    prefix: deps.prefix,
    concurrency: deps.concurrency ?? 4,
    // Kind to the mail relay and to chat tools' own rate limits; a storm becomes digests anyway.
    limiter: { max: deps.alerts.ratePerMinute, duration: 60_000 },
  });
  worker.on('completed', (job, outcome) => {
    if (outcome?.state === 'delivered') deps.logger.info({ jobId: job.id, alerts: outcome.alertIds.length }, 'alert delivered');
  });
  worker.on('failed', (job, err) => {
    const channels = err instanceof AlertDeliveryError ? err.failures.map((f) => f.channel) : undefined;
    const final = !job || err.name === 'UnrecoverableError' || job.attemptsMade >= (job.opts.attempts ?? 1);
    // The message names channels and status codes only (services/alert-delivery.ts), never addresses or URLs.
    deps.logger.warn({ jobId: job?.id, attempts: job?.attemptsMade, channels, err: err.message }, final ? 'alert delivery failed; the alert is marked failed' : 'alert delivery failed; will retry');
  });
  worker.on('error', (err) => deps.logger.warn({ err: err.message }, 'alert worker error'));
  return worker;
}

/** Runs dispatchPendingAlerts every `intervalMs` (2 s) until stopped; a failed pass (Redis or Postgres away) is logged and the next one tries again. */
export function startAlertDispatcher(db: Db, queue: Queue<AlertJob>, config: AlertsConfig, logger: Logger, options: DispatchOptions & { intervalMs?: number } = {}): { stop(): Promise<void> } {
  return runPeriodically(
    async () => {
      const counts = await dispatchPendingAlerts(db, queue, config, options);
      if (counts.jobs || counts.none) logger.info(counts, 'handed alerts to delivery');
    },
    options.intervalMs ?? 2_000,
    (err) => logger.warn({ err: (err as Error).message }, 'alert dispatcher pass failed; will retry'),
  );
}
