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
