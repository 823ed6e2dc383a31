// LDAP connector (OpenLDAP and other RFC 4511 directories) on ldapts.
//
// Accounts are inetOrgPerson entries `uid=<employeeId>,<usersDN>`; groups are groupOfNames
// with `member` DNs. A disabled account is either locked with ppolicy
// (`pwdAccountLockedTime: 000001010000Z`, a permanent administrative lock) or moved under
// `disabledDN`, per `target.disable.method`. Every method is idempotent, so Temporal can
// retry freely. Employee ids come from HR: they are always escaped (RFC 4514) before they
// become part of a DN, and never placed in a search filter unescaped (RFC 4515).
//
// The directory finds `uid=E1001` by matching without regard to case, and its case folding
// is wider than ours (it folds U+212A KELVIN SIGN to `k`, for one). So the entry found at a
// person's DN is only taken for theirs when its uid and employeeNumber values, canonicalised
// (domain/employee-id.ts), are the person's id: one person is never handed another's entry.
import { Attribute, Change, Client, escapeFilter } from 'ldapts';
import type { LdapTargetConfig } from '../../domain/config.js';
import { canonicalEmployeeId } from '../../domain/employee-id.js';
import type { IdentityAttributes } from '../../domain/types.js';
import { ConnectorError, TargetUnavailableError, type AccountSpec, type AccountState, type Connector, type DirectoryAccount, type DirectoryGroup, type DirectoryListing } from './types.js';
import { fullName, text } from './attribute-text.js';

export interface LdapConnectorOptions extends LdapTargetConfig {
  url: string;
  /**
   * The member value that keeps a groupOfNames valid once its last real member is removed
   * (the schema requires at least one member). It need not exist. Default
   * `cn=placeholder,<baseDN>`. It is never reported as a member.
   */
  placeholderMemberDN?: string;
}

/** ppolicy's "locked by an administrator until unlocked" value. */
export const PERMANENT_LOCK = '000001010000Z';

const PERSON_CLASSES = ['top', 'person', 'organizationalPerson', 'inetOrgPerson'];

/** Entries per page of a reconcile listing (RFC 2696 paged results): what bounds its memory. */
export const LISTING_PAGE_SIZE = 500;

/** LDAP result codes that say the server cannot be reached or cannot answer now. */
const UNAVAILABLE_RESULT_CODES = new Set([
  51, // busy
  52, // unavailable
  81, // serverDown (client API code)
  85, // timeout (client API code)
  91, // connectError (client API code)
]);
/** LDAP result codes worth retrying: the server is momentarily unable, not unwilling. */
const RETRYABLE_RESULT_CODES = new Set([
  3, // timeLimitExceeded
  ...UNAVAILABLE_RESULT_CODES,
]);

const RC = {
  noSuchAttribute: 16,
  typeOrValueExists: 20,
  noSuchObject: 32,
  objectClassViolation: 65,
  entryAlreadyExists: 68,
} as const;

export function createLdapConnector(target: LdapConnectorOptions): Connector {
  return new LdapConnector(target);
}

interface Located {
  dn: string;
  /** The entry lives under disabledDN. */
  moved: boolean;
  entry: Record<string, unknown>;
}

class LdapConnector implements Connector {
  readonly targetId: string;
  private readonly client: Client;
  private bindInFlight?: Promise<void>;
  private closed = false;
  private readonly usersDN: string;
  private readonly disabledDN?: string;
  private readonly placeholderDN: string;
  private readonly placeholderNorm: string;
  /** groupsDN, parsed: every group reference must name an entry below it. */
  private readonly groupsContainer: Rdn[];
  readonly directory: DirectoryListing;

  constructor(private readonly target: LdapConnectorOptions) {
    this.targetId = target.id;
    this.usersDN = target.usersDN;
    this.disabledDN = target.disable.disabledDN;
    if (target.disable.method === 'move' && !this.disabledDN) {
      throw new ConnectorError(`ldap target ${target.id}: disable method "move" needs a disabledDN`, false, 'CONFIG');
    }
    this.placeholderDN = target.placeholderMemberDN ?? `cn=placeholder,${target.baseDN}`;
    this.placeholderNorm = normalizeDn(this.placeholderDN);
    this.groupsContainer = parseDn(target.groupsDN);
    const timeout = target.timeout > 0 ? target.timeout : undefined;
    this.client = new Client({ url: target.url, timeout, connectTimeout: timeout });
    this.directory = {
      listAccounts: () => this.listAccounts(),
      listGroups: () => this.listGroups(),
      groupKey: (ref) => normalizeDnOrNull(ref) ?? ref,
    };
  }

