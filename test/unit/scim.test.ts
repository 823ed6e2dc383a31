// The pure half of SCIM bulk input: the envelope, the user mapping (default map, config
// overrides, custom extensions), the event decision and the idempotency key.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { scimEventId } from '../../api/routes/scim.js';
import { parseConfig } from '../../domain/config.js';
import {
  checkScimOperation,
  compileScimMapping,
  decideScimChange,
  DEFAULT_SCIM_CONFIG,
  mapScimUser,
  parseScimBulkRequest,
  parseScimPath,
  planScimBulk,
  readScimPath,
  SCIM_SCHEMAS,
  scimBulkIdResolver,
  scimEffectiveAt,
  scimUserLinks,
  withoutNulls,
  type ScimBulkIdResolver,
  type ScimBulkOutcome,
  type ScimMappedUser,
} from '../../domain/scim.js';

const ENTERPRISE = SCIM_SCHEMAS.enterpriseUser;
const CSV = 'urn:ietf:params:scim:schemas:extension:csv:1.0:User';

/** A user as Entra API-driven inbound provisioning sends it. */
function entraUser(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    schemas: [SCIM_SCHEMAS.user, ENTERPRISE, CSV],
    externalId: 'E1001',
    userName: 'ada.lovelace@example.com',
    name: { givenName: 'Ada', familyName: 'Lovelace' },
    displayName: 'Ada Lovelace',
    emails: [
      { value: 'ada.home@example.org', type: 'home' },
      { value: 'ada@example.com', type: 'work', primary: true },
    ],
    title: 'Engineer',
    active: true,
    addresses: [{ type: 'work', locality: 'London', country: 'GB', primary: true }],
    userType: 'employee',
    [ENTERPRISE]: {
      employeeNumber: 'N-77',
      department: 'Engineering',
      costCenter: 'CC-42',
      division: 'R&D',
      organization: 'Example Ltd',
      manager: { value: 'E0001', displayName: 'Grace Hopper' },
    },
    [CSV]: { HireDate: '2026-12-01', GradeLevel: 7 },
    ...overrides,
  };
}

/** mapScimUser's user, or the test fails with its error. */
function mapped(data: Record<string, unknown>, config = DEFAULT_SCIM_CONFIG): ScimMappedUser {
  const user = mapScimUser(data, config);
  if ('error' in user) throw new Error(user.error.detail);
  return user;
}

const scimConfig = (scim: Record<string, unknown>) =>
  parseConfig({ targets: [{ id: 'd', type: 'ldap', bindDN: 'cn=a,dc=x', bindPassword: 'x', baseDN: 'dc=x', usersDN: 'ou=p,dc=x', groupsDN: 'ou=g,dc=x' }], entitlements: [{ id: 'a', target: 'd', kind: 'account' }], scim }).scim;

