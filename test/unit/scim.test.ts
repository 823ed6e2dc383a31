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
  readScimPath,
  SCIM_SCHEMAS,
  scimEffectiveAt,
  withoutNulls,
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
    expect(readScimPath(user, parseScimPath('emails[type eq "home"].value'))).toBe('ada.home@example.org');
    expect(readScimPath(user, parseScimPath(`${ENTERPRISE}:manager`))).toBe('E0001');
    expect(readScimPath(user, parseScimPath(`${SCIM_SCHEMAS.user}:name.givenName`))).toBe('Ada');
    expect(readScimPath(user, parseScimPath('addresses[primary eq true].country'))).toBe('GB');
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
  });
});

describe('employee ids are canonical in SCIM input', () => {
  it('folds externalId, the employeeNumber fallback and the manager reference', () => {
    expect(mapScimUser(entraUser({ externalId: 'e1001', [ENTERPRISE]: { manager: { value: 'e0001' } } }))).toMatchObject({ employeeId: 'E1001', attributes: { managerId: 'E0001' } });
    expect(mapScimUser(entraUser({ externalId: undefined, [ENTERPRISE]: { employeeNumber: 'n-77' } }))).toMatchObject({ employeeId: 'N-77' });
    expect(mapScimUser(entraUser({ externalId: 4711 }))).toMatchObject({ employeeId: '4711' });
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