  // ---- accounts -------------------------------------------------------------------------

  async ensureAccount(spec: AccountSpec): Promise<{ ref: string; created: boolean }> {
    return this.guard(`ensureAccount ${spec.employeeId}`, async () => {
      const id = checkId(spec.employeeId);
      for (let attempt = 0; attempt < 3; attempt++) {
        const found = await this.locate(id);
        if (found) {
          await this.modify(found.dn, this.adoptChanges(id, spec.attributes));
          // Adoption only ever moves towards safety: a pre-provisioned (disabled) spec
          // disables an enabled account, but enabled:true never re-enables a disabled one;
          // that is setAccountEnabled's job, so a leave or a leaver is never undone here.
          let ref = found.dn;
          if (!spec.enabled) ref = await this.disable(id, found);
          return { ref, created: false };
        }
        const moveDisabled = !spec.enabled && this.target.disable.method === 'move';
        const dn = this.accountDn(id, moveDisabled ? this.disabledDN! : this.usersDN);
        const attrs = this.newAccountAttributes(id, spec.attributes);
        if (!spec.enabled && this.target.disable.method === 'ppolicy') attrs.pwdAccountLockedTime = [PERMANENT_LOCK];
        try {
          await (await this.conn()).add(dn, attrs);
          return { ref: dn, created: true };
        } catch (err) {
          if (resultCode(err) !== RC.entryAlreadyExists) throw err;
          // Created concurrently (or in the other container): adopt it on the next pass.
        }
      }
      throw new ConnectorError(`account ${spec.employeeId} keeps appearing and disappearing`, true, 'CONFLICT');
    });
  }

  async readAccount(employeeId: string): Promise<AccountState | null> {
    return this.guard(`readAccount ${employeeId}`, async () => {
      const found = await this.locate(checkId(employeeId));
      if (!found) return null;
      return { ref: found.dn, enabled: this.isEnabled(found), groups: strings(attr(found.entry, 'memberOf')) };
    });
  }

  async setAccountEnabled(employeeId: string, enabled: boolean): Promise<void> {
    return this.guard(`setAccountEnabled ${employeeId} ${enabled}`, async () => {
      const id = checkId(employeeId);
      const found = await this.locate(id);
      if (!found) {
        // Disabling what does not exist is done; enabling it cannot be.
        if (!enabled) return;
        throw new ConnectorError(`account ${employeeId} does not exist`, false, 'ACCOUNT_NOT_FOUND');
      }
      if (enabled) await this.enable(id, found);
      else await this.disable(id, found);
    });
  }

  async deleteAccount(employeeId: string): Promise<void> {
    return this.guard(`deleteAccount ${employeeId}`, async () => {
      const id = checkId(employeeId);
      const found = await this.locate(id);
      // refint removes a deleted DN from groups, but it cannot remove a group's last member
      // (schema violation) and leaves it dangling, and without refint every value dangles;
      // a dangling value would hand its groups to whoever gets this DN next. So take the
      // person out of every group that lists them (found by the groups' own values, not by
      // memberOf, which may be missing) before the entry goes, and even if it is gone.
      const dns = this.candidateDns(id);
      for (const group of await this.groupsListing(dns)) {
        for (const dn of dns) await this.removeMember(group, dn);
      }
      if (!found) return;
      try {
        await (await this.conn()).del(found.dn);
      } catch (err) {
        if (resultCode(err) !== RC.noSuchObject) throw err;
      }
    });
  }

  // ---- groups ---------------------------------------------------------------------------

