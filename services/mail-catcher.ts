// The embedded mail catcher of `npm start` when SMTP_URL is not set: an SMTP server on
// loopback that delivers nowhere and keeps each message as a `.eml` file under
// JML_DATA_DIR/mail, so that a new user can read the approval mail (at /dev/mail, see
// api/routes/mailbox.ts) and follow its link. Approval links are as good as a password for
// one decision, so the directory is private to the user (0700, files 0600) and the server
// takes connections from loopback only.
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { simpleParser, type AddressObject } from 'mailparser';
import { SMTPServer } from 'smtp-server';

export interface MailCatcher {
  /** For SMTP_URL: `smtp://127.0.0.1:PORT`. */
  url: string;
  port: number;
  stop(): Promise<void>;
}

export interface CaughtMail {
  /** The file's name without `.eml`: sortable by arrival time. */
  id: string;
  /** The Date header (ISO 8601), else the arrival time. */
  date: string;
  from: string;
  to: string;
  subject: string;
  text: string | null;
  html: string | null;
}

/** Messages above this are refused (552); the mail this engine sends is a few kilobytes. */
export const MAIL_CATCHER_SIZE_LIMIT = 10 * 1024 * 1024;
/** The oldest messages beyond this many are deleted, so a long-running laptop set-up stays small. */
const KEEP_AT_MOST = 1_000;
const LOOPBACK_HOSTS = new Set(['127.0.0.1', '::1', 'localhost']);
const LOOPBACK_PEERS = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);

// `20261201T090000123Z-<16 hex>`: the arrival time (UTC, to the millisecond), then random.
const ID_PATTERN = /^\d{8}T\d{9}Z-[0-9a-f]{16}$/;

/** True for the ids the catcher writes: anything else (a path, `..`) is not one of its files. */
export function isCaughtMailId(id: string): boolean {
  return ID_PATTERN.test(id);
}

function newMailId(now: Date): string {
  const stamp = now.toISOString().replace(/[-:.]/g, ''); // 20261201T090000123Z
  return `${stamp}-${randomBytes(8).toString('hex')}`;
}

export async function startMailCatcher(options: { dir: string; port?: number; host?: string }): Promise<MailCatcher> {
  const host = options.host ?? '127.0.0.1';
  // Whoever can reach it can read and forge approval mail: it never listens beyond loopback.
  if (!LOOPBACK_HOSTS.has(host)) throw new Error(`the mail catcher listens on loopback only, not on ${host}`);
  const dir = path.resolve(options.dir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700); // mkdir leaves an existing directory's mode as it was

  const store = async (raw: Buffer) => {
    const id = newMailId(new Date());
    const file = path.join(dir, `${id}.eml`);
    // Written under a temporary name and renamed: a reader never sees half a message.
    const partial = path.join(dir, `.${id}.partial`);
    await writeFile(partial, raw, { mode: 0o600 });
    await rename(partial, file);
    await prune(dir);
  };

  const server = new SMTPServer({
    authOptional: true,
    // Plain SMTP on loopback: no certificate to make or trust.
    disabledCommands: ['STARTTLS'],
    size: MAIL_CATCHER_SIZE_LIMIT,
    banner: 'jml-engine mail catcher (nothing is delivered)',
    logger: false,
    onConnect(session, callback) {
      if (!LOOPBACK_PEERS.has(session.remoteAddress)) return callback(new Error('loopback only'));
      callback();
    },
    onData(stream, _session, callback) {
      const chunks: Buffer[] = [];
      let answered = false;
      const answer = (err?: Error) => {
        if (answered) return;
        answered = true;
        callback(err ?? null);
      };
      stream.on('data', (chunk: Buffer) => {
        // Past the limit the rest is read and dropped (the client is answered 552 at the end).
        if (!stream.sizeExceeded) chunks.push(chunk);
      });
      stream.on('error', (err) => answer(err));
      stream.on('end', () => {
        if (stream.sizeExceeded) return answer(Object.assign(new Error('message exceeds the size limit'), { responseCode: 552 }));
        store(Buffer.concat(chunks)).then(
          () => answer(),
          // 451: a local problem (disk full); the sender keeps the message and retries.
          () => answer(Object.assign(new Error('cannot store the message now'), { responseCode: 451 })),
        );
      });
    },
  });
  // A client that misbehaves must not take the process down.
  server.on('error', () => {});

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.server.once('error', onError);
    server.listen(options.port ?? 0, host, () => {
      server.server.off('error', onError);
      resolve();
    });
  });
  const port = (server.server.address() as AddressInfo).port;
  let stopped: Promise<void> | undefined;
  return {
    url: `smtp://127.0.0.1:${port}`,
    port,
    stop: () => (stopped ??= new Promise<void>((resolve) => server.close(() => resolve()))),
  };
}

/** The caught message files, newest first. */
async function mailIds(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return names
    .filter((name) => name.endsWith('.eml'))
    .map((name) => name.slice(0, -'.eml'.length))
    .filter(isCaughtMailId)
    .sort()
    .reverse();
}

async function prune(dir: string): Promise<void> {
  const ids = await mailIds(dir);
  for (const id of ids.slice(KEEP_AT_MOST)) await unlink(path.join(dir, `${id}.eml`)).catch(() => undefined);
}

function addressText(address: AddressObject | AddressObject[] | undefined): string {
  if (!address) return '';
  return (Array.isArray(address) ? address : [address]).map((a) => a.text).join(', ');
}

async function parseMail(id: string, raw: Buffer): Promise<CaughtMail> {
  const parsed = await simpleParser(raw);
  // The arrival time is in the id: 20261201T090000123Z.
  const arrived = id.replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(\d{3})Z.*$/, '$1-$2-$3T$4:$5:$6.$7Z');
  return {
    id,
    date: parsed.date && !Number.isNaN(parsed.date.getTime()) ? parsed.date.toISOString() : arrived,
    from: addressText(parsed.from),
    to: addressText(parsed.to),
    subject: parsed.subject ?? '',
    text: parsed.text ?? null,
    html: typeof parsed.html === 'string' ? parsed.html : null,
  };
}

/** The newest `limit` caught messages, parsed, newest first. */
export async function listCaughtMail(dir: string, limit: number): Promise<CaughtMail[]> {
  const ids = (await mailIds(dir)).slice(0, Math.max(0, limit));
  const mails: CaughtMail[] = [];
  for (const id of ids) {
    const raw = await readFile(path.join(dir, `${id}.eml`)).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined; // pruned meanwhile
      throw err;
    });
    if (raw) mails.push(await parseMail(id, raw));
  }
  return mails;
}

/** One caught message by id; undefined when there is none, or the id is not one the catcher writes. */
export async function readCaughtMail(dir: string, id: string): Promise<CaughtMail | undefined> {
  if (!isCaughtMailId(id)) return undefined;
  try {
    return await parseMail(id, await readFile(path.join(dir, `${id}.eml`)));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
