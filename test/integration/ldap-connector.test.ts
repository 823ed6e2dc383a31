// The LDAP connector against the real slapd from the global setup (memberof, refint and
// ppolicy overlays), and one started here without memberof. Every test uses its own
// employee ids and groups.
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, Socket, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Attribute, Change, Client, InvalidCredentialsError } from 'ldapts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createConnectors, closeConnectors } from '../../activities/connectors/index.js';
import { createLdapConnector, type LdapConnectorOptions } from '../../activities/connectors/ldap.js';
import { ConnectorError, TargetUnavailableError, type Connector } from '../../activities/connectors/types.js';
import { startSlapd, type SlapdServer } from '../../scripts/slapd.js';
import { testEnv, uniqueName, type LdapServerInfo } from '../support/env.js';

let ldap: LdapServerInfo;
let admin: Client;
const opened: Connector[] = [];

function options(extra: Partial<LdapConnectorOptions> = {}): LdapConnectorOptions {
  return {
    id: 'directory',
    type: 'ldap',
    url: ldap.url,
    bindDN: ldap.bindDN,
    bindPassword: ldap.bindPassword,
    baseDN: ldap.baseDN,
    usersDN: ldap.usersDN,
    groupsDN: ldap.groupsDN,
    disable: { method: 'ppolicy' },
    timeout: 5_000,
    ...extra,
  };
}

function connector(extra: Partial<LdapConnectorOptions> = {}): Connector {
  const c = createLdapConnector(options(extra));
  opened.push(c);
  return c;
}

/** A raw read as the directory admin, all user attributes plus the given operational ones. */
async function entry(dn: string, operational: string[] = []): Promise<Record<string, unknown> | null> {
  try {
    const { searchEntries } = await admin.search(dn, { scope: 'base', attributes: ['*', ...operational] });
    return searchEntries[0] ?? null;
  } catch (err) {
    if ((err as { code?: number }).code === 32) return null;
    throw err;
  }
}

const list = (v: unknown): string[] => (v === undefined ? [] : Array.isArray(v) ? v.map(String) : [String(v)]);
const lower = (values: string[]) => values.map((v) => v.toLowerCase()).sort();
const id = () => uniqueName('ldap');
const groupDn = (name: string) => `cn=${name},${ldap.groupsDN}`;

async function canBind(dn: string, password: string): Promise<boolean> {
  const client = new Client({ url: ldap.url, timeout: 5_000 });
  try {
    await client.bind(dn, password);
    return true;
  } catch (err) {
    if (err instanceof InvalidCredentialsError || (err as { code?: number }).code === 49) return false;
    throw err;
  } finally {
    await client.unbind().catch(() => {});
  }
}

async function caught(promise: Promise<unknown>): Promise<ConnectorError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConnectorError);
  return err as ConnectorError;
}

beforeAll(async () => {
  ldap = testEnv.ldap;
  admin = new Client({ url: ldap.url, timeout: 5_000 });
  await admin.bind(ldap.bindDN, ldap.bindPassword);
});

afterAll(async () => {
  await Promise.allSettled(opened.map((c) => c.close()));
  await admin?.unbind().catch(() => {});
});