describe('mapScimUser', () => {
  it('maps core, enterprise and custom extension attributes; the manager by externalId', () => {
    expect(mapScimUser(entraUser())).toEqual({
      employeeId: 'E1001',
      active: true,
      attributes: {
        userName: 'ada.lovelace@example.com',
        givenName: 'Ada',
        familyName: 'Lovelace',
        displayName: 'Ada Lovelace',
        email: 'ada@example.com',
        title: 'Engineer',
        department: 'Engineering',
        location: 'London',
        country: 'GB',
        employmentType: 'employee',
        managerId: 'E0001',
        costCenter: 'CC-42',
        division: 'R&D',
        organization: 'Example Ltd',
        hireDate: '2026-12-01',
        gradeLevel: 7,
      },
    });
  });

  it('falls back to the enterprise employeeNumber, and reads active:false as a leaver', () => {
    const user = mapScimUser(entraUser({ externalId: undefined, active: false }));
    expect(user).toMatchObject({ employeeId: 'N-77', active: false });
  });

  it('takes the primary email, else a work one, else the first; attribute names are case-insensitive', () => {
    const work = mapScimUser(entraUser({ emails: [{ value: 'home@x.org', type: 'home' }, { value: 'work@x.org', type: 'work' }] }));
    expect(work).toMatchObject({ attributes: { email: 'work@x.org' } });
    const first = mapScimUser(entraUser({ emails: [{ value: 'only@x.org' }] }));
    expect(first).toMatchObject({ attributes: { email: 'only@x.org' } });
    const shouting = mapScimUser({ ExternalId: 'E9', Name: { GivenName: 'A', FamilyName: 'B' } });
    expect(shouting).toEqual({ employeeId: 'E9', attributes: { givenName: 'A', familyName: 'B' } });
  });

  it('maps a user without familyName; hiring one is refused with a SCIM invalidValue naming the SCIM path', () => {
    expect(decideScimChange(undefined, mapped(entraUser({ name: { givenName: 'Ada' } })))).toEqual({
      action: 'refuse',
      error: { status: 400, scimType: 'invalidValue', detail: 'name.familyName is required' },
    });
    expect(decideScimChange(undefined, mapped(entraUser({ name: {} })))).toMatchObject({ error: { detail: 'name.givenName and name.familyName are required' } });
    // A leaver is never refused for a missing name.
    expect(mapScimUser({ externalId: 'E1', active: false })).toEqual({ employeeId: 'E1', active: false, attributes: {} });
  });

  it('refuses a missing or malformed employee id and a non-boolean active', () => {
    expect(mapScimUser(entraUser({ externalId: undefined, [ENTERPRISE]: {} }))).toMatchObject({ error: { detail: expect.stringMatching(/^externalId is required/) } });
    expect(mapScimUser(entraUser({ externalId: 'has space' }))).toMatchObject({ error: { scimType: 'invalidValue', detail: expect.stringMatching(/^externalId must be/) } });
    expect(mapScimUser(entraUser({ active: 'maybe' }))).toMatchObject({ error: { detail: 'active must be a boolean.' } });
    expect(mapScimUser(entraUser({ active: 'False' }))).toMatchObject({ active: false });
  });

  it('lets scim.attributeMap override, extend and drop mappings, and set required attributes', () => {
    const config = scimConfig({
      attributeMap: {
        [`${ENTERPRISE}:costCenter`]: 'costCentre',
        [`${CSV}:HireDate`]: 'startDate',
        'emails[type eq "home"].value': 'privateEmail',
        title: '',
        [`${ENTERPRISE}:employeeNumber`]: 'employeeId',
      },
      required: ['givenName', 'familyName', 'department'],
    });
    const user = mapScimUser(entraUser(), config);
    expect(user).toMatchObject({ employeeId: 'N-77', attributes: { costCentre: 'CC-42', startDate: '2026-12-01', privateEmail: 'ada.home@example.org', gradeLevel: 7 } });
    if ('error' in user) throw new Error('unexpected error');
    expect(user.attributes).not.toHaveProperty('costCenter');
    expect(user.attributes).not.toHaveProperty('hireDate');
    expect(user.attributes).not.toHaveProperty('title');

    const noDepartment = mapped(entraUser({ [ENTERPRISE]: { manager: { value: 'E0001' } } }), config);
    expect(decideScimChange(undefined, noDepartment, config)).toMatchObject({ action: 'refuse', error: { detail: `${ENTERPRISE}:department is required` } });
  });

  it('names a bad attributeMap path at compile time', () => {
    expect(() => compileScimMapping({ attributeMap: { 'emails[type ne "x"]': 'x' }, required: [] })).toThrow(/scim\.attributeMap: "emails\[type ne "x"\]" is not a SCIM attribute path/);
  });

  it('reads filtered and extension paths', () => {
    const user = entraUser();
    expect(readScimPath(user, parseScimPath('emails[type eq "home"].value'))).toEqual({ value: 'ada.home@example.org' });
    expect(readScimPath(user, parseScimPath(`${ENTERPRISE}:manager`))).toEqual({ value: 'E0001' });
    expect(readScimPath(user, parseScimPath(`${SCIM_SCHEMAS.user}:name.givenName`))).toEqual({ value: 'Ada' });
    expect(readScimPath(user, parseScimPath('addresses[primary eq true].country'))).toEqual({ value: 'GB' });
    expect(readScimPath(user, parseScimPath('emails[type eq "other"].value'))).toEqual({ value: undefined });
    expect(readScimPath(user, parseScimPath(`${CSV}:GradeLevel`))).toEqual({ value: 7 });
  });
});

describe('the BulkRequest envelope', () => {
  const op = (data: unknown = entraUser(), extra: Record<string, unknown> = {}) => ({ method: 'POST', bulkId: 'b1', path: '/Users', data, ...extra });

  it('accepts what Entra sends and reads failOnErrors', () => {
    const parsed = parseScimBulkRequest({ schemas: [SCIM_SCHEMAS.bulkRequest], Operations: [op()], failOnErrors: 2 });
    expect(parsed).toMatchObject({ ok: true, request: { failOnErrors: 2, Operations: [{ method: 'POST', bulkId: 'b1', path: '/Users' }] } });
  });

  it('answers more than 50 operations with 413 naming maxOperations, before anything else', () => {
    const parsed = parseScimBulkRequest({ schemas: [], Operations: Array.from({ length: 51 }, () => op()) });
    expect(parsed).toMatchObject({ ok: false, error: { status: 413, detail: expect.stringContaining('maxOperations is 50') } });
  });

  it('names the bad fields of a malformed envelope as invalidSyntax', () => {
    const parsed = parseScimBulkRequest({ schemas: ['urn:x'], Operations: [{ bulkId: 'b' }] });
    expect(parsed).toMatchObject({ ok: false, error: { status: 400, scimType: 'invalidSyntax' } });
    if (parsed.ok) return;
    expect(parsed.error.detail).toContain(`schemas: must include ${SCIM_SCHEMAS.bulkRequest}`);
    expect(parsed.error.detail).toContain('Operations[0].method: is required');
    expect(parseScimBulkRequest([])).toMatchObject({ ok: false, error: { detail: '(body): must be a SCIM BulkRequest object' } });
  });

  it('takes POST /Users only, per operation', () => {
    const parsed = parseScimBulkRequest({ schemas: [SCIM_SCHEMAS.bulkRequest], Operations: [op(), op(undefined, { method: 'PATCH', path: '/Users/E1' }), op(undefined, { path: '/Groups' }), op('nope')] });
    if (!parsed.ok) throw new Error(parsed.error.detail);
    const [ok, patch, groups, bad] = parsed.request.Operations.map(checkScimOperation);
    expect(ok).toMatchObject({ ok: true });
    expect(patch).toMatchObject({ ok: false, error: { status: 405 } });
    expect(groups).toMatchObject({ ok: false, error: { status: 404, scimType: 'invalidPath' } });
    expect(bad).toMatchObject({ ok: false, error: { status: 400, scimType: 'invalidSyntax' } });
  });
});

