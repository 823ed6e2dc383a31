// Prometheus metrics. One Registry per process, shared by the API and the workers: create
// it with createMetricsRegistry() and pass it to buildApp (deps.metrics) and to the worker,
// which registers its own counters on it. Counters are get-or-create, so building several
// apps on one registry (tests, all-in-one start) never registers a name twice.
//
// Where connector metrics come from: every connector createConnectors builds with a
// registry is wrapped (activities/connectors/instrumented.ts). Under `jml start` the API and
// the workers are one process on one registry, so /metrics shows the workers' calls and the
// API's health probes together; a separate `jml worker` process has its own registry, and
// the API of a separate `jml api` process shows only its own probes.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry, type Metric } from 'prom-client';
import type { HrEventSource } from '../domain/types.js';

export { Registry };

/** A fresh registry with the Node.js default metrics (process, heap, event loop). */
export function createMetricsRegistry(options: { defaultMetrics?: boolean } = {}): Registry {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  return registry;
}

/** Returns the metric of that name on the registry, creating it the first time. */
export function getOrCreate<M extends Metric>(registry: Registry, name: string, create: () => M): M {
  return (registry.getSingleMetric(name) as M | undefined) ?? create();
}

export interface ApiMetrics {
  registry: Registry;
  httpRequests: Counter<'route' | 'method' | 'status'>;
  hrEventsAccepted: Counter<'source'>;
}

export function apiMetrics(registry: Registry): ApiMetrics {
  return {
    registry,
    httpRequests: getOrCreate(
      registry,
      'jml_http_requests_total',
      () => new Counter({ name: 'jml_http_requests_total', help: 'HTTP requests answered, by route pattern, method and status', labelNames: ['route', 'method', 'status'] as const, registers: [registry] }),
    ),
    hrEventsAccepted: getOrCreate(
      registry,
      'jml_hr_events_accepted_total',
      () => new Counter({ name: 'jml_hr_events_accepted_total', help: 'New HR events durably stored, by source', labelNames: ['source'] as const, registers: [registry] }),
    ),
  };
}

/** For the SCIM / CSV inputs: count an accepted event on the shared counter. */
export function countAcceptedHrEvent(metrics: ApiMetrics, source: HrEventSource): void {
  metrics.hrEventsAccepted.inc({ source });
}

/** Calls to target systems, per target and connector operation (ensureAccount, ping, …). */
export interface ConnectorMetrics {
  calls: Counter<'target' | 'operation'>;
  errors: Counter<'target' | 'operation'>;
  duration: Histogram<'target' | 'operation'>;
  /** Unix time (seconds) of the last call that succeeded, per target. */
  lastSuccess: Gauge<'target'>;
}

export function connectorMetrics(registry: Registry): ConnectorMetrics {
  const labelNames = ['target', 'operation'] as const;
  return {
    calls: getOrCreate(
      registry,
      'jml_connector_calls_total',
      () => new Counter({ name: 'jml_connector_calls_total', help: 'Calls to target systems, by target and operation', labelNames, registers: [registry] }),
    ),
    errors: getOrCreate(
      registry,
      'jml_connector_errors_total',
      () => new Counter({ name: 'jml_connector_errors_total', help: 'Calls to target systems that failed, by target and operation', labelNames, registers: [registry] }),
    ),
    duration: getOrCreate(
      registry,
      'jml_connector_call_duration_seconds',
      () => new Histogram({ name: 'jml_connector_call_duration_seconds', help: 'Time taken by calls to target systems, by target and operation', labelNames, registers: [registry] }),
    ),
    lastSuccess: getOrCreate(
      registry,
      'jml_connector_last_success_timestamp_seconds',
      () => new Gauge({ name: 'jml_connector_last_success_timestamp_seconds', help: 'When a call to the target last succeeded (Unix time)', labelNames: ['target'] as const, registers: [registry] }),
    ),
  };
}

/** When a call to `target` last succeeded in this process, if it ever did. */
export async function lastSuccessfulCall(metrics: ConnectorMetrics, target: string): Promise<Date | null> {
  const value = (await metrics.lastSuccess.get()).values.find((v) => v.labels.target === target)?.value;
  return value === undefined ? null : new Date(value * 1000);
}

/** What the health round (api/routes/health.ts) finds, for scrapers. */
export interface TargetHealthMetrics {
  /** 1 when the target answered its probe (connected, bound and read its base), else 0. */
  up: Gauge<'target'>;
  /** Grants that are not revoked, by target and status. */
  grants: Gauge<'target' | 'status'>;
}

export function targetHealthMetrics(registry: Registry): TargetHealthMetrics {
  return {
    up: getOrCreate(
      registry,
      'jml_target_up',
      () => new Gauge({ name: 'jml_target_up', help: 'Whether the target answered the last health probe (1) or not (0)', labelNames: ['target'] as const, registers: [registry] }),
    ),
    grants: getOrCreate(
      registry,
      'jml_grants',
      () => new Gauge({ name: 'jml_grants', help: 'Grants by target and status (revoked ones are not counted)', labelNames: ['target', 'status'] as const, registers: [registry] }),
    ),
  };
}
