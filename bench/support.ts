// Names of the throwaway resources one bench run creates, unique per run, so runs never
// collide and cleanup knows exactly what to drop.
import { randomBytes } from 'node:crypto';

export function benchResources(kind: string) {
  const runId = randomBytes(4).toString('hex');
  const databaseName = `jml_bench_${kind}_${runId}`;
  const databaseUrl = new URL(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres');
  databaseUrl.pathname = `/${databaseName}`;
  return {
    runId,
    databaseName,
    databaseUrl: databaseUrl.toString(),
    redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    redisPrefix: `jmlbench-${kind}-${runId}`,
    taskQueue: `jml-bench-${kind}-${runId}`,
  };
}
