// A server or engine this process starts and owns: how it ended, and a stop that asks
// (SIGTERM) before it insists (SIGKILL). One rule for every child the engine, the tests and
// the benches start.
import type { ChildProcess } from 'node:child_process';

/** Settles when `child` ends, saying how ("exit code 1", "signal SIGKILL", "not started: …"). */
export function exitOf(child: ChildProcess): Promise<string> {
  return new Promise<string>((resolve) => {
    child.once('exit', (code, signal) => resolve(signal ? `signal ${signal}` : `exit code ${code}`));
    child.once('error', (err) => resolve(`not started: ${err.message}`)); // e.g. a binary that is not executable
  });
}

export interface OwnedChild {
  exited: Promise<string>;
  /** SIGTERM, then SIGKILL after `stopTimeoutMs`; resolves once it has exited. Safe to call twice. */
  stop(): Promise<void>;
}

/** Owns `child`: killed should this process exit without stopping it, stopped on request. */
export function ownChild(child: ChildProcess, stopTimeoutMs: number): OwnedChild {
  const exited = exitOf(child);
  // Last resort if our process exits without calling stop().
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  void exited.then(() => process.removeListener('exit', killOnExit));
  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), stopTimeoutMs);
      await exited;
      clearTimeout(timer);
    })());
  return { exited, stop };
}