describe('LDAP connector: accounts', () => {
  it('creates an inetOrgPerson and reads it back', async () => {
    const c = connector();
    const emp = id();
    const { ref, created } = await c.ensureAccount({
      employeeId: emp,
      attributes: {
        givenName: 'Ada',
        familyName: 'Lovelace',
        email: 'ada@example.com',
        department: 'Engineering',
        title: 'Engineer',
        location: 'London',
        employmentType: 'employee',
        managerId: 'E0001',
        somethingUnknown: { kept: true },
      },
      enabled: true,
    });
    expect(created).toBe(true);
    expect(ref.toLowerCase()).toBe(`uid=${emp},${ldap.usersDN}`.toLowerCase());

    const state = await c.readAccount(emp);
    expect(state).toEqual({ ref, enabled: true, groups: [] });

    const e = await entry(ref, ['pwdAccountLockedTime']);
    expect(lower(list(e?.objectClass))).toEqual(['inetorgperson', 'organizationalperson', 'person', 'top']);
    expect(e).toMatchObject({
      uid: emp,
      cn: 'Ada Lovelace',
      sn: 'Lovelace',
      givenName: 'Ada',
      mail: 'ada@example.com',
      title: 'Engineer',
      ou: 'Engineering',
      l: 'London',
      employeeType: 'employee',
      employeeNumber: emp,
      manager: `uid=E0001,${ldap.usersDN}`,
    });
    expect(list(e?.pwdAccountLockedTime)).toEqual([]);
  });

  it('falls back to the employee id for the required cn and sn', async () => {
    const c = connector();
    const emp = id();
    const { ref } = await c.ensureAccount({ employeeId: emp, attributes: {}, enabled: true });
    expect(await entry(ref)).toMatchObject({ cn: emp, sn: emp, employeeNumber: emp });
  });

  it('adopts an existing account on a second ensureAccount and brings it up to date', async () => {
    const c = connector();
    const emp = id();
    const attributes = { givenName: 'Grace', familyName: 'Hopper', title: 'Engineer', department: 'Navy' };
    const first = await c.ensureAccount({ employeeId: emp, attributes, enabled: true });
    const second = await c.ensureAccount({ employeeId: emp, attributes: { ...attributes, title: 'Rear Admiral', location: 'Arlington' }, enabled: true });
    expect(first.created).toBe(true);
    expect(second).toEqual({ ref: first.ref, created: false });
    expect(await entry(first.ref)).toMatchObject({ title: 'Rear Admiral', l: 'Arlington', ou: 'Navy', cn: 'Grace Hopper' });

    // An attribute explicitly cleared goes; one not mentioned stays.
    await c.ensureAccount({ employeeId: emp, attributes: { title: null as unknown as string }, enabled: true });
    const after = await entry(first.ref);
    expect(after?.title).toBeUndefined();
    expect(after).toMatchObject({ l: 'Arlington', cn: 'Grace Hopper' });
  });

  it('concurrent ensureAccount calls for one person create it once', async () => {
    const c = connector();
    const emp = id();
    const results = await Promise.all(Array.from({ length: 5 }, () => c.ensureAccount({ employeeId: emp, attributes: { familyName: 'Race' }, enabled: true })));
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(new Set(results.map((r) => r.ref)).size).toBe(1);
  });

  it('readAccount of an unknown person is null; deleteAccount twice is fine', async () => {
    const c = connector();
    const emp = id();
    expect(await c.readAccount(emp)).toBeNull();
    const { ref } = await c.ensureAccount({ employeeId: emp, attributes: { familyName: 'Gone' }, enabled: true });
    await c.deleteAccount(emp);
    await c.deleteAccount(emp);
    expect(await c.readAccount(emp)).toBeNull();
    expect(await entry(ref)).toBeNull();
  });

  it('deleting a group\'s only member leaves a valid group with no dangling member', async () => {
    const c = connector();
    const emp = id();
    const group = groupDn(uniqueName('solo'));
    await c.ensureAccount({ employeeId: emp, attributes: {}, enabled: true });
    await c.addToGroup(emp, group);
    await c.deleteAccount(emp);
    expect(await c.listGroupMembers(group)).toEqual([]);
    const g = await entry(group);
    expect(g).not.toBeNull();
    expect(lower(list(g?.member))).not.toContain(`uid=${emp},${ldap.usersDN}`.toLowerCase());
  });
});

