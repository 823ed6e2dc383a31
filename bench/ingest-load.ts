// The load generator of bench/ingest.ts, run in its own process so it does not share the
// API's event loop. Every request is a fresh HR event with a unique webhook-id, signed with
// the standardwebhooks package. Prints autocannon's result as one JSON line on stdout.
// Environment: BENCH_URL, BENCH_SECRET, BENCH_DURATION (s), BENCH_CONNECTIONS.
import { createRequire } from 'node:module';
import { Webhook } from 'standardwebhooks';

interface Histogram {
  average: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}
interface AutocannonResult {
  duration: number;
  requests: Histogram & { total: number; sent: number };
  latency: Histogram;
  '2xx': number;
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCodeStats: Record<string, { count: number }>;
}
interface RawRequest {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
}
type Autocannon = (options: {
  url: string;
  connections: number;
  duration: number;
  requests: Array<{ method: string; path: string; setupRequest: (request: RawRequest) => RawRequest }>;
}) => Promise<AutocannonResult>;

// autocannon ships no types; load it through require with the small interface above.
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

const url = process.env.BENCH_URL ?? 'http://127.0.0.1:3000';
const secret = process.env.BENCH_SECRET ?? '';
const duration = Number(process.env.BENCH_DURATION ?? 20);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 50);
const webhook = new Webhook(secret);
const departments = ['Engineering', 'Sales', 'Finance', 'Support'];
let counter = 0;

function signedHire(request: RawRequest): RawRequest {
  const n = counter++;
  const id = `bench-${process.pid}-${n}`;
  const body = JSON.stringify({
    type: 'hire',
    employeeId: `B${process.pid}-${n}`,
    effectiveAt: '2026-12-01T09:00:00Z',
    attributes: { givenName: 'Bench', familyName: `Person${n}`, email: `bench.${n}@example.com`, department: departments[n % departments.length], employmentType: 'employee' },
  });
  const at = new Date();
  return {
    ...request,
    headers: {
      'content-type': 'application/json',
      'webhook-id': id,
      'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
      'webhook-signature': webhook.sign(id, at, body),
    },
    body,
  };
}

const result = await autocannon({
  url,
  connections,
  duration,
  requests: [{ method: 'POST', path: '/api/v1/hr/events', setupRequest: signedHire }],
});
process.stdout.write(`${JSON.stringify({ ...result, signed: counter })}\n`);
