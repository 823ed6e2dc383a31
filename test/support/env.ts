// What the global setup (test/global-setup.ts) provides to every test file: one Temporal
// dev server, one fresh migrated Postgres database, a Redis key prefix and one slapd.
import { canonicalEmployeeId } from '../../domain/employee-id.js';
import { inject } from 'vitest';

export interface LdapServerInfo {
  url: string;
  bindDN: string;
  bindPassword: string;
  baseDN: string;
  usersDN: string;
  groupsDN: string;
  disabledDN: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    databaseUrl: string;
    redisUrl: string;
    redisPrefix: string;
    ldap: LdapServerInfo;
  }
}

export const testEnv = {
  get temporalAddress() {
    return inject('temporalAddress');
  },
  get databaseUrl() {
    return inject('databaseUrl');
  },
  get redisUrl() {
    return inject('redisUrl');
  },
  get redisPrefix() {
    return inject('redisPrefix');
  },
  get ldap() {
    return inject('ldap');
  },
};

/** Unique names per test, so files that run in parallel never share a queue or workflow. */
/** A fresh employee id in its canonical spelling (every input folds ids; see domain/employee-id.ts). */
export function uniqueEmployeeId(prefix = 'E'): string {
  return canonicalEmployeeId(uniqueName(prefix));
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}
