// One interface for every target system. Every method is idempotent: creating what exists
// adopts it, removing what is absent succeeds. That is what lets Temporal retry freely.
import type { IdentityAttributes } from '../../domain/types.js';

export interface AccountSpec {
  employeeId: string;
  attributes: IdentityAttributes;
  /** Create (or leave) the account disabled, e.g. pre-provisioned before the start date. */
  enabled: boolean;
}

export interface AccountState {
  /** The target's own reference (an LDAP DN). */
  ref: string;
  enabled: boolean;
  /** References of the groups the target itself reports (LDAP: memberOf). */
  groups: string[];
}

export interface Connector {
  readonly targetId: string;
  /** Creates the account, or adopts an existing one and brings its attributes up to date. */
  ensureAccount(spec: AccountSpec): Promise<{ ref: string; created: boolean }>;
  /** Reads the account back from the target; null when it does not exist. */
  readAccount(employeeId: string): Promise<AccountState | null>;
  setAccountEnabled(employeeId: string, enabled: boolean): Promise<void>;
  deleteAccount(employeeId: string): Promise<void>;
  addToGroup(employeeId: string, groupRef: string): Promise<void>;
  removeFromGroup(employeeId: string, groupRef: string): Promise<void>;
  /** Every member account's employeeId of a group, as the target reports it (for reconcile). */
  listGroupMembers(groupRef: string): Promise<string[]>;
  close(): Promise<void>;
}

/**
 * A failure talking to a target. `retryable: false` means retrying cannot help (bad
 * credentials, schema violation); `retryAfterMs` carries a target's Retry-After.
 */
export class ConnectorError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly code?: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'ConnectorError';
  }
}
