// Starts the real services once per `vitest run` and hands their addresses to every test
// file through `inject` (see test/support/env.ts). Each run gets its own database, Redis
// key prefix and slapd, so concurrent runs on one machine do not collide.
import { deleteKeysWithPrefix } from '../services/redis.js';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { dropDatabase, ensureDatabase, runMigrations } from '../db/client.js';
import { startSlapd } from '../scripts/slapd.js';
import { startTemporalDevServer } from '../scripts/temporal-server.js';
// Type-only, but it brings in the ProvidedContext augmentation that types provide().
import type { LdapServerInfo } from './support/env.js';

const log = (line: string) => console.log(`[global-setup] ${line}`);

function databaseUrlFor(name: string): string {
  const url = new URL(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres');
  url.pathname = `/${name}`;
  return url.toString();
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const id = randomBytes(4).toString('hex');
  const dbName = `jml_test_${id}`;
  const databaseUrl = databaseUrlFor(dbName);
  const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const redisPrefix = `jmltest-${id}`;
  const ldapDir = await mkdtemp(join(tmpdir(), 'jml-slapd-'));

  const started = Date.now();
  // The three are independent; Temporal is the slowest, so overlap it with the others.
  const [temporal, db, ldap] = await Promise.allSettled([
    startTemporalDevServer({ forTests: true, log }),
    ensureDatabase(databaseUrl).then(() => runMigrations(databaseUrl)),
    startSlapd({ dir: ldapDir, log }),
  ]);

  const teardown = async () => {
    const steps = await Promise.allSettled([
      temporal.status === 'fulfilled' ? temporal.value.stop() : undefined,
      ldap.status === 'fulfilled' ? ldap.value.stop() : undefined,
      dropDatabase(databaseUrl),
      deleteKeysWithPrefix(redisUrl, redisPrefix),
    ]);
    await rm(ldapDir, { recursive: true, force: true });
    for (const step of steps) if (step.status === 'rejected') log(`teardown: ${String(step.reason)}`);
  };

  const failed = [temporal, db, ldap].filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed.length > 0 || temporal.status !== 'fulfilled' || ldap.status !== 'fulfilled') {
    await teardown();
    throw new AggregateError(
      failed.map((f) => f.reason as unknown),
      `test services failed to start: ${failed.map((f) => String(f.reason)).join('; ')}`,
    );
  }
  log(`Temporal ${temporal.value.address}, database ${dbName}, slapd ${ldap.value.url}, in ${Date.now() - started}ms`);

  const { url, bindDN, bindPassword, baseDN, usersDN, groupsDN, disabledDN } = ldap.value;
  const ldapInfo: LdapServerInfo = { url, bindDN, bindPassword, baseDN, usersDN, groupsDN, disabledDN };
  project.provide('temporalAddress', temporal.value.address);
  project.provide('databaseUrl', databaseUrl);
  project.provide('redisUrl', redisUrl);
  project.provide('redisPrefix', redisPrefix);
  project.provide('ldap', ldapInfo);
  return teardown;
}