  async addToGroup(employeeId: string, groupRef: string): Promise<void> {
    return this.guard(`addToGroup ${employeeId} ${groupRef}`, async () => {
      const id = checkId(employeeId);
      const groupDn = this.groupDn(groupRef);
      const found = await this.locate(id);
      if (!found) {
        // Retryable: the account may be being created by a parallel activity.
        throw new ConnectorError(`account ${employeeId} does not exist`, true, 'ACCOUNT_NOT_FOUND');
      }
      for (let attempt = 0; attempt < 3; attempt++) {
        try {
          await this.modify(groupDn, [change('add', 'member', [found.dn])]);
        } catch (err) {
          const code = resultCode(err);
          if (code === RC.typeOrValueExists) return; // already a member
          if (code !== RC.noSuchObject) throw err;
          if (await this.createGroup(groupDn, found.dn)) return;
          continue; // created concurrently: add to it
        }
        // A real member now exists, so the placeholder (if any) can go.
        try {
          await this.modify(groupDn, [change('delete', 'member', [this.placeholderDN])]);
        } catch (err) {
          const code = resultCode(err);
          if (code !== RC.noSuchAttribute && code !== RC.objectClassViolation && code !== RC.noSuchObject) throw err;
        }
        return;
      }
      throw new ConnectorError(`group ${groupDn} keeps appearing and disappearing`, true, 'CONFLICT');
    });
  }

  async removeFromGroup(employeeId: string, groupRef: string): Promise<void> {
    return this.guard(`removeFromGroup ${employeeId} ${groupRef}`, async () => {
      const id = checkId(employeeId);
      const groupDn = this.groupDn(groupRef);
      // An entry at the person's DN that is someone else's: its member value is theirs too.
      await this.locate(id);
      // The member value may name either container (refint rewrites it on a move).
      for (const dn of this.candidateDns(id)) await this.removeMember(groupDn, dn);
    });
  }

  async isGroupMember(employeeId: string, groupRef: string): Promise<boolean> {
    return this.guard(`isGroupMember ${employeeId} ${groupRef}`, async () => {
      const id = checkId(employeeId);
      const groupDn = this.groupDn(groupRef);
      await this.locate(id); // refuses an entry at the person's DN that is someone else's
      const entry = await this.readEntry(groupDn, ['objectClass', 'member']);
      // The directory's own "no such entry": a group that does not exist has no members. A
      // grant into it is therefore not verified, and a revocation from it is.
      if (!entry) return false;
      if (!strings(attr(entry, 'objectClass')).some((c) => c.toLowerCase() === 'groupofnames')) {
        throw new ConnectorError(`${groupDn} is not a groupOfNames`, false, 'NOT_A_GROUP');
      }
      const members = strings(attr(entry, 'member'));
      // A groupOfNames always has a member (a placeholder at least): none means we may not read them.
      if (members.length === 0) throw new ConnectorError(`the members of ${groupDn} cannot be read`, false, 'GROUP_UNREADABLE');
      // Either container counts: a value naming the other one comes back into force when the
      // account moves there (disable by move, or enable).
      const person = new Set(this.candidateDns(id).map(normalizeDn));
      return members.some((member) => person.has(normalizeDnOrNull(member) ?? ''));
    });
  }

  async listGroupMembers(groupRef: string): Promise<string[]> {
    return this.guard(`listGroupMembers ${groupRef}`, async () => {
      const groupDn = this.groupDn(groupRef);
      const entry = await this.readEntry(groupDn, ['member']);
      if (!entry) return [];
      const containers = new Set([normalizeDn(this.usersDN)]);
      if (this.disabledDN) containers.add(normalizeDn(this.disabledDN));
      const selfNorm = normalizeDn(groupDn);
      const ids = new Set<string>();
      for (const member of strings(attr(entry, 'member'))) {
        const rdns = parseDnOrNull(member);
        if (!rdns) continue;
        const norm = formatNormalized(rdns);
        if (norm === this.placeholderNorm || norm === selfNorm) continue;
        const [first, ...parent] = rdns;
        if (!first || first.length !== 1 || first[0]![0].toLowerCase() !== 'uid') continue;
        if (!containers.has(formatNormalized(parent))) continue;
        ids.add(first[0]![1]);
      }
      return [...ids];
    });
  }

