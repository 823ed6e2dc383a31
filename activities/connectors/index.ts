// Builds one Connector per configured target.
import type { TargetConfig } from '../../domain/config.js';
import { createLdapConnector } from './ldap.js';
import type { Connector } from './types.js';

export type { AccountSpec, AccountState, Connector } from './types.js';
export { ConnectorError } from './types.js';
export { createLdapConnector } from './ldap.js';

/**
 * One connector per target, keyed by target id. `overrides` maps a target id to the URL to
 * use instead of the configured one (e.g. the local slapd `npm start` runs for a target
 * whose `url` is empty). A target with neither is a configuration error.
 */
export function createConnectors(targets: TargetConfig[], overrides: Record<string, string> = {}): Map<string, Connector> {
  const connectors = new Map<string, Connector>();
  for (const target of targets) {
    if (connectors.has(target.id)) throw new Error(`duplicate target id "${target.id}"`);
    switch (target.type) {
      case 'ldap': {
        const url = overrides[target.id] ?? target.url;
        if (!url) throw new Error(`target "${target.id}" has no url (and no override was given)`);
        connectors.set(target.id, createLdapConnector({ ...target, url }));
        break;
      }
      default: {
        const unknown: never = target.type;
        throw new Error(`target "${(target as { id: string }).id}": unsupported type "${String(unknown)}"`);
      }
    }
  }
  return connectors;
}

/** Closes every connector; one failing to close does not stop the others. */
export async function closeConnectors(connectors: Map<string, Connector>): Promise<void> {
  await Promise.allSettled([...connectors.values()].map((c) => c.close()));
}
