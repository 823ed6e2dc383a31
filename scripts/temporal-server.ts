// Starts a Temporal dev server (`temporal server start-dev`) as a child process, for
// `jml start` without TEMPORAL_ADDRESS and for the test suite's global setup.
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { makePrivate, PRIVATE_DIR } from '../services/setup.js';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { ownChild } from './child-process.js';
import { freePort } from './free-port.js';
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
  /** The server's process; undefined when the @temporalio/testing download runs it out of our sight. */
  pid?: number;
  /** Settles when the server process ends, saying how ("exit code 1", "signal SIGKILL"); never for the download. */
  exited: Promise<string>;
  stop(): Promise<void>;
}

/** No local Temporal CLI, and the download built into @temporalio/testing failed too. */
export class TemporalUnavailable extends Error {}

const IP = '127.0.0.1';
const READY_TIMEOUT_MS = 60_000;

export async function startTemporalDevServer(opts: StartTemporalDevServerOptions = {}): Promise<TemporalDevServer> {
  const log = opts.log ?? (() => {});
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
  // The file holds names and e-mail addresses: owner only, in an owner-only folder.
  if (opts.dbFilename) mkdirSync(dirname(opts.dbFilename), { recursive: true, mode: PRIVATE_DIR });
  const server = await startServer(opts, extraArgs, log);
  // The server creates the file (and its journal) under the process umask, which `jml start`
  // sets to 0077; a file from an earlier run, or another umask, is tightened here.
  if (opts.dbFilename) for (const suffix of ['', '-journal', '-wal', '-shm']) makePrivate(`${opts.dbFilename}${suffix}`);
  return server;
}

async function startServer(opts: StartTemporalDevServerOptions, extraArgs: string[], log: (line: string) => void): Promise<TemporalDevServer> {
  const cli = await findTemporalCli({ log });
  if (!cli) {
    log('Temporal CLI not found locally; using the download built into @temporalio/testing');
    return startDownloaded(opts, extraArgs);
  }

  const port = opts.port ?? (await freePort());
  const uiPort = opts.forTests ? undefined : (opts.uiPort ?? port + 1000);
  const args = ['server', 'start-dev', '--ip', IP, '--port', String(port)];
  args.push(...(uiPort === undefined ? ['--headless'] : ['--ui-port', String(uiPort)]));
  if (opts.dbFilename) args.push('--db-filename', opts.dbFilename);
  if (opts.namespace && opts.namespace !== 'default') args.push('--namespace', opts.namespace);
  const child = spawn(cli, [...args, ...extraArgs], { stdio: ['ignore', 'pipe', 'pipe'] });

  // The last lines of its log say why it stopped; the rest is not ours to print.
  const stderrTail: string[] = [];
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderrTail.push(...chunk.split('\n').filter((line) => line.trim()));
    stderrTail.splice(0, stderrTail.length - 5);
  });
  const { exited, stop } = ownChild(child, 5_000);

  // Ready is what this process prints once it has bound its ports ("Server:  localhost:7233"),
  // never a probe of the port: a probe would be answered just as well by another server that
  // holds the port while ours exits with "address already in use".
  const ready = new Promise<void>((resolve) => {
    let stdout = '';
    const onData = (chunk: string) => {
      stdout += chunk;
      if (!/^Server:/m.test(stdout)) return;
      child.stdout.off('data', onData);
      child.stdout.resume(); // keep draining, unread
      resolve();
    };
    child.stdout.setEncoding('utf8').on('data', onData);
  });
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    ready.then(() => 'ready' as const),
    exited,
    new Promise<string>((resolve) => (timer = setTimeout(() => resolve(`not ready within ${READY_TIMEOUT_MS / 1000} s`), READY_TIMEOUT_MS))),
  ]);
  clearTimeout(timer);
  if (outcome !== 'ready') {
    await stop();
    const why = stderrTail.at(-1)?.replace(/^.*msg="?(.*?)"?$/, '$1') ?? 'no output';
    throw new Error(`Temporal dev server on port ${port} failed to start (${outcome}): ${why}`);
  }
  log(`Temporal dev server on ${IP}:${port} (pid ${child.pid})`);
  return { address: `${IP}:${port}`, uiUrl: uiPort === undefined ? undefined : `http://${IP}:${uiPort}`, pid: child.pid, exited, stop };
}

/** Without a local CLI: the server that @temporalio/testing downloads and runs itself. */
async function startDownloaded(opts: StartTemporalDevServerOptions, extraArgs: string[]): Promise<TemporalDevServer> {
  const ui = !opts.forTests;
  const env = await TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'cached-download' },
      dbFilename: opts.dbFilename,
      ip: IP,
      port: opts.port,
      ui,
      uiPort: ui ? opts.uiPort : undefined,
      namespace: opts.namespace,
      extraArgs,
    },
  }).catch((err: Error) => {
    throw new TemporalUnavailable(`no Temporal CLI here and its download failed: ${err.message.split('\n')[0]}`);
  });
  // createLocal picks the port when none is given; env.address is the authoritative answer.
  const address = env.address;
  const grpcPort = Number(address.split(':').pop());
  let stopped: Promise<void> | undefined;
  return {
    address,
    uiUrl: ui ? `http://${IP}:${opts.uiPort ?? grpcPort + 1000}` : undefined,
    exited: new Promise<string>(() => {}),
    stop: () => (stopped ??= env.teardown()),
  };
}