describe('LDAP connector: groups', () => {
  it('adds to two groups (created on demand), idempotently, and removes', async () => {
    const c = connector();
    const emp = id();
    const g1 = groupDn(uniqueName('g1'));
    const g2 = groupDn(uniqueName('g2'));
    await c.ensureAccount({ employeeId: emp, attributes: { familyName: 'Member' }, enabled: true });

    await c.addToGroup(emp, g1);
    await c.addToGroup(emp, g2);
    expect(lower((await c.readAccount(emp))!.groups)).toEqual(lower([g1, g2]));

    await c.addToGroup(emp, g1); // already a member: a no-op
    expect(list((await entry(g1))?.member)).toHaveLength(1);
    expect(await c.listGroupMembers(g1)).toEqual([emp]);
    expect(lower(list((await entry(g1))?.objectClass))).toContain('groupofnames');

    await c.removeFromGroup(emp, g2);
    await c.removeFromGroup(emp, g2); // no longer a member: fine
    expect(lower((await c.readAccount(emp))!.groups)).toEqual(lower([g1]));
    expect(await c.listGroupMembers(g2)).toEqual([]);

    // Removing from a group that does not exist is fine too; listing it is empty.
    const none = groupDn(uniqueName('none'));
    await c.removeFromGroup(emp, none);
    expect(await c.listGroupMembers(none)).toEqual([]);
  });

  it('refuses a group reference that is not a DN under groupsDN, permanently, and touches nothing', async () => {
    const c = connector();
    const emp = id();
    const name = uniqueName('bare');
    const elsewhere = `cn=${uniqueName('elsewhere')},${ldap.baseDN}`;
    await c.ensureAccount({ employeeId: emp, attributes: {}, enabled: true });
    for (const ref of [name, elsewhere, ldap.groupsDN, ldap.usersDN, '']) {
      for (const attempt of [() => c.addToGroup(emp, ref), () => c.removeFromGroup(emp, ref), () => c.isGroupMember(emp, ref), () => c.listGroupMembers(ref)]) {
        expect(await caught(attempt())).toMatchObject({ retryable: false, code: 'INVALID_REF' });
      }
    }
    expect(await entry(groupDn(name))).toBeNull(); // not guessed at as cn=<name>,<groupsDN>
    expect(await entry(elsewhere)).toBeNull();
    expect((await c.readAccount(emp))!.groups).toEqual([]);
  });

  it('reads membership from the group entry itself; a missing group has no members; a non-group proves nothing', async () => {
    const c = connector();
    const emp = id();
    const group = groupDn(uniqueName('truth'));
    await c.ensureAccount({ employeeId: emp, attributes: {}, enabled: true });
    await c.addToGroup(emp, group);
    expect(await c.isGroupMember(emp, group)).toBe(true);
    expect(await c.isGroupMember(emp, group.toUpperCase().replace(',', ' , '))).toBe(true); // DN-normalised
    await c.removeFromGroup(emp, group);
    expect(await c.isGroupMember(emp, group)).toBe(false);
    // The group's own values are the truth: a value written behind the connector's back counts.
    await admin.modify(group, new Change({ operation: 'add', modification: new Attribute({ type: 'member', values: [`uid=${emp},${ldap.usersDN}`] }) }));
    expect(await c.isGroupMember(emp, group)).toBe(true);
    // The directory answers "no such entry" for a missing group: nobody is its member.
    expect(await c.isGroupMember(emp, groupDn(uniqueName('absent')))).toBe(false);
    const notAGroup = `ou=${uniqueName('ou')},${ldap.groupsDN}`;
    await admin.add(notAGroup, { objectClass: ['organizationalUnit'], ou: notAGroup.slice(3, notAGroup.indexOf(',')) });
    expect(await caught(c.isGroupMember(emp, notAGroup))).toMatchObject({ retryable: false, code: 'NOT_A_GROUP' });
  });

  it('counts a member value naming the disabled container as membership (it revives on a move)', async () => {
    const c = connector({ disable: { method: 'move', disabledDN: ldap.disabledDN } });
    const emp = id();
    const group = groupDn(uniqueName('parked'));
    await c.ensureAccount({ employeeId: emp, attributes: {}, enabled: true });
    await c.addToGroup(emp, group);
    await admin.modify(group, new Change({ operation: 'replace', modification: new Attribute({ type: 'member', values: [`uid=${emp},${ldap.disabledDN}`] }) }));
    expect(await c.isGroupMember(emp, group)).toBe(true);
    await c.removeFromGroup(emp, group);
    expect(await c.isGroupMember(emp, group)).toBe(false);
  });

  it('keeps a group valid with a placeholder when its last real member is removed', async () => {
    const c = connector();
    const a = id();
    const b = id();
    const group = groupDn(uniqueName('last'));
    await c.ensureAccount({ employeeId: a, attributes: {}, enabled: true });
    await c.ensureAccount({ employeeId: b, attributes: {}, enabled: true });
    await c.addToGroup(a, group);
    await c.addToGroup(b, group);
    expect((await c.listGroupMembers(group)).sort()).toEqual([a, b].sort());

    await c.removeFromGroup(a, group);
    await c.removeFromGroup(b, group);
    const g = await entry(group);
    expect(g).not.toBeNull();
    expect(lower(list(g?.member))).toEqual([`cn=placeholder,${ldap.baseDN}`.toLowerCase()]);
    expect(await c.listGroupMembers(group)).toEqual([]);
    expect((await c.readAccount(a))!.groups).toEqual([]);

    // Adding a real member again drops the placeholder.
    await c.addToGroup(a, group);
    expect(lower(list((await entry(group))?.member))).toEqual([`uid=${a},${ldap.usersDN}`.toLowerCase()]);
    expect(await c.listGroupMembers(group)).toEqual([a]);
  });

  it('a configured placeholder DN is used and never reported', async () => {
    const placeholder = `cn=nobody,${ldap.baseDN}`;
    const c = connector({ placeholderMemberDN: placeholder });
    const emp = id();
    const group = groupDn(uniqueName('ph'));
    await c.ensureAccount({ employeeId: emp, attributes: {}, enabled: true });
    await c.addToGroup(emp, group);
    await c.removeFromGroup(emp, group);
    expect(lower(list((await entry(group))?.member))).toEqual([placeholder.toLowerCase()]);
    expect(await c.listGroupMembers(group)).toEqual([]);
  });

  it('handles many concurrent operations on one connector', async () => {
    const c = connector();
    const group = groupDn(uniqueName('busy'));
    const emps = Array.from({ length: 12 }, () => id());
    await Promise.all(emps.map((e) => c.ensureAccount({ employeeId: e, attributes: { familyName: 'Busy' }, enabled: true })));
    await Promise.all(emps.map((e) => c.addToGroup(e, group)));
    expect((await c.listGroupMembers(group)).sort()).toEqual([...emps].sort());
    await Promise.all(emps.map((e) => c.removeFromGroup(e, group)));
    expect(await c.listGroupMembers(group)).toEqual([]);
    expect(await entry(group)).not.toBeNull();
  });

  it('adding a person who has no account is a retryable error', async () => {
    const c = connector();
    const err = await caught(c.addToGroup(id(), groupDn(uniqueName('ghost'))));
    expect(err).toMatchObject({ retryable: true, code: 'ACCOUNT_NOT_FOUND' });
  });
});

