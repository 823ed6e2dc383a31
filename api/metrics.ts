// Prometheus metrics. One Registry per process, shared by the API and the workers: create
// it with createMetricsRegistry() and pass it to buildApp (deps.metrics) and to the worker,
// which registers its own counters on it. Counters are get-or-create, so building several
// apps on one registry (tests, all-in-one start) never registers a name twice.
import { collectDefaultMetrics, Counter, Registry, type Metric } from 'prom-client';
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
