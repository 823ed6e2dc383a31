// A private PostgreSQL cluster in a temp dir, on a spare port, for tests that stop and start
// Postgres (test/integration/postgres-outage.test.ts, bench/faults.ts): stopping the machine's own server
// would take down every other test file. initdb and postgres refuse to run as root, so as
// root they run as the `postgres` user, which owns the data dir.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port.js';

export interface PostgresCluster {
  /** postgres://postgres@127.0.0.1:<port>/postgres */
  url: string;
  port: number;
  /** Fast shutdown, as `pg_ctl stop -m fast`: sessions are told and cut off; resolves when it has exited. */
  stop(): Promise<void>;
  /** Starts it again on the same port; resolves when it accepts connections. */
  start(): Promise<void>;
  /** Stops it and deletes the data dir. */
  remove(): Promise<void>;
}

/** The newest installed server's bin dir (Debian: /usr/lib/postgresql/<major>/bin), else PATH. */
function postgresBinDir(): string {
  const root = '/usr/lib/postgresql';
  const majors = existsSync(root)
    ? readdirSync(root)
        .filter((name) => /^\d+$/.test(name))
        .sort((a, b) => Number(a) - Number(b))
    : [];
  const newest = majors.at(-1);
  return newest ? join(root, newest, 'bin') : '';
}

/** uid/gid of the `postgres` user when we are root (Postgres will not run as root). */
function runAs(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string) => Number(spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' }).stdout.trim());
  const uid = id('-u');
  const gid = id('-g');
  if (!Number.isInteger(uid) || uid <= 0) throw new Error('running as root, but there is no postgres user to run the test cluster as');
  return { uid, gid };
}

export async function startPostgresCluster(): Promise<PostgresCluster> {
  const bin = postgresBinDir();
  const exe = (name: string) => (bin ? join(bin, name) : name);
  const user = runAs();
  const dir = await mkdtemp(join(tmpdir(), 'jml-pg-'));
  if (user) await chown(dir, user.uid, user.gid);
  const data = join(dir, 'data');

  // cwd: the postgres user may not be allowed into ours (a clone under /root), and both resolve it.
  const init = spawnSync(exe('initdb'), ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-sync', '--no-instructions'], {
    encoding: 'utf8',
    cwd: dir,
    ...user,
  });
  if (init.status !== 0) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(`initdb failed (${init.status}): ${init.stderr}`);
  }

  const port = await freePort();
  let server: ChildProcess | undefined;
  const running = () => server !== undefined && server.exitCode === null && server.signalCode === null;

  async function start(): Promise<void> {
    if (running()) return;
    // TCP on loopback only, no Unix socket (its lock file would be in a shared dir), and no
    // durability: the cluster lives for one test file.
    const child = spawn(
      exe('postgres'),
      ['-D', data, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'],
      { stdio: ['ignore', 'ignore', 'pipe'], cwd: dir, ...user },
    );
    server = child;
    // Should this process end without remove(), do not leave a server behind (immediate shutdown).
    const orphaned = () => child.kill('SIGQUIT');
    process.once('exit', orphaned);
    child.once('exit', () => process.removeListener('exit', orphaned));
    // Read to the end, or the server blocks once the pipe is full; kept only until it is ready.
    let log: string | null = '';
    await new Promise<void>((resolve, reject) => {
      child.stderr?.on('data', (chunk: Buffer) => {
        if (log === null) return;
        log += chunk.toString();
        if (log.includes('database system is ready to accept connections')) {
          log = null;
          resolve();
        }
      });
      child.once('exit', (code) => reject(new Error(`postgres exited with ${code} before it was ready: ${(log ?? '').slice(-2_000)}`)));
    });
  }

  async function stop(): Promise<void> {
    const child = server;
    if (!child || !running()) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGINT'); // fast shutdown
    await exited;
  }

  await start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    stop,
    start,
    async remove() {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