describe('decideScimChange', () => {
  const user = (active: boolean, attributes: Record<string, unknown> = { givenName: 'Ada', familyName: 'Lovelace', title: 'Engineer' }): ScimMappedUser => ({ employeeId: 'E1', active, attributes });

  it('hires the unknown, ignores the unknown inactive', () => {
    expect(decideScimChange(undefined, user(true))).toEqual({ action: 'event', type: 'hire', attributes: user(true).attributes });
    expect(decideScimChange(undefined, user(false))).toMatchObject({ action: 'none', outcome: 'ignored' });
  });

  it('updates only what changed, or nothing', () => {
    const current = { status: 'active' as const, attributes: { givenName: 'Ada', familyName: 'Lovelace', title: 'Intern', extra: 'kept' } };
    expect(decideScimChange(current, user(true))).toEqual({ action: 'event', type: 'update', attributes: { title: 'Engineer' } });
    expect(decideScimChange({ ...current, attributes: { ...user(true).attributes } }, user(true))).toMatchObject({ action: 'none', outcome: 'unchanged' });
  });

  it('terminates the active, on leave and pre-hire; rehires the terminated and rescinded', () => {
    for (const status of ['active', 'on_leave', 'pre_hire'] as const) {
      expect(decideScimChange({ status, attributes: user(false).attributes }, user(false))).toMatchObject({ action: 'event', type: 'terminate' });
    }
    for (const status of ['terminated', 'rescinded'] as const) {
      expect(decideScimChange({ status, attributes: {} }, user(true))).toMatchObject({ action: 'event', type: 'rehire' });
      expect(decideScimChange({ status, attributes: user(false).attributes }, user(false))).toMatchObject({ action: 'none', outcome: 'unchanged' });
    }
  });

  it('dates a hire at a future hireDate or startDate; everything else now', () => {
    const now = new Date('2026-06-01T00:00:00Z');
    expect(scimEffectiveAt('hire', { hireDate: '2026-12-01' }, now).toISOString()).toBe('2026-12-01T00:00:00.000Z');
    expect(scimEffectiveAt('hire', { startDate: '2026-07-01T09:00:00Z' }, now).toISOString()).toBe('2026-07-01T09:00:00.000Z');
    expect(scimEffectiveAt('hire', { hireDate: '2020-01-01' }, now)).toBe(now);
    expect(scimEffectiveAt('hire', { hireDate: 'soon' }, now)).toBe(now);
    expect(scimEffectiveAt('update', { hireDate: '2026-12-01' }, now)).toBe(now);
  });
});

describe('the idempotency key', () => {
  const key = (overrides: Partial<Parameters<typeof scimEventId>[0]> = {}) =>
    scimEventId({ employeeId: 'E1', type: 'hire', active: true, attributes: { givenName: 'Ada', familyName: 'Lovelace', emails: ['a', 'b'] }, basis: 'new', ...overrides });

  it('is stable for the same content, whatever the key order', () => {
    expect(key()).toMatch(/^scim:[0-9a-f]{64}$/);
    expect(key({ attributes: { emails: ['a', 'b'], familyName: 'Lovelace', givenName: 'Ada' } })).toBe(key());
  });

  it('changes with the content, active, the event type and the state decided against', () => {
    const first = key();
    expect(key({ attributes: { givenName: 'Ada', familyName: 'Byron', emails: ['a', 'b'] } })).not.toBe(first);
    expect(key({ attributes: { givenName: 'Ada', familyName: 'Lovelace', emails: ['b', 'a'] } })).not.toBe(first);
    expect(key({ active: false })).not.toBe(first);
    expect(key({ employeeId: 'E2' })).not.toBe(first);
    expect(key({ type: 'rehire', basis: 'terminated@2026-01-01T00:00:00.000Z' })).not.toBe(first);
    expect(key({ basis: 'active@2026-01-01T00:00:00.000Z' })).not.toBe(first);
  });

  it('maps the same user to the same key via mapScimUser', () => {
    const a = mapScimUser(entraUser(), DEFAULT_SCIM_CONFIG);
    const b = mapScimUser(JSON.parse(JSON.stringify(entraUser())) as Record<string, unknown>, DEFAULT_SCIM_CONFIG);
    if ('error' in a || 'error' in b) throw new Error('unexpected error');
    expect(scimEventId({ ...a, type: 'hire', basis: 'new' })).toBe(scimEventId({ ...b, type: 'hire', basis: 'new' }));
  });
});

/**
 * The shape of Microsoft Graph's documented bulkUpload requests (API-driven inbound
 * provisioning: core and enterprise User, a custom schema namespace, a partial update),
 * each with `"failOnErrors": null`, and nulls where RFC 7643 allows them: core and
 * sub-attributes, a whole multi-valued attribute, an item of one, the enterprise
 * department and manager, a manager's value, a custom extension attribute, an operation's version.
 */
const entraBulkUpload = () => JSON.parse(readFileSync(path.join(import.meta.dirname, '../fixtures/scim/entra-bulk-upload.json'), 'utf8')) as unknown;

