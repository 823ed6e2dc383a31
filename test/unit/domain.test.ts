import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { evaluateBirthright } from '../../domain/birthright.js';
import { ConfigError, parseConfig, type BirthrightRule } from '../../domain/config.js';
import { parseDuration, formatDuration } from '../../domain/duration.js';
import { canMoveGrant, canMoveRequest } from '../../domain/grant-status.js';

const example = YAML.parse(readFileSync(new URL('../../jml.config.example.yaml', import.meta.url), 'utf8'));
const env = { JML_WEBHOOK_SECRET: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', LDAP_BIND_PASSWORD: 'secret' };

describe('durations', () => {
  it('parses every unit and formats back', () => {
    expect(parseDuration('90s')).toBe(90_000);
    expect(parseDuration('15m')).toBe(900_000);
    expect(parseDuration('4h')).toBe(14_400_000);
    expect(parseDuration('30d')).toBe(2_592_000_000);
    expect(parseDuration('0')).toBe(0);
    expect(formatDuration(14_400_000)).toBe('4h');
  });
  it('rejects what is not a duration', () => {
    expect(() => parseDuration('4 hours')).toThrow(/expected a duration/);
    expect(() => parseDuration('-1s')).toThrow();
  });
});

describe('config', () => {
  it('accepts the shipped example and substitutes ${ENV}', () => {
    const config = parseConfig(example, env);
    expect(config.webhook.secrets).toBe(env.JML_WEBHOOK_SECRET);
    expect(config.targets[0]).toMatchObject({ type: 'ldap', bindPassword: 'secret' });
    expect(config.lifecycle.moverGracePeriod).toBe(7 * 86_400_000);
    expect(config.entitlements.find((e) => e.id === 'prod-admin')?.jit?.maxDuration).toBe(4 * 3_600_000);
  });

  it('names the path of a bad field', () => {
    const bad = structuredClone(example);
    bad.targets[0].url = 'http://not-ldap';
    expect(() => parseConfig(bad, env)).toThrow('targets[0].url: expected an ldap:// URL');
  });

  it('names a missing environment variable and the field that needs it', () => {
    try {
      parseConfig(example, { JML_WEBHOOK_SECRET: 'whsec_x' });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).problems).toEqual(['targets[0].bindPassword: environment variable LDAP_BIND_PASSWORD is not set']);
    }
  });

  it('rejects references to unknown entitlements and targets', () => {
    const bad = structuredClone(example);
    bad.birthright[0].grant.push('no-such-thing');
    bad.entitlements[1].target = 'nowhere';
    expect(() => parseConfig(bad, env)).toThrow(/birthright\[0\]\.grant\[2\]: unknown entitlement "no-such-thing"[\s\S]*|entitlements\[1\]\.target: unknown target "nowhere"/);
    try {
      parseConfig(bad, env);
    } catch (err) {
      expect((err as ConfigError).problems).toContain('birthright[0].grant[2]: unknown entitlement "no-such-thing"');
      expect((err as ConfigError).problems).toContain('entitlements[1].target: unknown target "nowhere"');
    }
  });

  it('takes a SCIM target with a bearer token or OAuth client credentials, defaults filled in', () => {
    const withScim = structuredClone(example);
    withScim.targets.push(
      { id: 'saas', type: 'scim', url: 'https://saas.example.com/scim/v2', auth: { type: 'bearer', token: '${SAAS_TOKEN}' } },
      { id: 'okta', type: 'scim', url: 'https://okta.example.com/scim/v2', auth: { type: 'oauth2', tokenUrl: 'https://okta.example.com/oauth2/v1/token', clientId: 'jml', clientSecret: 's3cret' }, userName: 'email', ratePerSecond: 2 },
    );
    withScim.entitlements.push({ id: 'saas-admins', target: 'saas', kind: 'group', ref: '6c5bb468-14b2-4183-baf2-06d523e03bd3' });
    const config = parseConfig(withScim, { ...env, SAAS_TOKEN: 'token-from-env' });
    expect(config.targets.find((t) => t.id === 'saas')).toEqual({
      id: 'saas',
      type: 'scim',
      url: 'https://saas.example.com/scim/v2',
      auth: { type: 'bearer', token: 'token-from-env' },
      userName: 'employeeId',
      concurrency: 4,
      ratePerSecond: 10,
      pageSize: 100,
      timeout: 10_000,
    });
    expect(config.targets.find((t) => t.id === 'okta')).toMatchObject({ userName: 'email', ratePerSecond: 2, auth: { type: 'oauth2', clientId: 'jml' } });
  });

  it('refuses a SCIM target that could not work, naming the field', () => {
    const problemsOf = (target: Record<string, unknown>) => {
      const bad = structuredClone(example);
      bad.targets.push({ id: 'saas', type: 'scim', url: 'https://saas.example.com/scim/v2', auth: { type: 'bearer', token: 't' }, ...target });
      try {
        parseConfig(bad, env);
        return [];
      } catch (err) {
        return (err as ConfigError).problems;
      }
    };
    expect(problemsOf({ url: 'ldap://saas.example.com' }).join('\n')).toMatch(/targets\[1\]\.url: expected an http\(s\):\/\/ URL/);
    expect(problemsOf({ auth: { type: 'bearer' } }).join('\n')).toMatch(/targets\[1\]\.auth\.token/);
    expect(problemsOf({ auth: { type: 'oauth2', tokenUrl: 'https://x.example.com/token', clientId: 'jml' } }).join('\n')).toMatch(/targets\[1\]\.auth\.clientSecret/);
    // A misspelt key is refused, not ignored.
    expect(problemsOf({ ratePerSec: 5 }).join('\n')).toMatch(/targets\[1\].*ratePerSec/);
    expect(problemsOf({ concurrency: 0 }).join('\n')).toMatch(/targets\[1\]\.concurrency/);
  });

  it('rejects a bad duration naming its path', () => {
    const bad = structuredClone(example);
    bad.lifecycle.deleteAfter = 'a month';
    expect(() => parseConfig(bad, env)).toThrow(/lifecycle\.deleteAfter: expected a duration/);
  });
});