  async ping(): Promise<void> {
    return this.guard('ping', async () => {
      await this.readEntry(this.target.baseDN, ['objectClass']);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.client.unbind();
    } catch {
      // already gone
    }
  }

  // ---- reconcile listings ---------------------------------------------------------------

  /**
   * Every account entry in the users container (and, disabling by move, the disabled one),
   * a page at a time. An entry whose uid or employeeNumber names someone else (see
   * checkOwner) is left out: no grant path would take it for the person's either.
   */
  private async *listAccounts(): AsyncGenerator<DirectoryAccount[]> {
    const containers: Array<[string, boolean]> = [[this.usersDN, false]];
    if (this.disabledDN && normalizeDn(this.disabledDN) !== normalizeDn(this.usersDN)) containers.push([this.disabledDN, true]);
    for (const [container, moved] of containers) {
      for await (const entries of this.pagedSearch(container, '(uid=*)', ['uid', 'employeeNumber', 'pwdAccountLockedTime'])) {
        const page: DirectoryAccount[] = [];
        for (const entry of entries) {
          const uid = strings(attr(entry, 'uid'))[0];
          if (!uid) continue;
          const located: Located = { dn: String(entry.dn), moved, entry };
          try {
            checkOwner(uid, located);
          } catch {
            continue;
          }
          page.push({ employeeId: canonicalEmployeeId(uid), ref: located.dn, enabled: this.isEnabled(located) });
        }
        yield page;
      }
    }
  }

  /** Every groupOfNames under groupsDN with the employee ids its member values name, a page at a time. */
  private async *listGroups(): AsyncGenerator<DirectoryGroup[]> {
    const containers = [this.usersDN, ...(this.disabledDN ? [this.disabledDN] : [])].map(normalizeDn);
    for await (const entries of this.pagedSearch(this.target.groupsDN, '(objectClass=groupOfNames)', ['member'], 'sub')) {
      yield entries.map((entry) => {
        const members = new Set<string>();
        for (const value of strings(attr(entry, 'member'))) {
          const id = this.memberEmployeeId(value, containers);
          if (id) members.add(id);
        }
        return { ref: String(entry.dn), members: [...members] };
      });
    }
  }

  /** The employee id a member value names (`uid=<id>,<users or disabled container>`), else null. */
  private memberEmployeeId(memberDn: string, containers: string[]): string | null {
    const rdns = parseDnOrNull(memberDn);
    if (!rdns || rdns.length < 2) return null;
    const [first] = rdns;
    if (!first || first.length !== 1 || first[0]![0].toLowerCase() !== 'uid') return null;
    if (!containers.includes(formatNormalized(rdns.slice(1)))) return null;
    return canonicalEmployeeId(first[0]![1]);
  }

  /** A one-level (or subtree) search with RFC 2696 paged results, yielding each page as it arrives. */
  private async *pagedSearch(base: string, filter: string, attributes: string[], scope: 'one' | 'sub' = 'one'): AsyncGenerator<Array<Record<string, unknown> & { dn: string }>> {
    const context = `ldap ${this.targetId}: list ${base}`;
    let pages: AsyncGenerator<{ searchEntries: Array<Record<string, unknown> & { dn: string }> }>;
    try {
      pages = (await this.conn()).searchPaginated(base, { scope, filter, attributes, paged: { pageSize: LISTING_PAGE_SIZE } });
    } catch (err) {
      throw toConnectorError(err, context);
    }
    for (;;) {
      let next: IteratorResult<{ searchEntries: Array<Record<string, unknown> & { dn: string }> }>;
      try {
        next = await pages.next();
      } catch (err) {
        // A container that does not exist holds nothing.
        if (resultCode(err) === RC.noSuchObject) return;
        throw toConnectorError(err, context);
      }
      if (next.done) return;
      yield next.value.searchEntries;
    }
  }

  // ---- internals ------------------------------------------------------------------------

  /**
   * The shared client, bound. One connection serves concurrent operations (LDAP multiplexes
   * by message id); only (re)connecting and binding are single-flighted, so a dropped
   * connection is re-established and re-bound once, never used unauthenticated.
   */
  private async conn(): Promise<Client> {
    if (this.closed) throw new ConnectorError(`ldap target ${this.targetId}: connector is closed`, false, 'CLOSED');
    while (!this.client.isBound) {
      this.bindInFlight ??= this.client
        .bind(this.target.bindDN, this.target.bindPassword)
        .catch((err: unknown) => {
          throw toConnectorError(err, `ldap ${this.targetId}: bind as ${this.target.bindDN} to ${this.target.url}`);
        })
        .finally(() => {
          this.bindInFlight = undefined;
        });
      await this.bindInFlight;
    }
    return this.client;
  }

  private async guard<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw toConnectorError(err, `ldap ${this.targetId}: ${what}`);
    }
  }

  private accountDn(id: string, container: string): string {
    return `uid=${escapeDnValue(id)},${container}`;
  }

  private candidateDns(id: string): string[] {
    const dns = [this.accountDn(id, this.usersDN)];
    if (this.disabledDN && normalizeDn(this.disabledDN) !== normalizeDn(this.usersDN)) dns.push(this.accountDn(id, this.disabledDN));
    return dns;
  }

  /**
   * A group reference is the DN of a group under groupsDN. Anything else is refused rather
   * than guessed at: a bare name (so what is granted, revoked and read back is always the
   * one named entry), and a DN elsewhere (the engine manages its own groups, not any entry
   * a config line happens to name).
   */
  private groupDn(ref: string): string {
    const rdns = typeof ref === 'string' ? parseDnOrNull(ref) : null;
    const container = this.groupsContainer;
    const valid =
      rdns !== null &&
      rdns.length > container.length &&
      rdns.every((rdn) => rdn.every(([type]) => ATTRIBUTE_TYPE.test(type))) &&
      formatNormalized(rdns.slice(rdns.length - container.length)) === formatNormalized(container);
    if (!valid) throw new ConnectorError(`group reference "${String(ref)}" is not a DN under ${this.target.groupsDN}`, false, 'INVALID_REF');
    return ref;
  }

  /** The groups (anywhere under baseDN) whose own member values name one of `dns`. */
  private async groupsListing(dns: string[]): Promise<string[]> {
    const filter = `(|${dns.map((dn) => `(member=${escapeFilterValue(dn)})`).join('')})`;
    const { searchEntries } = await (await this.conn()).search(this.target.baseDN, { scope: 'sub', filter, attributes: ['1.1'] });
    return searchEntries.map((e) => e.dn);
  }

  private async readEntry(dn: string, attributes: string[]): Promise<Record<string, unknown> | null> {
    try {
      const { searchEntries } = await (await this.conn()).search(dn, { scope: 'base', filter: '(objectClass=*)', attributes });
      return (searchEntries[0] as Record<string, unknown> | undefined) ?? null;
    } catch (err) {
      if (resultCode(err) === RC.noSuchObject) return null;
      throw err;
    }
  }

  /**
   * Finds the person's account in the users container, or (moved) in the disabled one.
   * Refuses, permanently, an entry there that is someone else's, and an entry in both
   * containers (which of the two is the person's cannot be told).
   */
  private async locate(id: string): Promise<Located | null> {
    const attributes = ['uid', 'employeeNumber', 'memberOf', 'pwdAccountLockedTime'];
    const dns = this.candidateDns(id);
    const entries = await Promise.all(dns.map((dn) => this.readEntry(dn, attributes)));
    const found = entries.flatMap((entry, i) => (entry ? [{ dn: String(entry.dn ?? dns[i]), moved: i > 0, entry }] : []));
    if (found.length > 1) {
      throw new ConnectorError(`account ${id} exists both as ${found[0]!.dn} and as ${found[1]!.dn}`, false, 'AMBIGUOUS_ACCOUNT');
    }
    const [account] = found;
    if (account) checkOwner(id, account);
    return account ?? null;
  }

  private isEnabled(found: Located): boolean {
    if (this.target.disable.method === 'move') return !found.moved;
    return strings(attr(found.entry, 'pwdAccountLockedTime')).length === 0;
  }

  private async disable(id: string, found: Located): Promise<string> {
    if (this.target.disable.method === 'move') {
      if (found.moved) return found.dn;
      const to = this.accountDn(id, this.disabledDN!);
      await this.rename(found.dn, to);
      return to;
    }
    if (strings(attr(found.entry, 'pwdAccountLockedTime')).includes(PERMANENT_LOCK)) return found.dn;
    await this.modify(found.dn, [change('replace', 'pwdAccountLockedTime', [PERMANENT_LOCK])]);
    return found.dn;
  }

  private async enable(id: string, found: Located): Promise<void> {
    if (this.target.disable.method === 'move') {
      if (found.moved) await this.rename(found.dn, this.accountDn(id, this.usersDN));
      return;
    }
    try {
      await this.modify(found.dn, [change('delete', 'pwdAccountLockedTime', [])]);
    } catch (err) {
      if (resultCode(err) !== RC.noSuchAttribute) throw err; // not locked: done
    }
  }

  private async rename(from: string, to: string): Promise<void> {
    try {
      await (await this.conn()).modifyDN(from, to);
    } catch (err) {
      // Moved by a concurrent call: done if the entry is now where we wanted it.
      if (resultCode(err) === RC.noSuchObject && (await this.readEntry(to, ['1.1']))) return;
      throw err;
    }
  }

  private async modify(dn: string, changes: Change[]): Promise<void> {
    if (changes.length === 0) return;
    await (await this.conn()).modify(dn, changes);
  }

  /** Creates a groupOfNames holding `member`; false when it already exists. */
  private async createGroup(groupDn: string, member: string): Promise<boolean> {
    const rdn = parseDn(groupDn)[0];
    if (!rdn) throw new ConnectorError(`invalid group DN ${groupDn}`, false, 'INVALID_REF');
    const attrs: Record<string, string[]> = { objectClass: ['top', 'groupOfNames'], member: [member] };
    for (const [type, value] of rdn) (attrs[type] ??= []).push(value);
    if (!Object.keys(attrs).some((k) => k.toLowerCase() === 'cn')) attrs.cn = [rdn[0]![1]];
    try {
      await (await this.conn()).add(groupDn, attrs);
      return true;
    } catch (err) {
      if (resultCode(err) === RC.entryAlreadyExists) return false;
      throw err;
    }
  }

  /**
   * Removes one member value. Removing a groupOfNames' last real member would violate the
   * schema, so in that case the placeholder takes its place in the same modify (atomic).
   */
  private async removeMember(groupDn: string, memberDn: string): Promise<void> {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await this.modify(groupDn, [change('delete', 'member', [memberDn])]);
        return;
      } catch (err) {
        const code = resultCode(err);
        if (code === RC.noSuchAttribute || code === RC.noSuchObject) return; // not a member / no group
        if (code !== RC.objectClassViolation) throw err;
      }
      try {
        await this.modify(groupDn, [change('add', 'member', [this.placeholderDN]), change('delete', 'member', [memberDn])]);
        return;
      } catch (err) {
        const code = resultCode(err);
        if (code === RC.noSuchObject) return;
        // 20: the placeholder is there after all; 16: the member went meanwhile. Re-evaluate.
        if (code !== RC.typeOrValueExists && code !== RC.noSuchAttribute) throw err;
      }
    }
    throw new ConnectorError(`group ${groupDn} keeps changing while removing ${memberDn}`, true, 'CONFLICT');
  }

  private newAccountAttributes(id: string, a: IdentityAttributes): Record<string, string[]> {
    const given = text(a.givenName);
    const family = text(a.familyName);
    const attrs: Record<string, string[]> = {
      objectClass: PERSON_CLASSES,
      uid: [id],
      cn: [fullName(given, family) ?? id],
      sn: [family ?? id],
      employeeNumber: [id],
    };
    for (const [name, value] of this.optionalAttributes(a)) {
      if (value) attrs[name] = [value];
    }
    return attrs;
  }

  /** Replace what the spec states; `undefined` leaves an attribute alone, null or '' clears it. */
  private adoptChanges(id: string, a: IdentityAttributes): Change[] {
    const changes: Change[] = [change('replace', 'employeeNumber', [id])];
    const given = text(a.givenName);
    const family = text(a.familyName);
    if (a.givenName !== undefined || a.familyName !== undefined) {
      changes.push(change('replace', 'cn', [fullName(given, family) ?? id]));
    }
    if (a.familyName !== undefined) changes.push(change('replace', 'sn', [family ?? id]));
    for (const [name, value, stated] of this.optionalAttributes(a)) {
      if (stated) changes.push(change('replace', name, value ? [value] : []));
    }
    return changes;
  }

  /** [ldap attribute, value or null, whether the spec states it at all]. */
  private optionalAttributes(a: IdentityAttributes): [string, string | null, boolean][] {
    const manager = text(a.managerId);
    return [
      ['givenName', text(a.givenName), a.givenName !== undefined],
      ['mail', text(a.email), a.email !== undefined],
      ['title', text(a.title), a.title !== undefined],
      ['ou', text(a.department), a.department !== undefined],
      ['l', text(a.location), a.location !== undefined],
      ['employeeType', text(a.employmentType), a.employmentType !== undefined],
      ['departmentNumber', text(a.departmentNumber), a.departmentNumber !== undefined],
      ['manager', manager ? this.accountDn(manager, this.usersDN) : null, a.managerId !== undefined],
    ];
  }
}