describe('null in SCIM input means unassigned (RFC 7643 section 2.5)', () => {
  it("accepts Microsoft's documented bulkUpload shape with failOnErrors null", () => {
    const parsed = parseScimBulkRequest(entraBulkUpload());
    if (!parsed.ok) throw new Error(parsed.error.detail);
    expect(parsed.request.failOnErrors).toBeUndefined();
    expect(parsed.request.Operations.map((op) => [op.bulkId, op.version])).toEqual([
      ['880101', undefined],
      ['880102', undefined],
      ['880103', undefined],
    ]);
    const users = parsed.request.Operations.map((op) => {
      const checked = checkScimOperation(op);
      if (!checked.ok) throw new Error(checked.error.detail);
      return mapScimUser(checked.data);
    });
    expect(users).toEqual([
      {
        employeeId: '880101',
        active: true,
        attributes: {
          userName: 'mhamilton@example.com',
          givenName: 'Margaret',
          familyName: 'Hamilton',
          displayName: 'Margaret Hamilton',
          email: 'mhamilton@example.com',
          title: 'Director of Software Engineering',
          department: 'Software Engineering',
          location: 'Cambridge',
          country: 'US',
          employmentType: 'Employee',
          costCenter: '5100',
          organization: 'Example Labs',
          jobCode: 'SE-1',
        },
      },
      {
        employeeId: '880102',
        active: true,
        attributes: {
          userName: 'dgraham@example.com',
          givenName: 'Dorothy',
          familyName: 'Graham',
          displayName: 'Dorothy Graham',
          email: 'dgraham@example.com',
          employmentType: 'Employee',
          managerId: '880101',
          organization: 'Example Labs',
        },
      },
      { employeeId: '880103', active: false, attributes: { department: 'Operations' } },
    ]);
    expect(JSON.stringify(users)).not.toMatch(/null/);

    // Unassigned never clears what is stored (Entra sends partial users): Dorothy's title
    // and department stay; her update carries only what has a new value.
    const dorothy = users[1]!;
    if ('error' in dorothy) throw new Error(dorothy.error.detail);
    const stored = { ...dorothy.attributes, title: 'Engineer', department: 'Software Engineering', managerId: 'E0001' };
    expect(decideScimChange({ status: 'active', attributes: stored }, dorothy)).toEqual({ action: 'event', type: 'update', attributes: { managerId: '880101' } });
  });

  it('treats null as absent in every field of the envelope and of an operation', () => {
    const parsed = parseScimBulkRequest({ schemas: [SCIM_SCHEMAS.bulkRequest, null], Operations: [null, { method: 'POST', bulkId: 'b1', path: '/Users', version: null, data: entraUser({ schemas: null }) }], failOnErrors: null });
    if (!parsed.ok) throw new Error(parsed.error.detail);
    expect(parsed.request).toEqual({ schemas: [SCIM_SCHEMAS.bulkRequest], Operations: [expect.objectContaining({ bulkId: 'b1' })] });
    expect(checkScimOperation(parsed.request.Operations[0]!)).toMatchObject({ ok: true });
    // A null that stands for something required is missing, and named as such, not as null.
    const noBulkId = parseScimBulkRequest({ schemas: [SCIM_SCHEMAS.bulkRequest], Operations: [{ method: 'POST', bulkId: null, path: '/Users', data: null }] });
    if (!noBulkId.ok) throw new Error(noBulkId.error.detail);
    expect(checkScimOperation(noBulkId.request.Operations[0]!)).toMatchObject({ ok: false, error: { status: 400, detail: 'bulkId is required for POST.' } });
  });

  it('treats null as absent in user attributes at any depth', () => {
    const user = mapScimUser(
      entraUser({
        title: null,
        displayName: null,
        name: { givenName: 'Ada', familyName: 'Lovelace', middleName: null },
        emails: [null, { value: null, type: 'home' }, { value: 'ada@example.com', type: 'work', primary: null }],
        addresses: null,
        userType: null,
        active: null,
        [ENTERPRISE]: { employeeNumber: null, department: null, costCenter: 'CC-42', manager: { value: null, displayName: 'Grace Hopper' } },
        [CSV]: { HireDate: null, GradeLevel: 7, Badge: { colour: null, number: 12 } },
      }),
    );
    expect(user).toEqual({
      employeeId: 'E1001',
      attributes: { userName: 'ada.lovelace@example.com', givenName: 'Ada', familyName: 'Lovelace', email: 'ada@example.com', costCenter: 'CC-42', gradeLevel: 7, badge: { number: 12 } },
    });
    expect(mapScimUser(entraUser({ [ENTERPRISE]: null }))).toMatchObject({ employeeId: 'E1001', attributes: expect.not.objectContaining({ managerId: expect.anything() }) });
    expect(mapScimUser(entraUser({ [ENTERPRISE]: { manager: null } }))).toMatchObject({ employeeId: 'E1001' });
    // An employee id sent as null is missing.
    expect(mapScimUser(entraUser({ externalId: null, [ENTERPRISE]: { employeeNumber: null } }))).toMatchObject({ error: { status: 400, detail: expect.stringMatching(/^externalId is required/) } });
  });

  it('withoutNulls drops null members and items and keeps everything else', () => {
    expect(withoutNulls({ a: null, b: [1, null, { c: null, d: false }], e: '', f: 0 })).toEqual({ b: [1, { d: false }], e: '', f: 0 });
    // A `__proto__` member stays a member; it never becomes the copy's prototype.
    const copy = withoutNulls(JSON.parse('{"__proto__":{"polluted":true},"x":1}')) as Record<string, unknown>;
    expect(Object.getPrototypeOf(copy)).toBe(Object.prototype);
    expect(Object.keys(copy)).toEqual(['__proto__', 'x']);
    expect((copy as { polluted?: boolean }).polluted).toBeUndefined();
  });

  it('maps a user nested 100,000 deep without exhausting the stack: that attribute is refused', () => {
    let deep: unknown = 'bottom';
    for (let i = 0; i < 100_000; i += 1) deep = i % 2 ? { next: deep } : [deep, null];
    expect(() => withoutNulls(deep)).not.toThrow();
    expect(mapScimUser(entraUser({ [CSV]: { Deep: deep } }))).toEqual({ error: { status: 400, scimType: 'invalidValue', detail: `${CSV}:Deep must be nested at most 8 levels deep` } });
  });
});