describe('LDAP connector: adopting only the person\'s own entry', () => {
  /** An entry put in the directory by someone else (an admin, another tool). */
  async function planted(dn: string, attributes: Record<string, string | string[]>): Promise<void> {
    await admin.add(dn, { objectClass: ['top', 'person', 'organizationalPerson', 'inetOrgPerson'], cn: 'Someone Else', sn: 'Else', title: 'Theirs', ...attributes });
  }

  /** Every way of using the account refuses the entry, permanently, and leaves it as it was. */
  async function refusedEverywhere(c: Connector, emp: string, dn: string): Promise<void> {
    const before = await entry(dn, ['pwdAccountLockedTime']);
    const group = groupDn(uniqueName('theirs'));
    // One at a time: a call started early could reject before anything awaits it.
    for (const attempt of [
      () => c.ensureAccount({ employeeId: emp, attributes: { title: 'Mine' }, enabled: false }),
      () => c.readAccount(emp),
      () => c.setAccountEnabled(emp, false),
      () => c.addToGroup(emp, group),
      () => c.removeFromGroup(emp, group),
      () => c.isGroupMember(emp, group),
      () => c.deleteAccount(emp),
    ]) {
      expect(await caught(attempt())).toMatchObject({ retryable: false, code: 'FOREIGN_ACCOUNT' });
    }
    expect(await entry(dn, ['pwdAccountLockedTime'])).toEqual(before);
    expect(await entry(group)).toBeNull();
  }

  it('refuses an entry that also carries another person\'s uid', async () => {
    const c = connector();
    const emp = id();
    const dn = `uid=${emp},${ldap.usersDN}`;
    await planted(dn, { uid: [emp, id()] });
    await refusedEverywhere(c, emp, dn);
  });

  it('refuses an entry the directory matches only by its wider case folding (KELVIN SIGN), yet adopts the same id in another case', async () => {
    const c = connector();
    const emp = `k${id()}`; // the directory folds U+212A to k; canonicalEmployeeId does not
    const dn = `uid=\u212A${emp.slice(1)},${ldap.usersDN}`;
    await planted(dn, { uid: `\u212A${emp.slice(1)}` });
    await refusedEverywhere(c, emp, dn);
    await admin.del(dn);

    // The same person written in lower case before ids were canonical: theirs, adopted.
    await planted(`uid=${emp},${ldap.usersDN}`, { uid: emp, employeeNumber: emp });
    const adopted = await c.ensureAccount({ employeeId: emp.toUpperCase(), attributes: { title: 'Mine' }, enabled: true });
    expect(adopted).toEqual({ ref: `uid=${emp},${ldap.usersDN}`, created: false });
    expect(await entry(adopted.ref)).toMatchObject({ title: 'Mine' });
  });

  it('refuses an entry whose employeeNumber is another person\'s', async () => {
    const c = connector();
    const emp = id();
    const dn = `uid=${emp},${ldap.usersDN}`;
    await planted(dn, { uid: emp, employeeNumber: id() });
    await refusedEverywhere(c, emp, dn);
  });

  it('applies the same checks in the disabled container, and refuses an account found in both', async () => {
    const c = connector({ disable: { method: 'move', disabledDN: ldap.disabledDN } });
    const parked = id();
    const dn = `uid=${parked},${ldap.disabledDN}`;
    await planted(dn, { uid: parked, employeeNumber: id() });
    await refusedEverywhere(c, parked, dn);

    const twice = id();
    await planted(`uid=${twice},${ldap.usersDN}`, { uid: twice });
    await planted(`uid=${twice},${ldap.disabledDN}`, { uid: twice });
    for (const attempt of [() => c.ensureAccount({ employeeId: twice, attributes: {}, enabled: true }), () => c.readAccount(twice), () => c.setAccountEnabled(twice, true), () => c.deleteAccount(twice)]) {
      expect(await caught(attempt())).toMatchObject({ retryable: false, code: 'AMBIGUOUS_ACCOUNT' });
    }
    expect(await entry(`uid=${twice},${ldap.usersDN}`)).not.toBeNull();
    expect(await entry(`uid=${twice},${ldap.disabledDN}`)).not.toBeNull();
  });
});

