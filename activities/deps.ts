import type { Logger } from 'pino';
import type { Db } from '../db/client.js';
import type { JmlConfig } from '../domain/config.js';
import type { Connector } from './connectors/types.js';

/** Everything activities touch, built once per worker process (see worker/temporal-worker.ts). */
export interface ActivityDeps {
  db: Db;
  config: JmlConfig;
  /** Connectors by target id. */
  connectors: Map<string, Connector>;
  logger: Logger;
}