describe('employee ids are canonical in SCIM input', () => {
  it('folds externalId, the employeeNumber fallback and the manager reference', () => {
    expect(mapScimUser(entraUser({ externalId: 'e1001', [ENTERPRISE]: { manager: { value: 'e0001' } } }))).toMatchObject({ employeeId: 'E1001', attributes: { managerId: 'E0001' } });
    expect(mapScimUser(entraUser({ externalId: undefined, [ENTERPRISE]: { employeeNumber: 'n-77' } }))).toMatchObject({ employeeId: 'N-77' });
  });

  it('takes an id only as a string, as the webhook does: a number is refused, not converted', () => {
    expect(mapScimUser(entraUser({ externalId: '4711' }))).toMatchObject({ employeeId: '4711' });
    expect(mapScimUser(entraUser({ externalId: 4711 }))).toEqual({ error: { status: 400, scimType: 'invalidValue', detail: 'externalId must be a string' } });
    expect(mapScimUser(entraUser({ [ENTERPRISE]: { manager: { value: 1 } } }))).toMatchObject({ error: { detail: `${ENTERPRISE}:manager.value must be a string` } });
  });

  it('refuses a padded id and a malformed manager id, naming the SCIM path', () => {
    expect(mapScimUser(entraUser({ externalId: ' E1001 ' }))).toMatchObject({ error: { status: 400, scimType: 'invalidValue', detail: 'externalId must be 1..64 characters of letters, digits, . _ -' } });
    expect(mapScimUser(entraUser({ [ENTERPRISE]: { manager: { value: 'Grace Hopper' } } }))).toMatchObject({
      error: { status: 400, scimType: 'invalidValue', detail: `${ENTERPRISE}:manager.value must be 1..64 characters of letters, digits, . _ -` },
    });
  });

  it('gives `e1001` and `E1001` the same event id', () => {
    const lower = mapScimUser(entraUser({ externalId: 'e1001', [ENTERPRISE]: { manager: { value: 'e0001' } } }));
    const upper = mapScimUser(entraUser({ externalId: 'E1001', [ENTERPRISE]: { manager: { value: 'E0001' } } }));
    if ('error' in lower || 'error' in upper) throw new Error('unexpected error');
    expect(scimEventId({ ...lower, type: 'hire', basis: 'new' })).toBe(scimEventId({ ...upper, type: 'hire', basis: 'new' }));
  });
});

/**
 * Microsoft's documented bulkUpload update ("Example 3") sends only externalId, active and
 * the attribute that changed; its request that clears an attribute sends no active at all.
 * Absent or null active leaves the person's status as it is, and only a hire needs names.
 */
describe('a partial user, as Entra sends an update', () => {
  const partial = (extra: Record<string, unknown> = {}) => ({ schemas: [SCIM_SCHEMAS.user, ENTERPRISE], externalId: 'E1001', [ENTERPRISE]: { department: 'Tour Ops' }, ...extra });
  const stored = { givenName: 'Ada', familyName: 'Lovelace', department: 'Engineering' };
  const departmentUpdate = { action: 'event', type: 'update', attributes: { department: 'Tour Ops' } };

  it('maps without names; an absent or null active is not said at all', () => {
    expect(mapScimUser(partial())).toStrictEqual({ employeeId: 'E1001', attributes: { department: 'Tour Ops' } });
    expect(mapScimUser(partial({ active: null }))).toStrictEqual({ employeeId: 'E1001', attributes: { department: 'Tour Ops' } });
    expect(mapScimUser(partial({ active: true }))).toStrictEqual({ employeeId: 'E1001', active: true, attributes: { department: 'Tour Ops' } });
  });

  it('never rehires a terminated or rescinded person: an update of what changed, or nothing', () => {
    for (const status of ['terminated', 'rescinded'] as const) {
      const named = mapped(partial({ name: { givenName: 'Ada', familyName: 'Lovelace' } }));
      for (const user of [mapped(partial()), mapped(partial({ active: null })), named]) {
        expect(decideScimChange({ status, attributes: stored }, user)).toEqual(departmentUpdate);
        expect(decideScimChange({ status, attributes: { ...stored, department: 'Tour Ops' } }, user)).toMatchObject({ action: 'none', outcome: 'unchanged' });
      }
    }
  });

  it('updates an active, on-leave or pre-hire person with only what was sent, never terminates, never asks for names', () => {
    for (const status of ['active', 'on_leave', 'pre_hire'] as const) {
      for (const user of [mapped(partial()), mapped(partial({ active: null })), mapped(partial({ active: true }))]) {
        expect(decideScimChange({ status, attributes: stored }, user)).toEqual(departmentUpdate);
      }
    }
  });

  it('still rehires a terminated person sent as active: true, without names (the same record reopens)', () => {
    expect(decideScimChange({ status: 'terminated', attributes: stored }, mapped(partial({ active: true })))).toEqual({ action: 'event', type: 'rehire', attributes: { department: 'Tour Ops' } });
  });

  it('hires an unknown person only with the required attributes, else refuses naming their SCIM paths; ignores one sent inactive', () => {
    for (const user of [mapped(partial()), mapped(partial({ active: null })), mapped(partial({ active: true }))]) {
      expect(decideScimChange(undefined, user)).toEqual({ action: 'refuse', error: { status: 400, scimType: 'invalidValue', detail: 'name.givenName and name.familyName are required' } });
    }
    expect(decideScimChange(undefined, mapped(partial({ name: { givenName: 'Ada', familyName: 'Lovelace' } })))).toEqual({
      action: 'event',
      type: 'hire',
      attributes: { givenName: 'Ada', familyName: 'Lovelace', department: 'Tour Ops' },
    });
    expect(decideScimChange(undefined, mapped(partial({ active: false })))).toMatchObject({ action: 'none', outcome: 'ignored' });
  });

  it('gives an absent and a null active one event id', () => {
    const key = (user: ScimMappedUser) => scimEventId({ ...user, type: 'update', basis: 'terminated@2026-01-01T00:00:00.000Z' });
    expect(key(mapped(partial({ active: null })))).toBe(key(mapped(partial())));
    expect(key(mapped(partial({ active: true })))).not.toBe(key(mapped(partial())));
  });
});

