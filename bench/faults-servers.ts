// The processes bench/faults.ts owns, so it may stop and start them under a running engine:
// a redis-server of its own and the engine itself in a child process (bench/faults-engine.ts);
// its Postgres cluster comes from scripts/postgres-cluster.ts. Each can be stopped and
// started again on the same port with the same data.
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { exitOf, ownChild } from '../scripts/child-process.js';
import { freePort } from '../scripts/free-port.js';

/** Something the bench can stop and start again, as the fault it injects. */
export interface Restartable {
  stop(): Promise<void>;
  start(): Promise<void>;
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
  const { exited } = ownChild(child, 15_000);
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