describe('LDAP connector: a directory without the memberof overlay', () => {
  let plain: SlapdServer;
  let plainDir: string;
  let plainAdmin: Client;
  const plainGroup = (name: string) => `cn=${name},${plain.groupsDN}`;

  beforeAll(async () => {
    plainDir = await mkdtemp(join(tmpdir(), 'jml-slapd-plain-'));
    plain = await startSlapd({ dir: plainDir, memberOf: false });
    plainAdmin = new Client({ url: plain.url, timeout: 5_000 });
    await plainAdmin.bind(plain.bindDN, plain.bindPassword);
  });
  afterAll(async () => {
    await plainAdmin?.unbind().catch(() => {});
    await plain?.stop();
    await rm(plainDir, { recursive: true, force: true });
  });

  function plainConnector(): Connector {
    return connector({ url: plain.url, bindDN: plain.bindDN, bindPassword: plain.bindPassword, baseDN: plain.baseDN, usersDN: plain.usersDN, groupsDN: plain.groupsDN });
  }

  it('sees membership in the group entry although the account reports no memberOf', async () => {
    const c = plainConnector();
    const emp = id();
    const group = plainGroup(uniqueName('g'));
    await c.ensureAccount({ employeeId: emp, attributes: {}, enabled: true });
    await c.addToGroup(emp, group);
    expect((await c.readAccount(emp))!.groups).toEqual([]);
    expect(await c.isGroupMember(emp, group)).toBe(true);
    expect(await c.listGroupMembers(group)).toEqual([emp]);
  });

  it('deleting an account takes it out of every group first, the last member included', async () => {
    const c = plainConnector();
    const emp = id();
    const other = id();
    const solo = plainGroup(uniqueName('solo'));
    const shared = plainGroup(uniqueName('shared'));
    await c.ensureAccount({ employeeId: emp, attributes: {}, enabled: true });
    await c.ensureAccount({ employeeId: other, attributes: {}, enabled: true });
    await c.addToGroup(emp, solo);
    await c.addToGroup(emp, shared);
    await c.addToGroup(other, shared);
    await c.deleteAccount(emp);
    const dn = `uid=${emp},${plain.usersDN}`.toLowerCase();
    for (const group of [solo, shared]) {
      const { searchEntries } = await plainAdmin.search(group, { scope: 'base', attributes: ['member'] });
      expect(lower(list(searchEntries[0]?.member))).not.toContain(dn);
    }
    expect(await c.listGroupMembers(shared)).toEqual([other]);
    // Re-created at the same DN, the account inherits nothing.
    await c.ensureAccount({ employeeId: emp, attributes: {}, enabled: true });
    expect(await c.isGroupMember(emp, solo)).toBe(false);
    expect(await c.isGroupMember(emp, shared)).toBe(false);
  });
});