describe('a leaver sent inactive again', () => {
  const leaver = { status: 'terminated' as const, attributes: { givenName: 'Ada', familyName: 'Lovelace', department: 'Engineering' } };
  it('changes attributes only when some changed, and nothing otherwise', () => {
    expect(decideScimChange(leaver, { employeeId: 'E1', active: false, attributes: { department: 'Sales' } })).toEqual({ action: 'event', type: 'update', attributes: { department: 'Sales' } });
    expect(decideScimChange(leaver, { employeeId: 'E1', active: false, attributes: { department: 'Engineering' } })).toMatchObject({ action: 'none', outcome: 'unchanged' });
  });
});

/** mapScimUser's error detail, or the test fails with the user it mapped. */
function refused(data: Record<string, unknown>, resolve?: ScimBulkIdResolver): string {
  const user = mapScimUser(data, DEFAULT_SCIM_CONFIG, resolve);
  if (!('error' in user)) throw new Error(`mapped: ${JSON.stringify(user)}`);
  expect(user.error).toMatchObject({ status: 400, scimType: 'invalidValue' });
  return user.error.detail;
}

describe('the one attribute schema (domain/attributes.ts): nothing trimmed, nothing coerced', () => {
  it('refuses padded text naming the SCIM path; keeps unpadded text exactly as sent', () => {
    expect(refused(entraUser({ name: { givenName: ' Ada ', familyName: 'Lovelace' } }))).toBe('name.givenName must not start or end with white space');
    expect(refused(entraUser({ title: 'Engineer\n' }))).toBe('title must not contain control characters, NUL or bidirectional overrides');
    expect(refused(entraUser({ userName: ' ada@example.com' }))).toBe('userName must not start or end with white space');
    // A value of spaces is padding, not an empty field.
    expect(refused(entraUser({ title: '   ' }))).toBe('title must not start or end with white space');
    expect(refused(entraUser({ [CSV]: { CostCode: 'C1 ' } }))).toBe(`${CSV}:CostCode must not start or end with white space`);
    // An empty string is absent, as null is.
    expect(mapped(entraUser({ title: '' })).attributes).not.toHaveProperty('title');
    expect(mapped(entraUser({ title: 'Senior  Engineer' })).attributes.title).toBe('Senior  Engineer');
  });

  it('refuses control characters, NUL and bidirectional overrides in any attribute', () => {
    const rule = 'must not contain control characters, NUL or bidirectional overrides';
    expect(refused(entraUser({ displayName: 'Ada\u0000Lovelace' }))).toBe(`displayName ${rule}`);
    expect(refused(entraUser({ name: { givenName: 'Ada', familyName: 'Love\u001b[31mlace' } }))).toBe(`name.familyName ${rule}`);
    expect(refused(entraUser({ title: 'Engineer\u202Egnp.exe' }))).toBe(`title ${rule}`);
    expect(refused(entraUser({ [ENTERPRISE]: { department: 'R\u0085D' } }))).toBe(`${ENTERPRISE}:department ${rule}`);
    expect(refused(entraUser({ [CSV]: { Badge: { number: 'B\u0000' } } }))).toBe(`${CSV}:Badge ${rule}`);
  });

  it('takes text only in Unicode NFC, and at most 256 characters', () => {
    expect(refused(entraUser({ name: { givenName: 'Rene\u0301', familyName: 'Lovelace' } }))).toBe('name.givenName must be in Unicode normalisation form NFC');
    expect(mapped(entraUser({ name: { givenName: 'Ren\u00e9', familyName: 'Lovelace' } })).attributes.givenName).toBe('Ren\u00e9');
    expect(refused(entraUser({ title: 'x'.repeat(257) }))).toBe('title must be at most 256 characters');
    expect(mapped(entraUser({ title: 'x'.repeat(256) })).attributes.title).toHaveLength(256);
    expect(refused(entraUser({ emails: [{ value: 'not an address', primary: true }] }))).toBe('emails.value must be an e-mail address');
  });

  it('names every bad attribute in one error', () => {
    const detail = refused(entraUser({ title: ' Boss', displayName: 'A\u0007', [ENTERPRISE]: { department: 'x'.repeat(300) } }));
    expect(detail.split('; ').sort()).toEqual(['displayName must not contain control characters, NUL or bidirectional overrides', `${ENTERPRISE}:department must be at most 256 characters`, 'title must not start or end with white space'].sort());
  });

  it('refuses "true" padded as active, and any other non-boolean', () => {
    expect(refused(entraUser({ active: ' true' }))).toBe('active must be a boolean.');
    expect(refused(entraUser({ active: [true] }))).toBe('active must be a boolean.');
    expect(refused(entraUser({ active: 1 }))).toBe('active must be a boolean.');
  });
});

