// Child process of test/integration/postgres-driver.test.ts: transactions under load through
// a tiny TCP proxy to Postgres, and the proxy killed while they are in flight, as a Postgres
// stop looks to the driver (every connection closed, no new one accepted).
//
// postgres.js 3.4.9 without patches/postgres+3.4.9.patch dies here: the closed connection
// rejects the in-flight query, the transaction writes its ROLLBACK, that small write is
// deferred with setImmediate, and when it runs the socket is null: a TypeError thrown from a
// timer, which nothing can catch (porsager/postgres#1208). Patched, every transaction
// rejects with a connection error and this process prints them and exits 0.
//
//   POSTGRES_MODULE=<path to postgres/src/index.js> DATABASE_URL=<url> node --import tsx <this file>
// POSTGRES_MODULE defaults to the installed (patched) package.
import { createServer, connect, type Socket } from 'node:net';
import { setImmediate as nextTurn } from 'node:timers/promises';

const TRANSACTIONS = 8;
const POOL = 4;

const { default: postgres } = (await import(process.env.POSTGRES_MODULE ?? 'postgres')) as { default: typeof import('postgres') };
const target = new URL(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres');

const sockets = new Set<Socket>();
const proxy = createServer((client) => {
  const upstream = connect(Number(target.port || 5432), target.hostname);
  for (const socket of [client, upstream]) {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => {
      sockets.delete(socket);
      client.destroy();
      upstream.destroy();
    });
  }
  client.pipe(upstream);
  upstream.pipe(client);
});
await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
const { port } = proxy.address() as { port: number };

/** Postgres "stops": no new connections, and every open one is closed in an orderly way (FIN). */
function killProxy(): void {
  proxy.close();
  for (const socket of sockets) socket.end();
}

const sql = postgres({
  host: '127.0.0.1',
  port,
  user: decodeURIComponent(target.username) || 'postgres',
  database: decodeURIComponent(target.pathname.slice(1)) || 'postgres',
  max: POOL,
  onnotice: () => {},
  // Reconnect attempts after the kill are refused; do not wait long between them.
  backoff: () => 0.05,
});
await sql`select 1`;

// Each transaction says when its long query is on the wire; once the pool's worth of them
// is, the proxy goes, with those queries in flight and the rest queued behind them.
let inFlight = 0;
const transactions = Array.from({ length: TRANSACTIONS }, (_, i) =>
  sql.begin(async (tx) => {
    await tx`select ${i}::int`;
    const sleeping = tx`select pg_sleep(30)`;
    if (++inFlight === POOL) killProxy();
    await sleeping;
  }),
);
const outcomes = await Promise.allSettled(transactions);
// Whatever the driver deferred to the next turns (the ROLLBACK writes) has run by now.
await nextTurn();
await nextTurn();

const codes = outcomes.map((o) => (o.status === 'fulfilled' ? 'fulfilled' : String((o.reason as { code?: unknown }).code ?? (o.reason as Error).message)));
console.log(JSON.stringify({ codes }));
await sql.end({ timeout: 1 });
