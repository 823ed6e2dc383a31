// What `jml start` prints: JSON lines when its stdout is not a terminal (pipes, files, CI,
// systemd), readable lines at a terminal (run here under a pseudo-terminal with util-linux's
// `script`), the engine child's lines included. The webpack report of the workflow bundle and
// the Temporal SDK's info lines are not shown, and start-up has logged all it will before the
// banner.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepareJmlStart, runJmlStart, type JmlStartProcess, type JmlStartSetup } from '../support/jml-start.js';

const BANNER = /^jml-engine is running/;
/** What the workflow bundle's webpack report and the SDK's own default logger print. */
const SDK_NOISE = /asset workflow-bundle|modules by path|webpack|Workflow bundle created|Worker state changed|\[INFO\]/;

let setup: JmlStartSetup;
beforeAll(async () => {
  setup = await prepareJmlStart();
});
afterAll(async () => {
  await setup?.cleanup();
});

/**
 * Waits for the whole banner, then stops `jml start` (the process `pid`) with SIGTERM as
 * systemd would; stopped too when the banner never comes, so that nothing is left running.
 */
async function startAndStop(jml: JmlStartProcess, pid: () => number): Promise<string[]> {
  try {
    await jml.waitForOutput(/Try it: [^\n]*\n/, 150_000);
  } finally {
    if (jml.child.exitCode === null && jml.child.signalCode === null) process.kill(pid(), 'SIGTERM');
  }
  const { code } = await jml.exited;
  expect(code).toBe(0);
  return jml.stdout().replace(/\r/g, '').split('\n');
}

function isJson(line: string): boolean {
  try {
    return typeof JSON.parse(line) === 'object';
  } catch {
    return false;
  }
}

/** The line at which the banner starts; everything before it is start-up. */
function bannerAt(lines: string[]): number {
  const at = lines.findIndex((line) => BANNER.test(line));
  expect(at).toBeGreaterThan(0);
  return at;
}

describe('jml start output', () => {
  it('is one JSON object a line when stdout is not a terminal, with start-up logged before the banner and no SDK noise', async () => {
    const jml = runJmlStart(setup.env);
    const lines = await startAndStop(jml, () => jml.child.pid!);
    const banner = bannerAt(lines);
    const bannerEnd = lines.findIndex((line) => line.startsWith('Try it:'));

    // Every line outside the banner is a log line, and JSON.
    const logLines = lines.flatMap((line, at) => (line.trim() !== '' && (at < banner || at > bannerEnd) ? [{ at, line }] : []));
    expect(logLines.filter(({ line }) => !isJson(line))).toEqual([]);
    const logs = logLines.map(({ at, line }) => ({ at, ...(JSON.parse(line) as { msg: string; level: number; sdkComponent?: string }) }));
    // The supervisor's lines and the engine's (it writes to the same stdout); start-up is over
    // before the banner: the worker has bundled its workflows and runs.
    expect(logs.filter((l) => l.at < banner).map((l) => l.msg)).toEqual(expect.arrayContaining(['embedded Temporal started', 'Server listening at ' + setup.env.PUBLIC_URL, 'temporal worker running', 'engine started']));
    expect(logs.filter((l) => l.at > bannerEnd).map((l) => l.msg)).toContain('shutting down');

    expect([...lines, ...jml.stderr().split('\n')].filter((line) => SDK_NOISE.test(line))).toEqual([]);
    // The SDK's own lines (worker, core) come through the logger, from warn (40) up only.
    expect(logs.filter((l) => l.sdkComponent && l.level < 40)).toEqual([]);
  }, 200_000);

  // `script` (util-linux, essential on Debian) gives jml start a pseudo-terminal.
  it('is readable lines, the banner after them, at a terminal', async () => {
    // `exec`: the shell becomes jml start, so script's child is the supervisor to signal.
    const jml = runJmlStart(setup.env, ['script', '-qfc', `exec ${process.execPath} --import tsx cli/index.ts start`, '/dev/null']);
    const supervisor = () => Number(readFileSync(`/proc/${jml.child.pid}/task/${jml.child.pid}/children`, 'utf8').trim().split(' ')[0]);
    const lines = (await startAndStop(jml, supervisor)).map((line) => line.replace(/\x1b\[[0-9;]*m/g, '')); // eslint-disable-line no-control-regex
    const banner = bannerAt(lines);

    expect(lines.filter((line) => line.startsWith('{'))).toEqual([]);
    // pino-pretty's "[time] LEVEL: message", from the supervisor and from the engine child.
    const startUp = lines.slice(0, banner);
    expect(startUp).toEqual(expect.arrayContaining([expect.stringMatching(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO.*: engine started$/), expect.stringMatching(/^\[[\d:.]+\] INFO: temporal worker running/)]));
    expect(lines.filter((line) => SDK_NOISE.test(line))).toEqual([]);
  }, 200_000);
});
