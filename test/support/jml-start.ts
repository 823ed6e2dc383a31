// `jml start` as a person runs it: a separate process with its own data folder, config,
// database, Redis prefix and ports, whose JSON log lines tests read to follow what it does.
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dropDatabase } from '../../db/client.js';
import { freePort } from '../../scripts/free-port.js';
import { deleteKeysWithPrefix } from '../../services/redis.js';
import { newWebhookSecret } from './api.js';
import { testEnv, uniqueName } from './env.js';

const REPO = new URL('../../', import.meta.url).pathname;

export interface JmlStartSetup {
  env: NodeJS.ProcessEnv;
  dataDir: string;
  databaseUrl: string;
  webhookSecret: string;
  ports: { api: number; temporal: number; temporalUi: number; slapd: number };
  /** Drops the database and the Redis keys and deletes the folder. */
  cleanup(): Promise<void>;
}

/** A fresh folder with a copy of the example config, a database name and free ports. */
export async function prepareJmlStart(): Promise<JmlStartSetup> {
  const dir = await mkdtemp(join(tmpdir(), 'jml-start-'));
  const configPath = join(dir, 'jml.config.yaml');
  copyFileSync(join(REPO, 'jml.config.example.yaml'), configPath);
  const url = new URL(testEnv.databaseUrl);
  url.pathname = `${url.pathname}_${Math.random().toString(36).slice(2, 10)}`;
  const databaseUrl = url.toString();
  const redisPrefix = `${testEnv.redisPrefix}:${uniqueName('start')}`;
  const webhookSecret = newWebhookSecret();
  const ports = { api: await freePort(), temporal: await freePort(), temporalUi: await freePort(), slapd: await freePort(), mailCatcher: await freePort() };
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    JML_DATA_DIR: join(dir, 'data'),
    JML_CONFIG: configPath,
    DATABASE_URL: databaseUrl,
    REDIS_URL: testEnv.redisUrl,
    JML_REDIS_PREFIX: redisPrefix,
    JML_WEBHOOK_SECRET: webhookSecret,
    PORT: String(ports.api),
    HOST: '127.0.0.1',
    PUBLIC_URL: `http://127.0.0.1:${ports.api}`,
    JML_TEMPORAL_PORT: String(ports.temporal),
    JML_TEMPORAL_UI_PORT: String(ports.temporalUi),
    JML_SLAPD_PORT: String(ports.slapd),
    JML_MAIL_CATCHER_PORT: String(ports.mailCatcher),
    LOG_LEVEL: 'info',
  };
  delete env.TEMPORAL_ADDRESS; // the embedded server is what these tests are about
  delete env.SMTP_URL; // and so is the embedded mail catcher
  return {
    env,
    dataDir: join(dir, 'data'),
    databaseUrl,
    webhookSecret,
    ports,
    async cleanup() {
      await dropDatabase(databaseUrl);
      await deleteKeysWithPrefix(testEnv.redisUrl, redisPrefix);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface JmlStartProcess {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stdout(): string;
  stderr(): string;
  /** The JSON log lines so far, parsed. */
  logs(): Array<Record<string, unknown> & { msg?: string; pid?: number }>;
  /** The first log line with this message after the first `skip` of them. */
  waitForLog(msg: string, options?: { skip?: number; timeoutMs?: number }): Promise<Record<string, unknown> & { pid?: number }>;
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<void>;
}

/** Runs `jml start` (by default as `node --import tsx cli/index.ts start`, so the pid is the supervisor's own). */
export function runJmlStart(env: NodeJS.ProcessEnv, command = [process.execPath, '--import', 'tsx', 'cli/index.ts', 'start']): JmlStartProcess {
  const child = spawn(command[0]!, command.slice(1), { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const logs = () =>
    out
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .flatMap((line) => {
        try {
          return [JSON.parse(line) as Record<string, unknown> & { msg?: string; pid?: number }];
        } catch {
          return [];
        }
      });
  const until = async <T>(what: string, check: () => T | undefined, timeoutMs: number): Promise<T> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = check();
      if (found !== undefined) return found;
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`jml start exited before ${what}:\n${out}\n${err}`);
      if (Date.now() > deadline) throw new Error(`no ${what} within ${timeoutMs} ms:\n${out.slice(-4000)}\n${err.slice(-2000)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };
  return {
    child,
    exited,
    stdout: () => out,
    stderr: () => err,
    logs,
    waitForLog: (msg, { skip = 0, timeoutMs = 60_000 } = {}) => until(`log "${msg}"`, () => logs().filter((l) => l.msg === msg)[skip], timeoutMs),
    waitForOutput: async (pattern, timeoutMs = 60_000) => {
      await until(`output ${pattern}`, () => (pattern.test(out) ? true : undefined), timeoutMs);
    },
  };
}

/** Whether a process is still there (signal 0 only checks). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * The processes still running from a `jml start` with this data folder: the supervisor and
 * everything it starts (Temporal, slapd, the engine) inherit JML_DATA_DIR, so a child left
 * behind is found even after it has lost its parent. Linux only (/proc).
 */
export function processesOf(dataDir: string): number[] {
  const marker = `\0JML_DATA_DIR=${dataDir}\0`;
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .filter((pid) => {
      try {
        return `\0${readFileSync(`/proc/${pid}/environ`, 'latin1')}`.includes(marker);
      } catch {
        return false; // gone meanwhile, or not ours to read
      }
    })
    .map(Number);
}
