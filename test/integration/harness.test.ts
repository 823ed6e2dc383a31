// Proves the global setup gives every test real services, not stand-ins.
import { Connection } from '@temporalio/client';
import { getTableName, is } from 'drizzle-orm';
import { PgTable } from 'drizzle-orm/pg-core';
import { Redis } from 'ioredis';
import { Client } from 'ldapts';
import postgres from 'postgres';
import { describe, expect, it } from 'vitest';
import * as schema from '../../db/schema.js';
import { testEnv } from '../support/env.js';

describe('test harness services', () => {
  it('Temporal dev server serves the default namespace', async () => {
    const connection = await Connection.connect({ address: testEnv.temporalAddress });
    try {
      const res = await connection.workflowService.listNamespaces({});
      expect(res.namespaces.map((n) => n.namespaceInfo?.name)).toContain('default');
    } finally {
      await connection.close();
    }
  });

  it('Postgres database is migrated to db/schema.ts', async () => {
    const expected = Object.values(schema as Record<string, unknown>)
      .filter((v): v is PgTable => is(v, PgTable))
      .map((t) => getTableName(t))
      .sort();
    expect(expected.length).toBeGreaterThan(0);
    const sql = postgres(testEnv.databaseUrl, { max: 1, onnotice: () => {} });
    try {
      const rows = await sql<{ table_name: string }[]>`
        select table_name from information_schema.tables where table_schema = 'public'`;
      expect(rows.map((r) => r.table_name)).toEqual(expect.arrayContaining(expected));
    } finally {
      await sql.end({ timeout: 5 });
    }
  });

  it('Redis answers PING', async () => {
    const redis = new Redis(testEnv.redisUrl, { maxRetriesPerRequest: 1 });
    try {
      expect(await redis.ping()).toBe('PONG');
      expect(testEnv.redisPrefix).toMatch(/^jmltest-/);
      // Left behind on purpose: the global teardown deletes every key under the prefix.
      await redis.set(`${testEnv.redisPrefix}:harness`, '1');
    } finally {
      redis.disconnect();
    }
  });

  it('slapd accepts the admin bind and holds the base OUs', async () => {
    const { url, bindDN, bindPassword, baseDN, usersDN } = testEnv.ldap;
    const client = new Client({ url });
    try {
      await client.bind(bindDN, bindPassword);
      const { searchEntries } = await client.search(baseDN, { scope: 'one', filter: '(ou=people)' });
      expect(searchEntries.map((e) => e.dn.toLowerCase())).toEqual([usersDN.toLowerCase()]);
    } finally {
      await client.unbind();
    }
  });
});
