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

/** One account as a target lists it (reconcile). */
export interface DirectoryAccount {
  /** Canonical (domain/employee-id.ts), as the engine stores it. */
  employeeId: string;
  /** The target's own reference (an LDAP DN, a SCIM id). */
  ref: string;
  enabled: boolean;
}

/** One group as a target lists it (reconcile): its reference and its members' employee ids. */
export interface DirectoryGroup {
  /** The group's reference, as entitlements name it (an LDAP DN, a SCIM id). */
  ref: string;
  /**
   * Canonical employee ids of the members the target names. Member values that name no
   * account of this target (a placeholder, a service entry elsewhere) are left out.
   */
  members: string[];
}

/**
 * The whole target, read for reconciliation in pages (LDAP paged results; SCIM `GET /Users`
 * and `GET /Groups` with startIndex/count), so memory is bounded by a page, not the target.
 */
export interface DirectoryListing {
  /** Every account under the target's accounts container(s), one page at a time. */
  listAccounts(): AsyncIterable<DirectoryAccount[]>;
  /** Every group under the target's groups container, one page at a time. */
  listGroups(): AsyncIterable<DirectoryGroup[]>;
  /** The form of a group reference two spellings of one group share (an LDAP DN folded), to match entitlements' refs. */
  groupKey(ref: string): string;
}

export interface Connector {
  readonly targetId: string;
  /**
   * The target read whole, for reconcile (activities/reconcile.ts). Optional: a connector
   * without it cannot be reconciled, and reconcile says so for its target.
   */
  readonly directory?: DirectoryListing;
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
  /** `retryAfterMs`: the target said when to come back (HTTP 503 with Retry-After). */
  constructor(message: string, code: string, retryAfterMs?: number) {
    super(message, true, code, retryAfterMs);
    this.name = 'TargetUnavailableError';
  }
}
