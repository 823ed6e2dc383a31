// Finds (or builds) the Temporal CLI that runs the dev server. Building from source with Go
// avoids depending on the download inside @temporalio/testing, which needs GitHub/CDN access.
import { spawn } from 'node:child_process';
import { accessSync, constants, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { pathToFileURL } from 'node:url';

/** v1.5.1 is the last tag whose go.mod has no `replace` directive, so `go install pkg@version` works. */
export const TEMPORAL_CLI_VERSION = '1.5.1';

export interface FindTemporalCliOptions {
  /** Build with Go when nothing is found (default true). */
  build?: boolean;
  log?: (line: string) => void;
}

/** Shared by every clone on the machine, so the few-minute build happens once. */
export function temporalCliCacheDir(): string {
  const cacheHome = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(cacheHome, 'jml-engine', 'tools', `temporal-${TEMPORAL_CLI_VERSION}`);
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(name: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && isExecutable(join(dir, name))) return join(dir, name);
  }
  return null;
}

export async function findTemporalCli(opts: FindTemporalCliOptions = {}): Promise<string | null> {
  const log = opts.log ?? (() => {});
  const fromEnv = process.env.TEMPORAL_CLI_PATH;
  if (fromEnv) {
    if (isExecutable(fromEnv)) return fromEnv;
    log(`TEMPORAL_CLI_PATH=${fromEnv} is not an executable file; looking elsewhere`);
  }
  const onPathCli = onPath('temporal');
  if (onPathCli) return onPathCli;

  const dir = temporalCliCacheDir();
  const cached = join(dir, 'temporal');
  if (isExecutable(cached)) return cached;

  const go = onPath('go');
  if (!go || opts.build === false) return null;
  await buildWithGo(go, dir, log);
  return isExecutable(cached) ? cached : null;
}

async function buildWithGo(go: string, dir: string, log: (line: string) => void): Promise<void> {
  mkdirSync(dir, { recursive: true });
  log(`Building Temporal CLI v${TEMPORAL_CLI_VERSION} with Go into ${dir} (takes a few minutes, done once per machine)`);
  const started = Date.now();
  const progress = setInterval(() => {
    log(`  still building Temporal CLI... ${Math.round((Date.now() - started) / 1000)}s`);
  }, 15_000);
  try {
    const stderr: string[] = [];
    const code = await new Promise<number | null>((resolve, reject) => {
      const child = spawn(
        go,
        [
          'install',
          '-ldflags',
          // Without this the binary reports version "0.0.0-DEV".
          `-X github.com/temporalio/cli/temporalcli.Version=${TEMPORAL_CLI_VERSION}`,
          `github.com/temporalio/cli/cmd/temporal@v${TEMPORAL_CLI_VERSION}`,
        ],
        // CGO off: a static binary that needs no C toolchain (the SQLite driver is pure Go).
        { env: { ...process.env, CGO_ENABLED: '0', GOBIN: dir }, stdio: ['ignore', 'ignore', 'pipe'] },
      );
      child.stderr.on('data', (chunk: Buffer) => {
        stderr.push(chunk.toString());
      });
      child.on('error', reject);
      child.on('close', resolve);
    });
    if (code !== 0) {
      log(`go install failed (exit ${code}):\n${stderr.join('').trim().split('\n').slice(-20).join('\n')}`);
    } else {
      log(`Built Temporal CLI in ${Math.round((Date.now() - started) / 1000)}s`);
    }
  } finally {
    clearInterval(progress);
  }
}

// `npx tsx scripts/temporal-cli.ts` prints the path, building the CLI when needed.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const path = await findTemporalCli({ log: (line) => console.error(line) });
  if (path) {
    console.log(path);
  } else {
    console.error('Temporal CLI not found: install Go or the Temporal CLI, or set TEMPORAL_CLI_PATH');
    process.exit(1);
  }
}
