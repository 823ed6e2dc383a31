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
  /**
   * References of the groups the account itself reports (LDAP: memberOf). Informational
   * only: an overlay maintains it, and it may be missing. Verification uses isGroupMember.
   */
  groups: string[];
}

export interface Connector {
  readonly targetId: string;
  /**
   * Creates the account, or adopts an existing one and brings its attributes up to date.
   * Never adopts an entry that is someone else's (see readAccount).
   */
  ensureAccount(spec: AccountSpec): Promise<{ ref: string; created: boolean }>;
  /**
   * Reads the account back from the target; null when it does not exist. An entry that the
   * target finds for this id but that names another person (or two entries that both claim
   * it) is refused with a permanent ConnectorError, never returned and never taken for
   * "absent": a revocation or a deletion could otherwise be "proven" by it.
   */
  readAccount(employeeId: string): Promise<AccountState | null>;
  setAccountEnabled(employeeId: string, enabled: boolean): Promise<void>;
  deleteAccount(employeeId: string): Promise<void>;
  addToGroup(employeeId: string, groupRef: string): Promise<void>;
  removeFromGroup(employeeId: string, groupRef: string): Promise<void>;
  /**
   * Whether the group's own entry lists the person (LDAP: its `member` values name a DN the
   * person's account has or may have), whether or not the account exists. Read from the
   * group itself, never from what the account reports. A group that does not exist has no
   * members (false). Throws a permanent ConnectorError when the reference is not one of
   * this target's group references, or the entry is not a group or its members cannot be
   * read: then neither a grant nor a revocation can be proven.
   */
  isGroupMember(employeeId: string, groupRef: string): Promise<boolean>;
  /** Every member account's employeeId of a group, as the target reports it (for reconcile). */
  listGroupMembers(groupRef: string): Promise<string[]>;
  /**
   * Whether the target answers at all: connects, authenticates and reads its base. Throws a
   * ConnectorError when it does not. Used to learn that a target is back after an outage.
   */
  ping(): Promise<void>;
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

/**
 * The target could not be reached or is momentarily unable to answer (connection refused or
 * dropped, a timeout, "busy", "unavailable"): nothing is wrong with the request itself, so
 * what failed is tried again when the target is back (workflows/target-recovery.ts).
 */
export class TargetUnavailableError extends ConnectorError {
  constructor(message: string, code: string) {
    super(message, true, code);
    this.name = 'TargetUnavailableError';
  }
}