describe('LDAP connector: disable and enable', () => {
  async function withPassword(ref: string, password: string): Promise<void> {
    await admin.modify(ref, new Change({ operation: 'replace', modification: new Attribute({ type: 'userPassword', values: [password] }) }));
  }

  it('ppolicy: a disabled account cannot bind; enabling restores it', async () => {
    const c = connector();
    const emp = id();
    const { ref } = await c.ensureAccount({ employeeId: emp, attributes: { familyName: 'Locked' }, enabled: true });
    await withPassword(ref, 'S3cret!pw');
    expect(await canBind(ref, 'S3cret!pw')).toBe(true);

    await c.setAccountEnabled(emp, false);
    await c.setAccountEnabled(emp, false); // twice is fine
    expect(await canBind(ref, 'S3cret!pw')).toBe(false);
    expect(await c.readAccount(emp)).toMatchObject({ ref, enabled: false });
    expect((await entry(ref, ['pwdAccountLockedTime']))?.pwdAccountLockedTime).toBe('000001010000Z');

    await c.setAccountEnabled(emp, true);
    await c.setAccountEnabled(emp, true); // deleting the absent lock is fine
    expect(await canBind(ref, 'S3cret!pw')).toBe(true);
    expect(await c.readAccount(emp)).toMatchObject({ ref, enabled: true });
  });

  it('ppolicy: a pre-provisioned account is created locked', async () => {
    const c = connector();
    const emp = id();
    const { ref, created } = await c.ensureAccount({ employeeId: emp, attributes: { familyName: 'Early' }, enabled: false });
    expect(created).toBe(true);
    expect((await entry(ref, ['pwdAccountLockedTime']))?.pwdAccountLockedTime).toBe('000001010000Z');
    expect(await c.readAccount(emp)).toMatchObject({ enabled: false });
    // Adopting with enabled:true does not undo a lock: enabling is setAccountEnabled's job.
    await c.ensureAccount({ employeeId: emp, attributes: { familyName: 'Early' }, enabled: true });
    expect(await c.readAccount(emp)).toMatchObject({ enabled: false });
    // Adopting with enabled:false locks an enabled account (the safe direction).
    const other = id();
    await c.ensureAccount({ employeeId: other, attributes: {}, enabled: true });
    await c.ensureAccount({ employeeId: other, attributes: {}, enabled: false });
    expect(await c.readAccount(other)).toMatchObject({ enabled: false });
  });

  it('ppolicy: a password reset clears the lock (OpenLDAP behaviour), and readAccount shows it', async () => {
    const c = connector();
    const emp = id();
    const { ref } = await c.ensureAccount({ employeeId: emp, attributes: {}, enabled: false });
    await withPassword(ref, 'Reset!pw1');
    // slapd's ppolicy drops pwdAccountLockedTime whenever the password changes, so a
    // disabled account is re-enabled by a reset; the read-back reports the truth.
    expect(await c.readAccount(emp)).toMatchObject({ enabled: true });
    await c.setAccountEnabled(emp, false);
    expect(await canBind(ref, 'Reset!pw1')).toBe(false);
    expect(await c.readAccount(emp)).toMatchObject({ enabled: false });
  });

  it('disabling an account that does not exist is done; enabling it is an error', async () => {
    const c = connector();
    const emp = id();
    await c.setAccountEnabled(emp, false);
    const err = await caught(c.setAccountEnabled(emp, true));
    expect(err).toMatchObject({ retryable: false, code: 'ACCOUNT_NOT_FOUND' });
  });

  it('move: disabling moves the entry to disabledDN and back, keeping it readable', async () => {
    const c = connector({ disable: { method: 'move', disabledDN: ldap.disabledDN } });
    const emp = id();
    const group = groupDn(uniqueName('mv'));
    const active = `uid=${emp},${ldap.usersDN}`.toLowerCase();
    const parked = `uid=${emp},${ldap.disabledDN}`.toLowerCase();
    const { ref } = await c.ensureAccount({ employeeId: emp, attributes: { familyName: 'Mover', title: 'Clerk' }, enabled: true });
    expect(ref.toLowerCase()).toBe(active);
    await c.addToGroup(emp, group);

    await c.setAccountEnabled(emp, false);
    await c.setAccountEnabled(emp, false);
    const disabled = await c.readAccount(emp);
    expect(disabled?.ref.toLowerCase()).toBe(parked);
    expect(disabled?.enabled).toBe(false);
    expect(await entry(active)).toBeNull();
    // refint followed the rename, so the group still names the (parked) member.
    expect(await c.listGroupMembers(group)).toEqual([emp]);
    // Updates and group removal find the parked entry.
    expect(await c.ensureAccount({ employeeId: emp, attributes: { title: 'Former clerk' }, enabled: false })).toMatchObject({ created: false });
    expect(await entry(parked)).toMatchObject({ title: 'Former clerk' });
    await c.removeFromGroup(emp, group);
    expect(await c.listGroupMembers(group)).toEqual([]);

    await c.setAccountEnabled(emp, true);
    await c.setAccountEnabled(emp, true);
    const enabled = await c.readAccount(emp);
    expect(enabled?.ref.toLowerCase()).toBe(active);
    expect(enabled?.enabled).toBe(true);
    expect(await entry(parked)).toBeNull();

    await c.deleteAccount(emp);
    expect(await c.readAccount(emp)).toBeNull();
  });

  it('move: a pre-provisioned account is created under disabledDN', async () => {
    const c = connector({ disable: { method: 'move', disabledDN: ldap.disabledDN } });
    const emp = id();
    const { ref, created } = await c.ensureAccount({ employeeId: emp, attributes: {}, enabled: false });
    expect(created).toBe(true);
    expect(ref.toLowerCase()).toBe(`uid=${emp},${ldap.disabledDN}`.toLowerCase());
    expect(await c.readAccount(emp)).toMatchObject({ enabled: false });
    await c.deleteAccount(emp);
    await c.deleteAccount(emp);
    expect(await entry(ref)).toBeNull();
  });
});

