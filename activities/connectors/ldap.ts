// LDAP connector (OpenLDAP and other RFC 4511 directories) on ldapts.
//
// Accounts are inetOrgPerson entries `uid=<employeeId>,<usersDN>`; groups are groupOfNames
// with `member` DNs. A disabled account is either locked with ppolicy
// (`pwdAccountLockedTime: 000001010000Z`, a permanent administrative lock) or moved under
// `disabledDN`, per `target.disable.method`. Every method is idempotent, so Temporal can
// retry freely. Employee ids come from HR: they are always escaped (RFC 4514) before they
// become part of a DN, and never placed in a search filter unescaped (RFC 4515).
import { Attribute, Change, Client, escapeFilter } from 'ldapts';
import type { LdapTargetConfig } from '../../domain/config.js';
import type { IdentityAttributes } from '../../domain/types.js';
import { ConnectorError, type AccountSpec, type AccountState, type Connector } from './types.js';

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

/** LDAP result codes worth retrying: the server is momentarily unable, not unwilling. */
const RETRYABLE_RESULT_CODES = new Set([
  3, // timeLimitExceeded
  51, // busy
  52, // unavailable
  81, // serverDown (client API code)
  85, // timeout (client API code)
  91, // connectError (client API code)
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

  constructor(private readonly target: LdapConnectorOptions) {
    this.targetId = target.id;
    this.usersDN = target.usersDN;
    this.disabledDN = target.disable.disabledDN;
    if (target.disable.method === 'move' && !this.disabledDN) {
      throw new ConnectorError(`ldap target ${target.id}: disable method "move" needs a disabledDN`, false, 'CONFIG');
    }
    this.placeholderDN = target.placeholderMemberDN ?? `cn=placeholder,${target.baseDN}`;
    this.placeholderNorm = normalizeDn(this.placeholderDN);
    const timeout = target.timeout > 0 ? target.timeout : undefined;
    this.client = new Client({ url: target.url, timeout, connectTimeout: timeout });
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
      for (const dn of this.candidateDns(id)) {
        const entry = await this.readEntry(dn, ['memberOf']);
        if (!entry) continue;
        // refint removes a deleted DN from groups, but it cannot remove a group's last
        // member (schema violation) and leaves it dangling: take it out ourselves first.
        for (const group of strings(attr(entry, 'memberOf'))) await this.removeMember(group, dn);
        try {
          await (await this.conn()).del(dn);
        } catch (err) {
          if (resultCode(err) !== RC.noSuchObject) throw err;
        }
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
      // The member value may name either container (refint rewrites it on a move).
      for (const dn of this.candidateDns(id)) await this.removeMember(groupDn, dn);
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
        let rdns: Rdn[];
        try {
          rdns = parseDn(member);
        } catch {
          continue;
        }
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

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.client.unbind();
    } catch {
      // already gone
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

  /** A group reference is a DN, or a bare name taken as `cn=<name>,<groupsDN>`. */
  private groupDn(ref: string): string {
    if (!ref.trim()) throw new ConnectorError('empty group reference', false, 'INVALID_REF');
    return ref.includes('=') ? ref : `cn=${escapeDnValue(ref)},${this.target.groupsDN}`;
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

  /** Finds the account in the users container, or (moved) in the disabled one. */
  private async locate(id: string): Promise<Located | null> {
    const attributes = ['uid', 'memberOf', 'pwdAccountLockedTime'];
    const dns = this.candidateDns(id);
    const entries = await Promise.all(dns.map((dn) => this.readEntry(dn, attributes)));
    for (let i = 0; i < dns.length; i++) {
      const entry = entries[i];
      if (entry) return { dn: String(entry.dn ?? dns[i]), moved: i > 0, entry };
    }
    return null;
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

function text(value: unknown): string | null {
  if (typeof value === 'number') return String(value);
  if (typeof value !== 'string') return null;
  const trimmed = value.trim();
  return trimmed ? trimmed : null;
}

function fullName(given: string | null, family: string | null): string | null {
  const name = [given, family].filter(Boolean).join(' ');
  return name || null;
}

function checkId(id: string): string {
  if (typeof id !== 'string' || !id.trim()) throw new ConnectorError('empty employee id', false, 'INVALID_ID');
  return id;
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
  if (rc !== undefined) return new ConnectorError(`${context}: ${message}`, RETRYABLE_RESULT_CODES.has(rc), `LDAP_${rc}`);
  // Not an LDAP result: the connection failed, closed or timed out. Those are transient.
  if (typeof e?.code === 'string' && /^E[A-Z]+/.test(e.code)) return new ConnectorError(`${context}: ${message}`, true, e.code);
  if (/timed? ?out/i.test(message)) return new ConnectorError(`${context}: ${message}`, true, 'LDAP_TIMEOUT');
  if (/socket|connection|connect/i.test(message)) return new ConnectorError(`${context}: ${message}`, true, 'LDAP_CONNECTION');
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
