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
  /** Ports of the servers `jml start` embeds: Temporal's gRPC and Web UI, and slapd. */
  temporalPort: number;
  temporalUiPort: number;
  slapdPort: number;
  /** Port of the mail catcher `jml start` embeds when SMTP_URL is not set (JML_MAIL_CATCHER_PORT, 2525). */
  mailCatcherPort: number;
  temporalNamespace: string;
  taskQueue: string;
  smtpUrl: string | undefined;
  /**
   * Where the embedded mail catcher keeps caught mail (JML_MAIL_CATCHER_DIR): set by `jml start`
   * for its engine process only; when set, the API serves the local mailbox at /dev/mail.
   */
  mailCatcherDir: string | undefined;
  publicUrl: string;
  configPath: string;
  webhookSecrets: string[];
  dataDir: string;
  logLevel: string;
}

/** A TCP port from the environment; a bad value stops start-up naming the variable. */
function portFrom(source: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = source[name];
  if (raw === undefined || raw === '') return fallback;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 1 || port > 65_535) throw new Error(`${name} must be a port number from 1 to 65535, not "${raw}"`);
  return port;
}

export function readEnv(source: NodeJS.ProcessEnv = process.env): Env {
  const port = portFrom(source, 'PORT', 3000);
  const dataDir = path.resolve(source.JML_DATA_DIR ?? './data');
  return {
    port,
    // Loopback unless told otherwise: `npm start` on a laptop is not reachable from the
    // network. A deployment behind a load balancer sets HOST=0.0.0.0 (the Dockerfile does).
    host: source.HOST || '127.0.0.1',
    databaseUrl: source.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/jml',
    redisUrl: source.REDIS_URL ?? 'redis://127.0.0.1:6379',
    redisPrefix: source.JML_REDIS_PREFIX ?? 'jml',
    temporalAddress: source.TEMPORAL_ADDRESS || undefined,
    temporalPort: portFrom(source, 'JML_TEMPORAL_PORT', 7233),
    temporalUiPort: portFrom(source, 'JML_TEMPORAL_UI_PORT', 8233),
    slapdPort: portFrom(source, 'JML_SLAPD_PORT', 3389),
    mailCatcherPort: portFrom(source, 'JML_MAIL_CATCHER_PORT', 2525),
    temporalNamespace: source.TEMPORAL_NAMESPACE ?? 'default',
    taskQueue: source.JML_TASK_QUEUE ?? 'jml',
    smtpUrl: source.SMTP_URL || undefined,
    mailCatcherDir: source.JML_MAIL_CATCHER_DIR || undefined,
    publicUrl: source.PUBLIC_URL ?? `http://localhost:${port}`,
    configPath: path.resolve(source.JML_CONFIG ?? './jml.config.yaml'),
    webhookSecrets: (source.JML_WEBHOOK_SECRET ?? '').split(',').map((s) => s.trim()).filter(Boolean),
    dataDir,
    logLevel: source.LOG_LEVEL ?? 'info',
  };
}

/** The Temporal frontend every process uses: TEMPORAL_ADDRESS, else the embedded server of `jml start`. */
export function temporalAddressOf(env: Env): string {
  return env.temporalAddress ?? `127.0.0.1:${env.temporalPort}`;
}
