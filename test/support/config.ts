// A config for tests: the global setup's slapd as the only target, and retry timings in
// milliseconds so failure paths finish in seconds.
import { parseConfig, type JmlConfig } from '../../domain/config.js';
import type { LdapServerInfo } from './env.js';

export function testConfig(ldap: LdapServerInfo, overrides: Record<string, unknown> = {}): JmlConfig {
  const group = (cn: string) => `cn=${cn},${ldap.groupsDN}`;
  return parseConfig({
    targets: [{ id: 'directory', type: 'ldap', url: ldap.url, bindDN: ldap.bindDN, bindPassword: ldap.bindPassword, baseDN: ldap.baseDN, usersDN: ldap.usersDN, groupsDN: ldap.groupsDN }],
    entitlements: [
      { id: 'directory-account', target: 'directory', kind: 'account' },
      { id: 'all-staff', target: 'directory', kind: 'group', ref: group('all-staff') },
      { id: 'employees', target: 'directory', kind: 'group', ref: group('employees') },
      { id: 'contractors', target: 'directory', kind: 'group', ref: group('contractors') },
      { id: 'engineering', target: 'directory', kind: 'group', ref: group('engineering') },
      { id: 'sales', target: 'directory', kind: 'group', ref: group('sales') },
    ],
    birthright: [
      { name: 'everyone', grant: ['directory-account', 'all-staff'] },
      { name: 'employees', when: { employmentType: 'employee' }, grant: ['employees'] },
      { name: 'contractors', when: { employmentType: 'contractor' }, grant: ['contractors'] },
      { name: 'engineering', when: { department: ['Engineering', 'Product Engineering'] }, grant: ['engineering'] },
      { name: 'sales', when: { department: 'Sales' }, grant: ['sales'] },
    ],
    retries: { initialInterval: '100ms', maximumInterval: '500ms', maximumAttempts: 3 },
    ...overrides,
  });
}
