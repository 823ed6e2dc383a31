// The kill switch at the connector: while its target is paused, every call (the probe
// included) fails as "target unavailable" without reaching the target, so grants and
// revocations wait for the target's recovery workflow exactly as during an outage, and drain
// (leavers first) once it is resumed. Nothing is lost and nothing is sent meanwhile.
import { TargetUnavailableError, type Connector } from './types.js';

export type PausedCheck = (targetId: string) => Promise<boolean>;

export function pausableConnector(connector: Connector, isPaused: PausedCheck): Connector {
  const target = connector.targetId;
  const guarded =
    <A extends unknown[], R>(call: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      if (await isPaused(target)) throw new TargetUnavailableError(`target ${target} is paused`, 'PAUSED');
      return call(...args);
    };
  // Reconcile's reads too: a paused target is not read page by page either.
  const pages = <T>(list: () => AsyncIterable<T>) =>
    async function* (): AsyncIterable<T> {
      if (await isPaused(target)) throw new TargetUnavailableError(`target ${target} is paused`, 'PAUSED');
      yield* list();
    };
  const { directory } = connector;
  // Every method named, so that a method added to Connector fails to compile here rather than slip past the switch.
  return {
    targetId: target,
    ...(directory ? { directory: { listAccounts: pages(() => directory.listAccounts()), listGroups: pages(() => directory.listGroups()), groupKey: (ref: string) => directory.groupKey(ref) } } : {}),
    ensureAccount: guarded((spec) => connector.ensureAccount(spec)),
    readAccount: guarded((employeeId) => connector.readAccount(employeeId)),
    setAccountEnabled: guarded((employeeId, enabled) => connector.setAccountEnabled(employeeId, enabled)),
    deleteAccount: guarded((employeeId) => connector.deleteAccount(employeeId)),
    addToGroup: guarded((employeeId, groupRef) => connector.addToGroup(employeeId, groupRef)),
    removeFromGroup: guarded((employeeId, groupRef) => connector.removeFromGroup(employeeId, groupRef)),
    isGroupMember: guarded((employeeId, groupRef) => connector.isGroupMember(employeeId, groupRef)),
    listGroupMembers: guarded((groupRef) => connector.listGroupMembers(groupRef)),
    ping: guarded(() => connector.ping()),
    close: () => connector.close(),
  };
}
