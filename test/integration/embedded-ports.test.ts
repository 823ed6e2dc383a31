// The embedded servers are never shared: a port someone else holds stops `jml start` with one
// line naming the port and the variable that moves it, and a dev server that cannot bind
// its port is reported rather than replaced by whatever answers there.
import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../scripts/free-port.js';
import { startTemporalDevServer } from '../../scripts/temporal-server.js';
import { testEnv } from '../support/env.js';
import { prepareJmlStart, runJmlStart, type JmlStartSetup } from '../support/jml-start.js';

let setup: JmlStartSetup;
beforeAll(async () => {
  setup = await prepareJmlStart();
});
afterAll(async () => {
  await setup?.cleanup();
});

/** Listens on `port` until closed: the other process that holds it. */
async function occupy(port: number): Promise<Server> {
  const server = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', resolve));
  return server;
}

describe('jml start with a port in use', () => {
  it.each([
    ['JML_TEMPORAL_PORT', 'temporal'],
    ['JML_SLAPD_PORT', 'slapd'],
  ] as const)('exits non-zero with one line naming the port and %s', async (variable, which) => {
    const port = setup.ports[which];
    const holder = await occupy(port);
    try {
      // As a person runs it.
      const run = runJmlStart(setup.env, ['npx', 'tsx', 'cli/index.ts', 'start']);
      const { code } = await run.exited;
      expect(code).not.toBe(0);
      const message = `port ${port} is in use (set ${variable} to another port)`;
      expect(run.stderr().split('\n').filter((line) => line.includes('is in use'))).toEqual([`jml: ${message}`]);
      expect(run.stdout()).not.toContain('jml-engine is running');
      // Nothing was started: every other port is still free.
      for (const other of Object.values(setup.ports).filter((p) => p !== port)) await expect(freePort(other)).resolves.toBe(other);
    } finally {
      await new Promise((resolve) => holder.close(resolve));
    }
  });
});

describe('the embedded Temporal dev server', () => {
  it('fails to start, saying why, when another Temporal holds its port', async () => {
    // The suite's own Temporal stands for a server we did not start.
    const taken = Number(testEnv.temporalAddress.split(':').pop());
    await expect(startTemporalDevServer({ port: taken, forTests: true })).rejects.toThrow(new RegExp(`port ${taken} failed to start \\(exit code \\d+\\):.*address already in use`));
  });
});
