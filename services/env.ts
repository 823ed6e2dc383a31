// Process environment, read once. Defaults make `npm start` work on a laptop.
import path from 'node:path';

export interface Env {
  port: number;
  host: string;
  databaseUrl: string;
  redisUrl: string;
  /** Prefix of every BullMQ key, so several deployments (or test runs) share one Redis. */
  redisPrefix: string;
  temporalAddress: string | undefined;
  temporalNamespace: string;
  taskQueue: string;
  smtpUrl: string | undefined;
  publicUrl: string;
  configPath: string;
  webhookSecrets: string[];
  dataDir: string;
  logLevel: string;
}

export function readEnv(source: NodeJS.ProcessEnv = process.env): Env {
  const port = Number(source.PORT ?? 3000);
  const dataDir = path.resolve(source.JML_DATA_DIR ?? './data');
  return {
    port,
    host: source.HOST ?? '0.0.0.0',
    databaseUrl: source.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/jml',
    redisUrl: source.REDIS_URL ?? 'redis://127.0.0.1:6379',
    redisPrefix: source.JML_REDIS_PREFIX ?? 'jml',
    temporalAddress: source.TEMPORAL_ADDRESS || undefined,
    temporalNamespace: source.TEMPORAL_NAMESPACE ?? 'default',
    taskQueue: source.JML_TASK_QUEUE ?? 'jml',
    smtpUrl: source.SMTP_URL || undefined,
    publicUrl: source.PUBLIC_URL ?? `http://localhost:${port}`,
    configPath: path.resolve(source.JML_CONFIG ?? './jml.config.yaml'),
    webhookSecrets: (source.JML_WEBHOOK_SECRET ?? '').split(',').map((s) => s.trim()).filter(Boolean),
    dataDir,
    logLevel: source.LOG_LEVEL ?? 'info',
  };
}
