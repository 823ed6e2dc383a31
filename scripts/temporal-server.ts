// Starts a Temporal dev server (`temporal server start-dev`) as a child process, for
// `npm start` without TEMPORAL_ADDRESS and for the test suite's global setup.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { findTemporalCli } from './temporal-cli.js';

export interface StartTemporalDevServerOptions {
  /** Tuned for throwaway test runs: no Web UI, SQLite durability traded for speed. */
  forTests?: boolean;
  /** SQLite file to persist to; in-memory when omitted. */
  dbFilename?: string;
  /** gRPC port; a free one when omitted. */
  port?: number;
  uiPort?: number;
  namespace?: string;
  log?: (line: string) => void;
}

export interface TemporalDevServer {
  /** host:port for Connection / NativeConnection. */
  address: string;
  uiUrl?: string;
  env: TestWorkflowEnvironment;
  stop(): Promise<void>;
}

export async function startTemporalDevServer(opts: StartTemporalDevServerOptions = {}): Promise<TemporalDevServer> {
  const log = opts.log ?? (() => {});
  const ip = '127.0.0.1';
  const extraArgs = [
    // The default max shift of 1s lets short timers (durable sleeps, SLAs) fire up to a
    // second late; the value is parsed as JSON, hence the inner quotes.
    '--dynamic-config-value',
    'history.timerProcessorMaxTimeShift="10ms"',
  ];
  if (opts.forTests) {
    // Test data is thrown away, so fsyncs buy nothing.
    extraArgs.push('--sqlite-pragma', 'journal_mode=WAL', '--sqlite-pragma', 'synchronous=OFF');
  }

  // The CLI does not create the folder of its SQLite file (e.g. ./data on a fresh clone).
  if (opts.dbFilename) mkdirSync(dirname(opts.dbFilename), { recursive: true });

  const path = await findTemporalCli({ log });
  if (!path) log('Temporal CLI not found locally; using the download built into @temporalio/testing');
  const ui = !opts.forTests;
  const env = await TestWorkflowEnvironment.createLocal({
    server: {
      executable: path ? { type: 'existing-path', path } : { type: 'cached-download' },
      dbFilename: opts.dbFilename,
      ip,
      port: opts.port,
      ui,
      uiPort: ui ? opts.uiPort : undefined,
      namespace: opts.namespace,
      extraArgs,
    },
  });
  // createLocal picks the port when none is given; env.address is the authoritative answer.
  const address = env.address;
  let uiUrl: string | undefined;
  if (ui) {
    const grpcPort = Number(address.split(':').pop());
    uiUrl = `http://${ip}:${opts.uiPort ?? grpcPort + 1000}`;
  }
  let stopped: Promise<void> | undefined;
  return {
    address,
    uiUrl,
    env,
    stop: () => (stopped ??= env.teardown()),
  };
}
