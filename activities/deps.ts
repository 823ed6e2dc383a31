import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Db } from '../db/client.js';
import type { JmlConfig } from '../domain/config.js';
import type { Mailer } from '../services/mailer.js';
import type { Connector } from './connectors/types.js';

/** Everything activities touch, built once per worker process (see worker/temporal-worker.ts). */
export interface ActivityDeps {
  db: Db;
  config: JmlConfig;
  /** Connectors by target id. */
  connectors: Map<string, Connector>;
  logger: Logger;
  /** Approval requests and notices; sending throws when it fails, so the activity retries. */
  mailer: Mailer;
  /** Base of the links in emails (PUBLIC_URL). */
  publicUrl: string;
  /** Where the workers' metrics are counted (the process registry /metrics serves); absent: not exported. */
  metrics?: Registry;
}
