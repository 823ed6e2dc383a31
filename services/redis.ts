import { Redis } from 'ioredis';
import type { ConnectionOptions } from 'bullmq';

/**
 * BullMQ connection options from a redis:// URL. Workers wait for Redis forever
 * (maxRetriesPerRequest: null, as BullMQ requires); producers in the request path fail
 * fast instead (no offline queue), so the API answers while Redis is away.
 */
export function redisConnection(url: string, role: 'worker' | 'producer'): ConnectionOptions {
  const parsed = new URL(url);
  return {
    host: parsed.hostname.replace(/^\[|\]$/g, ''),
    port: Number(parsed.port || 6379),
    ...(parsed.username ? { username: decodeURIComponent(parsed.username) } : {}),
    ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
    db: Number(parsed.pathname.slice(1) || 0),
    ...(parsed.protocol === 'rediss:' ? { tls: {} } : {}),
    ...(role === 'worker' ? { maxRetriesPerRequest: null } : { enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 2_000 }),
  };
}

/** Deletes every key that starts with `prefix` (SCAN + UNLINK): test runs and benches clean up with it. */
export async function deleteKeysWithPrefix(url: string, prefix: string): Promise<void> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}