// ---- helpers ----------------------------------------------------------------------------

function change(operation: 'add' | 'delete' | 'replace', type: string, values: string[]): Change {
  return new Change({ operation, modification: new Attribute({ type, values }) });
}

function checkId(id: string): string {
  if (typeof id !== 'string' || !id.trim()) throw new ConnectorError('empty employee id', false, 'INVALID_ID');
  return id;
}

/**
 * The entry found at the person's DN is theirs only if every uid and employeeNumber value
 * it carries is their id, canonicalised. The directory's own match is wider (see the top of
 * the file), and an entry may carry several uids, or an employeeNumber naming someone else.
 */
function checkOwner(id: string, found: Located): void {
  const own = canonicalEmployeeId(id);
  const uids = strings(attr(found.entry, 'uid'));
  const claims = [...uids, ...strings(attr(found.entry, 'employeeNumber'))];
  if (uids.length === 0 || claims.some((value) => canonicalEmployeeId(value) !== own)) {
    throw new ConnectorError(`the entry ${found.dn} is not the account of ${id}: its uid or employeeNumber names someone else`, false, 'FOREIGN_ACCOUNT');
  }
}

/** An entry attribute by name, case-insensitively (servers answer in their own case). */
function attr(entry: Record<string, unknown>, name: string): unknown {
  if (name in entry) return entry[name];
  const lower = name.toLowerCase();
  for (const [key, value] of Object.entries(entry)) if (key.toLowerCase() === lower) return value;
  return undefined;
}

