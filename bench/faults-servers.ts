// The processes bench/faults.ts owns, so it may stop and start them under a running engine:
// a Postgres cluster of its own (never the machine's), a redis-server of its own, and the
// engine itself in a child process (bench/faults-engine.ts). Each can be stopped and started
// again on the same port with the same data.
import { execFile, execFileSync, fork, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { appendFileSync, chownSync, closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../scripts/free-port.js';

const run = promisify(execFile);

/** Something the bench can stop and start again, as the fault it injects. */
export interface Restartable {
  stop(): Promise<void>;
  start(): Promise<void>;
}

/** Settles when `child` ends, saying how. */
function exitOf(child: ChildProcess): Promise<string> {
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve(signal ? `signal ${signal}` : `exit code ${code}`)));
}

// ---- Postgres ----------------------------------------------------------------------------

const PG_BIN = '/usr/lib/postgresql/15/bin';

export interface OwnPostgres extends Restartable {
  /** postgres://postgres@127.0.0.1:<port>/postgres (trust auth, loopback only). */
  url: string;
  /** Stops it at once and deletes its files. */
  destroy(): Promise<void>;
}

/**
 * initdb a cluster in a temporary folder and start it on a free loopback port. initdb
 * refuses to run as root, so as root the cluster belongs to (and runs as) `postgres`.
 */
export async function startOwnPostgres(): Promise<OwnPostgres> {
  const dir = mkdtempSync(join(tmpdir(), 'jml-bench-pg-'));
  const data = join(dir, 'data');
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(dir, id('-u'), id('-g'));
  }
  const command = (tool: string, args: string[]): [string, string[]] => (asRoot ? ['runuser', ['-u', 'postgres', '--', join(PG_BIN, tool), ...args]] : [join(PG_BIN, tool), args]);
  // cwd: the postgres user may not be allowed into ours, and initdb needs to resolve it.
  const pg = (tool: string, args: string[]) => run(...command(tool, args), { cwd: dir });
  const pgCtl = (args: string[]) => pg('pg_ctl', ['-D', data, ...args]);

  await pg('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-locale', '--no-sync']);
  const port = await freePort();
  // TCP on loopback only, no Unix socket to collide with the machine's cluster; fsync off,
  // as the bench stops it cleanly (fast shutdown writes a checkpoint) and throws it away.
  appendFileSync(join(data, 'postgresql.conf'), `\nport = ${port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\nfsync = off\n`);

  let running = false;
  // Last resort if the bench exits without destroy(): pg_ctl daemonises, so nothing else would stop it.
  const stopOnExit = () => {
    if (running) spawnSync(...command('pg_ctl', ['-D', data, '-m', 'immediate', 'stop']), { cwd: dir });
  };
  process.once('exit', stopOnExit);

  const server: OwnPostgres = {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    async start() {
      await pgCtl(['-l', join(dir, 'postgres.log'), '-w', '-t', '60', 'start']);
      running = true;
    },
    /** A fast shutdown: sessions are ended, as when an operator restarts the server. */
    async stop() {
      await pgCtl(['-m', 'fast', '-w', '-t', '60', 'stop']);
      running = false;
    },
    async destroy() {
      process.removeListener('exit', stopOnExit);
      if (running) await pgCtl(['-m', 'immediate', '-w', 'stop']).catch(() => undefined);
      running = false;
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await server.start();
  return server;
}

// ---- Redis -------------------------------------------------------------------------------

export interface OwnRedis extends Restartable {
  url: string;
}

/**
 * A redis-server on a free loopback port, without persistence: stopped, it comes back
 * empty, the worst a Redis restart can do to the queue (the Postgres inbox must cover it).
 */
export async function startOwnRedis(): Promise<OwnRedis> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const killOnExit = () => child?.kill('SIGKILL');
  const server: OwnRedis = {
    url: `redis://127.0.0.1:${port}`,
    async start() {
      const started = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'ignore'] });
      const exited = exitOf(started);
      const ready = new Promise<void>((resolve) => {
        let out = '';
        started.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
          out += chunk;
          if (out.includes('Ready to accept connections')) resolve();
        });
      });
      const outcome = await Promise.race([ready.then(() => 'ready'), exited]);
      if (outcome !== 'ready') throw new Error(`redis-server on port ${port} did not start (${outcome})`);
      started.stdout?.resume();
      child = started;
      process.once('exit', killOnExit);
    },
    /** SIGTERM: Redis shuts down cleanly, and with nothing to save, comes back empty. */
    async stop() {
      const stopping = child;
      process.removeListener('exit', killOnExit);
      child = undefined;
      if (!stopping || stopping.exitCode !== null || stopping.signalCode !== null) return;
      const exited = exitOf(stopping);
      stopping.kill('SIGTERM');
      await exited;
    },
  };
  await server.start();
  return server;
}

// ---- the engine --------------------------------------------------------------------------

export interface EngineProcess {
  pid: number;
  /** Settles when the process ends, saying how ("signal SIGKILL", "exit code 1"). */
  exited: Promise<string>;
  /** SIGKILL, as the fault: no shutdown of any kind. */
  kill(): Promise<void>;
  /** SIGTERM (its orderly shutdown), SIGKILL after `timeoutMs`. */
  stop(timeoutMs?: number): Promise<void>;
}

const ENGINE_MODULE = new URL('./faults-engine.ts', import.meta.url).pathname;

/**
 * Forks bench/faults-engine.ts (API, Temporal worker, ingestion worker) with `env`, its
 * output appended to `logFile`, and waits for its ready message; an exit before it fails.
 */
export async function startEngineProcess(env: NodeJS.ProcessEnv, logFile: string): Promise<EngineProcess> {
  const log = openSync(logFile, 'a');
  const child = fork(ENGINE_MODULE, [], { env, execArgv: ['--import', 'tsx'], stdio: ['ignore', log, log, 'ipc'] });
  closeSync(log); // the child holds its own copy
  const exited = exitOf(child);
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  void exited.then(() => process.removeListener('exit', killOnExit));
  const ready = new Promise<'ready'>((resolve) => child.on('message', (message: { type?: string }) => message?.type === 'ready' && resolve('ready')));
  const outcome = await Promise.race([ready, exited]);
  if (outcome !== 'ready') throw new Error(`the engine stopped during start-up (${outcome}): ${logTail(logFile, 3)}`);
  const signal = async (name: NodeJS.Signals, timeoutMs?: number) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill(name);
    const timer = timeoutMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    await exited;
    clearTimeout(timer);
  };
  return { pid: child.pid!, exited, kill: () => signal('SIGKILL'), stop: (timeoutMs = 15_000) => signal('SIGTERM', timeoutMs) };
}

/** The last `lines` lines of a log file, on one line (what a crashed engine said last). */
export function logTail(file: string, lines: number): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join(' | ').slice(0, 2000);
  } catch {
    return '(no log)';
  }
}