describe('LDAP connector: hostile employee ids', () => {
  it.each([
    ['a DN fragment', (u: string) => `${u}x,ou=groups`],
    ['a filter fragment', (u: string) => `${u}*)(uid=*`],
    ['a multi-valued RDN', (u: string) => `${u}+cn=admin`],
    ['escapes, quotes and edge spaces', (u: string) => ` #${u}\\"<>;= `],
  ])('escapes %s instead of injecting it', async (_label, make) => {
    const c = connector();
    const hostile = make(uniqueName('h'));
    const group = groupDn(uniqueName('hg'));
    const { ref, created } = await c.ensureAccount({ employeeId: hostile, attributes: { familyName: 'Hostile', managerId: hostile }, enabled: true });
    expect(created).toBe(true);

    // One new entry, directly under usersDN, whose uid is the id exactly.
    const e = await entry(ref);
    expect(e?.uid).toBe(hostile);
    expect(ref.toLowerCase().endsWith(`,${ldap.usersDN}`.toLowerCase())).toBe(true);
    const { searchEntries } = await admin.search(ldap.baseDN, { scope: 'sub', filter: `(sn=Hostile)`, attributes: ['uid'] });
    expect(searchEntries.filter((s) => s.uid === hostile)).toHaveLength(1);
    expect(searchEntries.every((s) => s.dn.toLowerCase().endsWith(`,${ldap.usersDN}`.toLowerCase()))).toBe(true);

    expect(await c.readAccount(hostile)).toMatchObject({ ref, enabled: true });
    expect(await c.readAccount(`${hostile}-other`)).toBeNull();

    await c.addToGroup(hostile, group);
    expect(await c.listGroupMembers(group)).toEqual([hostile]);
    await c.setAccountEnabled(hostile, false);
    expect(await c.readAccount(hostile)).toMatchObject({ enabled: false });
    await c.removeFromGroup(hostile, group);
    expect(await c.listGroupMembers(group)).toEqual([]);
    await c.deleteAccount(hostile);
    expect(await c.readAccount(hostile)).toBeNull();
  });

  it('a filter-looking id matches nobody else', async () => {
    const c = connector();
    const victim = id();
    await c.ensureAccount({ employeeId: victim, attributes: {}, enabled: true });
    expect(await c.readAccount('*')).toBeNull();
    await c.deleteAccount('*');
    await c.setAccountEnabled('*', false);
    expect(await c.readAccount(victim)).toMatchObject({ enabled: true });
  });
});