describe('birthright policy', () => {
  const config = parseConfig(example, env);

  it('grants an engineer the account, all-staff, employees and engineering', () => {
    const due = evaluateBirthright(config.birthright, { department: 'Engineering', employmentType: 'employee' });
    expect(due.map((d) => d.entitlementId)).toEqual(['all-staff', 'directory-account', 'employees', 'engineering']);
    expect(due.find((d) => d.entitlementId === 'engineering')?.rules).toEqual(['engineering']);
  });

  it('matches values case-insensitively and lists every rule behind an entitlement', () => {
    const rules: BirthrightRule[] = [
      { name: 'a', when: { department: 'sales' }, grant: ['x'] },
      { name: 'b', when: { location: ['London', 'Paris'] }, grant: ['x', 'y'] },
    ];
    expect(evaluateBirthright(rules, { department: 'Sales', location: 'paris' })).toEqual([
      { entitlementId: 'x', rules: ['a', 'b'] },
      { entitlementId: 'y', rules: ['b'] },
    ]);
  });

  it('does not match a missing attribute', () => {
    const due = evaluateBirthright(config.birthright, { employmentType: 'contractor' });
    expect(due.map((d) => d.entitlementId)).toEqual(['all-staff', 'contractors', 'directory-account']);
  });
});

describe('status machines', () => {
  it('lets a grant go pending -> provisioning -> active but not pending -> active', () => {
    expect(canMoveGrant('pending', 'provisioning')).toBe(true);
    expect(canMoveGrant('provisioning', 'active')).toBe(true);
    expect(canMoveGrant('pending', 'active')).toBe(false);
    expect(canMoveGrant('revoked', 'active')).toBe(false);
  });
  it('never reopens a decided request', () => {
    expect(canMoveRequest('pending_approval', 'approved')).toBe(true);
    expect(canMoveRequest('denied', 'approved')).toBe(false);
  });
});