describe('a list where SCIM takes one value', () => {
  it('refuses a list for a single-valued core attribute, naming it, instead of reading the first item', () => {
    expect(refused(entraUser({ title: ['Boss', 'Janitor'] }))).toBe('title must be a single value, not a list');
    expect(refused(entraUser({ userName: ['ada@example.com', 'eve@example.com'] }))).toBe('userName must be a single value, not a list');
    expect(refused(entraUser({ displayName: [] }))).toBe('displayName must be a single value, not a list');
    expect(refused(entraUser({ name: [{ givenName: 'Ada', familyName: 'Lovelace' }] }))).toBe('name must be a single value, not a list');
    expect(refused(entraUser({ [ENTERPRISE]: { department: ['Engineering', 'Sales'] } }))).toBe(`${ENTERPRISE}:department must be a single value, not a list`);
    expect(refused(entraUser({ [ENTERPRISE]: { manager: [{ value: 'E0001' }, { value: 'E0002' }] } }))).toBe(`${ENTERPRISE}:manager must be a single value, not a list`);
    expect(refused(entraUser({ [ENTERPRISE]: { manager: { value: ['E0001', 'E0002'] } } }))).toBe(`${ENTERPRISE}:manager.value must be a single value, not a list`);
  });

  it('refuses an externalId list: never hires the first item', () => {
    const user = mapScimUser(entraUser({ externalId: ['X', 'E1001'] }));
    expect(user).toEqual({ error: { status: 400, scimType: 'invalidValue', detail: 'externalId must be a single value, not a list' } });
    // Not an employeeNumber fallback either: the id sent is wrong, not missing.
    expect(refused(entraUser({ externalId: ['E1001'] }))).toBe('externalId must be a single value, not a list');
    expect(refused(entraUser({ externalId: undefined, [ENTERPRISE]: { employeeNumber: ['N-77'] } }))).toBe(`${ENTERPRISE}:employeeNumber must be a single value, not a list`);
  });

  it('refuses an object or a number where a string is expected, and a string where an object is', () => {
    expect(refused(entraUser({ title: { value: 'Boss' } }))).toBe('title must be a string, not an object');
    expect(refused(entraUser({ userType: 3 }))).toBe('userType must be a string');
    expect(refused(entraUser({ name: 'Ada Lovelace' }))).toBe('name must be an object');
    expect(refused(entraUser({ emails: ['ada@example.com'] }))).toBe('emails must be a list of objects');
    expect(refused(entraUser({ [ENTERPRISE]: 'Engineering' }))).toBe(`${ENTERPRISE} must be an object`);
    expect(refused(entraUser({ [CSV]: ['2026-12-01'] }))).toBe(`${CSV} must be an object`);
  });

  it('still reads multi-valued attributes by their preferred item: primary, else work, else first', () => {
    const user = mapped(
      entraUser({
        emails: [{ value: 'first@x.org' }, { value: 'work@x.org', type: 'work' }, { value: 'primary@x.org', primary: true }],
        addresses: [{ locality: 'Paris', country: 'FR' }, { type: 'work', locality: 'London', country: 'GB' }],
        phoneNumbers: [{ value: '+44 1', primary: true }],
      }),
    );
    expect(user.attributes).toMatchObject({ email: 'primary@x.org', location: 'London', country: 'GB' });
  });

  it('keeps a custom extension list as sent, and refuses it where the identity attribute takes a string', () => {
    expect(mapped(entraUser({ [CSV]: { Languages: ['en', 'fr'] } })).attributes.languages).toEqual(['en', 'fr']);
    const config = scimConfig({ attributeMap: { [`${CSV}:JobTitle`]: 'title' } });
    const user = mapScimUser(entraUser({ [CSV]: { JobTitle: ['Boss', 'Janitor'] } }), config);
    expect(user).toMatchObject({ error: { status: 400, detail: `${CSV}:JobTitle must be a string` } });
  });
});