function strings(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  const list = Array.isArray(value) ? value : [value];
  return list.map((v) => (Buffer.isBuffer(v) ? v.toString('utf8') : String(v)));
}

function resultCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** Maps anything thrown by ldapts (or the network) to a ConnectorError. */
export function toConnectorError(err: unknown, context: string): ConnectorError {
  if (err instanceof ConnectorError) return err;
  const e = err as { code?: unknown; message?: unknown } | null;
  const message = typeof e?.message === 'string' ? e.message : String(err);
  const rc = resultCode(err);
  if (rc !== undefined) {
    if (UNAVAILABLE_RESULT_CODES.has(rc)) return new TargetUnavailableError(`${context}: ${message}`, `LDAP_${rc}`);
    return new ConnectorError(`${context}: ${message}`, RETRYABLE_RESULT_CODES.has(rc), `LDAP_${rc}`);
  }
  // Not an LDAP result: the connection failed, closed or timed out. The target is unavailable.
  if (typeof e?.code === 'string' && /^E[A-Z]+/.test(e.code)) return new TargetUnavailableError(`${context}: ${message}`, e.code);
  if (/timed? ?out/i.test(message)) return new TargetUnavailableError(`${context}: ${message}`, 'LDAP_TIMEOUT');
  if (/socket|connection|connect/i.test(message)) return new TargetUnavailableError(`${context}: ${message}`, 'LDAP_CONNECTION');
  return new ConnectorError(`${context}: ${message}`, false, 'LDAP_CLIENT');
}