describe('LDAP connector: errors and connections', () => {
  it('a wrong bind password is a non-retryable error, and not an unavailable target', async () => {
    const c = connector({ bindPassword: 'wrong-password' });
    const err = await caught(c.readAccount(id()));
    expect(err).toMatchObject({ retryable: false, code: 'LDAP_49' });
    expect(err).not.toBeInstanceOf(TargetUnavailableError);
    expect(err.message).not.toContain('wrong-password');
    // A ping needs a bind too: a target that refuses our credentials is not "back".
    expect(await caught(c.ping())).toMatchObject({ code: 'LDAP_49' });
  });

  it('a ping answers when the directory does', async () => {
    await expect(connector().ping()).resolves.toBeUndefined();
  });

  it('a schema violation is a non-retryable error', async () => {
    const c = connector();
    const err = await caught(c.ensureAccount({ employeeId: id(), attributes: { email: 'ädä@example.com' }, enabled: true }));
    expect(err.retryable).toBe(false);
    expect(err.code).toMatch(/^LDAP_\d+$/);
  });

  it('an unreachable server is a retryable error: the target is unavailable, and a ping says so', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const { port } = s.address() as { port: number };
        s.close(() => resolve(port));
      });
    });
    const c = connector({ url: `ldap://127.0.0.1:${port}`, timeout: 2_000 });
    const err = await caught(c.readAccount(id()));
    expect(err.retryable).toBe(true);
    expect(err).toBeInstanceOf(TargetUnavailableError);
    expect(await caught(c.ping())).toBeInstanceOf(TargetUnavailableError);
  });

  it('a server that never answers times out, retryably', async () => {
    const sockets: Socket[] = [];
    const silent = createServer((s) => sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    try {
      const { port } = silent.address() as { port: number };
      const c = connector({ url: `ldap://127.0.0.1:${port}`, timeout: 300 });
      const err = await caught(c.readAccount(id()));
      expect(err).toMatchObject({ retryable: true, code: 'LDAP_TIMEOUT' });
      expect(err).toBeInstanceOf(TargetUnavailableError);
    } finally {
      sockets.forEach((s) => s.destroy());
      await new Promise((r) => silent.close(r));
    }
  });

  it('reconnects and binds again after the connection drops', async () => {
    // A TCP relay in front of slapd lets the test cut the connection.
    const target = new URL(ldap.url);
    const links: Socket[] = [];
    const relay: Server = createServer((inbound) => {
      const outbound = new Socket();
      outbound.connect(Number(target.port), target.hostname);
      inbound.pipe(outbound).pipe(inbound);
      const drop = () => {
        inbound.destroy();
        outbound.destroy();
      };
      inbound.on('error', drop).on('close', drop);
      outbound.on('error', drop).on('close', drop);
      links.push(inbound, outbound);
    });
    await new Promise<void>((r) => relay.listen(0, '127.0.0.1', () => r()));
    try {
      const { port } = relay.address() as { port: number };
      const c = connector({ url: `ldap://127.0.0.1:${port}` });
      const emp = id();
      await c.ensureAccount({ employeeId: emp, attributes: {}, enabled: true });
      links.forEach((s) => s.destroy());
      await new Promise((r) => setTimeout(r, 100));
      // A write proves the new connection is bound (anonymous writes are refused).
      expect(await c.ensureAccount({ employeeId: emp, attributes: { title: 'Reconnected' }, enabled: true })).toMatchObject({ created: false });
      expect(await entry(`uid=${emp},${ldap.usersDN}`)).toMatchObject({ title: 'Reconnected' });
    } finally {
      links.forEach((s) => s.destroy());
      await new Promise((r) => relay.close(r));
    }
  });

  it('a closed connector refuses work', async () => {
    const c = createLdapConnector(options());
    await c.readAccount(id());
    await c.close();
    await c.close();
    const err = await caught(c.readAccount(id()));
    expect(err).toMatchObject({ retryable: false, code: 'CLOSED' });
  });
});

describe('createConnectors', () => {
  it('builds one connector per target, honouring URL overrides', async () => {
    const base = { ...options(), url: 'ldap://127.0.0.1:1' };
    const connectors = createConnectors([base, { ...options(), id: 'other', url: undefined }], { directory: ldap.url, other: ldap.url });
    try {
      expect([...connectors.keys()]).toEqual(['directory', 'other']);
      expect(connectors.get('directory')!.targetId).toBe('directory');
      expect(await connectors.get('directory')!.readAccount(id())).toBeNull();
    } finally {
      await closeConnectors(connectors);
    }
    expect(() => createConnectors([{ ...options(), url: undefined }])).toThrow(/no url/);
  });
});
