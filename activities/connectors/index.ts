// Builds one Connector per configured target.
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { TargetConfig } from '../../domain/config.js';
import { pausableConnector, type PausedCheck } from './pausable.js';
import { instrumentConnector } from './instrumented.js';
import { createLdapConnector } from './ldap.js';
import { createScimConnector } from './scim.js';
import type { Connector } from './types.js';

export type { AccountSpec, AccountState, Connector } from './types.js';
export { ConnectorError } from './types.js';
export { createLdapConnector } from './ldap.js';
export { createScimConnector } from './scim.js';
export { instrumentConnector } from './instrumented.js';

/** The URL a target is reached at: its override if there is one, else its configured `url` (if any). */
export function targetUrl(target: TargetConfig, overrides: Record<string, string> = {}): string | undefined {
  return overrides[target.id] ?? target.url;
}

/**
 * One connector per target, keyed by target id. `overrides` maps a target id to the URL to
 * use instead of the configured one (e.g. the local slapd `npm start` runs for a target
 * whose `url` is empty). A target with neither is a configuration error. With a `metrics`
 * registry, each connector's calls are counted and timed on it (./instrumented.ts).
 */
/** `paused`: the kill switch (services/target-controls.ts); absent: targets are never paused (API probes, tools). */
export function createConnectors(targets: TargetConfig[], overrides: Record<string, string> = {}, options: { metrics?: Registry; paused?: PausedCheck; logger?: Logger } = {}): Map<string, Connector> {
  const connectors = new Map<string, Connector>();
  const { metrics, paused } = options;
  for (const target of targets) {
    if (connectors.has(target.id)) throw new Error(`duplicate target id "${target.id}"`);
    const raw = createRaw(target, overrides, options.logger);
    const connector = paused ? pausableConnector(raw, paused) : raw;
    connectors.set(target.id, metrics ? instrumentConnector(connector, metrics) : connector);
  }
  return connectors;
}

function createRaw(target: TargetConfig, overrides: Record<string, string>, logger: Logger | undefined): Connector {
  switch (target.type) {
    case 'ldap': {
      const url = targetUrl(target, overrides);
      if (!url) throw new Error(`target "${target.id}" has no url (and no override was given)`);
      return createLdapConnector({ ...target, url });
    }
    case 'scim':
      return createScimConnector({ ...target, url: targetUrl(target, overrides) ?? target.url }, { logger });
    default: {
      // Every type handled above leaves `target` never here; a new one fails to compile.
      const unknown: never = target;
      const { id, type } = unknown as { id: string; type: unknown };
      throw new Error(`target "${id}": unsupported type "${String(type)}"`);
    }
  }
}

/** Closes every connector; one failing to close does not stop the others. */
export async function closeConnectors(connectors: Map<string, Connector>): Promise<void> {
  await Promise.allSettled([...connectors.values()].map((c) => c.close()));
}