// ---- DN and filter escaping (RFC 4514, RFC 4515) ----------------------------------------

/**
 * Escapes an attribute value for use in a DN (RFC 4514). Special characters are written as
 * `\XX` hex pairs (never `\,`), which every server accepts and which also keeps ldapts'
 * modifyDN (it splits the new DN at the first `,` not preceded by `\`) correct.
 */
export function escapeDnValue(value: string): string {
  let out = '';
  const chars = [...value];
  chars.forEach((ch, i) => {
    const code = ch.codePointAt(0)!;
    const special =
      '"+,;<>\\='.includes(ch) ||
      code < 0x20 ||
      code === 0x7f ||
      (i === 0 && (ch === ' ' || ch === '#')) ||
      (i === chars.length - 1 && ch === ' ');
    out += special ? hex(ch) : ch;
  });
  return out;
}

function hex(ch: string): string {
  return [...Buffer.from(ch, 'utf8')].map((b) => `\\${b.toString(16).toUpperCase().padStart(2, '0')}`).join('');
}

/** Escapes a value for use inside an LDAP search filter (RFC 4515). */
export function escapeFilterValue(value: string): string {
  return escapeFilter`${value}`;
}

/** One RDN: its (type, unescaped value) pairs, several when multi-valued (`a=1+b=2`). */
type Rdn = [string, string][];