describe('bulkId references (RFC 7644 section 3.7.2)', () => {
  const boss = (bulkId: string) => entraUser({ [ENTERPRISE]: { manager: { value: `bulkId:${bulkId}` } } });
  const resolveTo =
    (ids: Record<string, string>): ScimBulkIdResolver =>
    (bulkId) =>
      ids[bulkId] ? { employeeId: ids[bulkId] } : { problem: 'refers to nothing here' };

  it('resolves a manager reference to the referenced person, never keeping "bulkId:"', () => {
    const user = mapScimUser(boss('c2'), DEFAULT_SCIM_CONFIG, resolveTo({ c2: 'E0002' }));
    expect(user).toMatchObject({ employeeId: 'E1001', attributes: { managerId: 'E0002' } });
    expect(JSON.stringify(user)).not.toContain('bulkId');
    // A reference in a custom extension, at any depth, is resolved too.
    const mentor = mapScimUser(entraUser({ [CSV]: { Mentor: { value: 'bulkId:c2' } } }), DEFAULT_SCIM_CONFIG, resolveTo({ c2: 'E0002' }));
    expect(mentor).toMatchObject({ attributes: { mentor: { value: 'E0002' } } });
    const buddies = mapScimUser(entraUser({ [CSV]: { Buddies: [{ id: 'bulkId:c2' }] } }), DEFAULT_SCIM_CONFIG, resolveTo({ c2: 'E0002' }));
    expect(buddies).toMatchObject({ attributes: { buddies: [{ id: 'E0002' }] } });
  });

  it('refuses a reference that does not resolve, naming the attribute, and nothing else about it', () => {
    expect(refused(boss('c9'), resolveTo({}))).toBe(`${ENTERPRISE}:manager.value refers to nothing here`);
    // Outside a bulk request (no resolver) no bulkId resolves.
    expect(refused(boss('c2'))).toBe(`${ENTERPRISE}:manager.value refers to a bulkId that no operation of this request has`);
  });

  it('reports what a user names before mapping: its person and the bulkIds it refers to', () => {
    expect(scimUserLinks(boss('c2'))).toEqual({ employeeId: 'E1001', references: ['c2'] });
    expect(scimUserLinks(entraUser({ externalId: 'e7', [CSV]: { Mentor: 'bulkId:c3', Buddy: { value: 'bulkId:c3' } } }))).toEqual({ employeeId: 'E7', references: ['c3'] });
    // An id refused for its shape names nobody (not the employeeNumber fallback either).
    expect(scimUserLinks(entraUser({ externalId: ['X'] }))).toEqual({ employeeId: null, references: [] });
  });

  const link = (bulkId: string | undefined, ...references: string[]) => ({ ...(bulkId === undefined ? {} : { bulkId }), references });

  it('orders an operation after the ones it refers to, otherwise keeps request order', () => {
    // c1 -> c3 -> c4; c2 refers to nothing.
    expect(planScimBulk([link('c1', 'c3'), link('c2'), link('c3', 'c4'), link('c4')])).toEqual({ order: [1, 3, 2, 0], cyclic: new Set() });
    expect(planScimBulk([link('a'), link('b', 'a'), link('c', 'b')])).toEqual({ order: [0, 1, 2], cyclic: new Set() });
    // An unknown or ambiguous bulkId orders nothing.
    expect(planScimBulk([link('a', 'zz'), link('b'), link('b'), link('c', 'b')]).order).toEqual([0, 1, 2, 3]);
  });

  it('finds cycles, a self-reference included, and orders what refers to a cycle after it', () => {
    const plan = planScimBulk([link('x', 'a'), link('a', 'b'), link('b', 'a'), link('s', 's'), link('d', 'e'), link('e'), link('c', 'c2'), link('c2', 'c', 'e')]);
    expect([...plan.cyclic].sort()).toEqual([1, 2, 3, 6, 7]);
    expect(plan.order).toHaveLength(8);
    const position = (index: number) => plan.order.indexOf(index);
    expect(position(0)).toBeGreaterThan(position(1));
    expect(position(4)).toBeGreaterThan(position(5));
    // A cyclic operation still comes after what it refers to off the cycle.
    expect(position(7)).toBeGreaterThan(position(5));
  });

  it('resolves to the referenced operation\'s person; unknown, ambiguous, cyclic and failed references are problems', () => {
    const links = [link('boss'), link('report', 'boss'), link('a', 'b'), link('b', 'a'), link('dup'), link('dup'), link('bad'), link('self', 'self')];
    const plan = planScimBulk(links);
    const outcomes = new Map<number, ScimBulkOutcome>([
      [0, { ok: true, employeeId: 'E0001' }],
      [6, { ok: false }],
    ]);
    const resolve = (from: number, bulkId: string) => scimBulkIdResolver(links, plan, outcomes, from)(bulkId);
    expect(resolve(1, 'boss')).toEqual({ employeeId: 'E0001' });
    expect(resolve(1, 'nobody')).toEqual({ problem: 'refers to a bulkId that no operation of this request has' });
    expect(resolve(1, 'dup')).toEqual({ problem: 'refers to bulkId "dup", which more than one operation of this request has' });
    expect(resolve(2, 'b')).toEqual({ problem: 'refers to bulkId "b" on a cycle of bulkId references' });
    expect(resolve(7, 'self')).toEqual({ problem: 'refers to bulkId "self" on a cycle of bulkId references' });
    expect(resolve(1, 'bad')).toEqual({ problem: 'refers to bulkId "bad", whose operation failed' });
    // An operation outside the cycle that refers into it: the referenced operation failed.
    expect(resolve(1, 'a')).toEqual({ problem: 'refers to bulkId "a", whose operation failed' });
  });
});
