// Wraps any Connector so that each call to its target is counted, timed and, when it
// succeeds, remembered as the target's last successful call (api/metrics.ts,
// connectorMetrics). The wrapper changes nothing else: what the connector returns or throws
// passes through as it is.
import type { Registry } from 'prom-client';
import { connectorMetrics } from '../../api/metrics.js';
import type { Connector, DirectoryListing } from './types.js';

export function instrumentConnector(connector: Connector, registry: Registry): Connector {
  const metrics = connectorMetrics(registry);
  const target = connector.targetId;
  const measured =
    <A extends unknown[], R>(operation: keyof Connector | keyof DirectoryListing, call: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      const labels = { target, operation };
      metrics.calls.inc(labels);
      const stopTimer = metrics.duration.startTimer(labels);
      try {
        const result = await call(...args);
        metrics.lastSuccess.set({ target }, Date.now() / 1000);
        return result;
      } catch (err) {
        metrics.errors.inc(labels);
        throw err;
      } finally {
        stopTimer();
      }
    };
  // Every method named, so that a method added to Connector fails to compile here rather
  // than go unmeasured.
  // A listing is measured a page at a time: each page is one call to the target.
  const pages = <T>(operation: keyof DirectoryListing, list: () => AsyncIterable<T>) =>
    async function* (): AsyncGenerator<T> {
      const iterator = list()[Symbol.asyncIterator]();
      const next = measured(operation, () => iterator.next());
      try {
        for (let page = await next(); !page.done; page = await next()) yield page.value;
      } finally {
        await iterator.return?.();
      }
    };
  const { directory } = connector;
  return {
    targetId: target,
    ...(directory
      ? { directory: { listAccounts: pages('listAccounts', () => directory.listAccounts()), listGroups: pages('listGroups', () => directory.listGroups()), groupKey: (ref: string) => directory.groupKey(ref) } }
      : {}),
    ensureAccount: measured('ensureAccount', (spec) => connector.ensureAccount(spec)),
    readAccount: measured('readAccount', (employeeId) => connector.readAccount(employeeId)),
    setAccountEnabled: measured('setAccountEnabled', (employeeId, enabled) => connector.setAccountEnabled(employeeId, enabled)),
    deleteAccount: measured('deleteAccount', (employeeId) => connector.deleteAccount(employeeId)),
    addToGroup: measured('addToGroup', (employeeId, groupRef) => connector.addToGroup(employeeId, groupRef)),
    removeFromGroup: measured('removeFromGroup', (employeeId, groupRef) => connector.removeFromGroup(employeeId, groupRef)),
    isGroupMember: measured('isGroupMember', (employeeId, groupRef) => connector.isGroupMember(employeeId, groupRef)),
    listGroupMembers: measured('listGroupMembers', (groupRef) => connector.listGroupMembers(groupRef)),
    ping: measured('ping', () => connector.ping()),
    close: () => connector.close(),
  };
}