/** An attribute type in a DN: a name (`cn`) or an OID (`2.5.4.3`), RFC 4514 §3. */
const ATTRIBUTE_TYPE = /^(?:[A-Za-z][A-Za-z0-9-]*|\d+(?:\.\d+)+)$/;

function parseDnOrNull(dn: string): Rdn[] | null {
  try {
    return parseDn(dn);
  } catch {
    return null;
  }
}

function normalizeDnOrNull(dn: string): string | null {
  const rdns = parseDnOrNull(dn);
  return rdns ? formatNormalized(rdns) : null;
}

/** Parses a string DN (RFC 4514, with the RFC 2253 quoted form tolerated). */
export function parseDn(dn: string): Rdn[] {
  const rdns: Rdn[] = [];
  let i = 0;
  const n = dn.length;
  const skipSpaces = () => {
    while (i < n && dn[i] === ' ') i++;
  };
  if (!dn.trim()) return rdns;
  let rdn: Rdn = [];
  for (;;) {
    skipSpaces();
    let type = '';
    while (i < n && dn[i] !== '=') type += dn[i++];
    if (i >= n) throw new Error(`invalid DN: ${dn}`);
    i++; // '='
    skipSpaces();
    const bytes: number[] = [];
    let pendingSpaces = 0;
    const push = (s: string) => {
      for (; pendingSpaces > 0; pendingSpaces--) bytes.push(0x20);
      bytes.push(...Buffer.from(s, 'utf8'));
    };
    if (dn[i] === '"') {
      i++;
      while (i < n && dn[i] !== '"') {
        if (dn[i] === '\\' && i + 1 < n) i++;
        push(dn[i++]!);
      }
      i++; // closing quote
      skipSpaces();
    } else {
      while (i < n && dn[i] !== ',' && dn[i] !== '+' && dn[i] !== ';') {
        const ch = dn[i]!;
        if (ch === '\\') {
          const pair = dn.slice(i + 1, i + 3);
          if (/^[0-9a-fA-F]{2}$/.test(pair)) {
            for (; pendingSpaces > 0; pendingSpaces--) bytes.push(0x20);
            bytes.push(parseInt(pair, 16));
            i += 3;
          } else {
            push(dn[i + 1] ?? '');
            i += 2;
          }
        } else if (ch === ' ') {
          pendingSpaces++; // trailing unescaped spaces are not part of the value
          i++;
        } else {
          push(ch);
          i++;
        }
      }
    }
    rdn.push([type.trim(), Buffer.from(bytes).toString('utf8')]);
    if (i >= n) {
      rdns.push(rdn);
      return rdns;
    }
    if (dn[i] === '+') {
      i++;
      continue;
    }
    rdns.push(rdn);
    rdn = [];
    i++; // ',' or ';'
  }
}

function formatNormalized(rdns: Rdn[]): string {
  return rdns
    .map((rdn) =>
      rdn
        .map(([type, value]) => `${type.toLowerCase()}=${escapeDnValue(value.toLowerCase())}`)
        .sort()
        .join('+'),
    )
    .join(',');
}

/** A comparable form of a DN: parsed, case-folded (fine for the caseIgnore naming attributes). */
export function normalizeDn(dn: string): string {
  return formatNormalized(parseDn(dn));
}
