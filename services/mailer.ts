// Outgoing mail through nodemailer, to the SMTP server SMTP_URL names (smtp:// or smtps://,
// credentials in the URL; nodemailer's own options may be added as query parameters, e.g.
// `?tls.rejectUnauthorized=false`). The caller is a Temporal activity that retries, so
// `send` throws on every failure: an SMTP outage delays mail and loses none. Without
// SMTP_URL `send` throws too, saying so: mail is never dropped silently.
//
// Privacy: nothing here logs, and errors carry no address, subject or body. An SMTP
// server's reply often quotes the recipient ("550 <ada@example.com>: unknown user"), so it
// is reduced to its code; and the URL is never repeated, as it may hold a password.
import nodemailer from 'nodemailer';

export interface MailMessage {
  /** One plain address (`ada@example.com`): never a list, never a display name. */
  to: string;
  subject: string;
  text: string;
  html: string;
  /**
   * A stable Message-ID (`<request-id.kind@jml>`): a retried send after a lost reply then
   * carries the same id, which lets mail systems drop the duplicate.
   */
  messageId?: string;
  /** The Message-ID this mail follows (a reminder follows the request's mail): threads them. */
  inReplyTo?: string;
}

export interface Mailer {
  send(message: MailMessage): Promise<void>;
  close(): Promise<void>;
}

/** A send that failed. The message says what kind of failure, never to whom or what. */
export class MailError extends Error {
  constructor(
    message: string,
    /** nodemailer's code (ECONNECTION, ETIMEDOUT, EAUTH, EENVELOPE, EMESSAGE, ...), or ours. */
    readonly code: string,
    /** The SMTP reply code, when the server answered. */
    readonly responseCode?: number,
    /** True when retrying cannot help (the message itself is malformed); false: retry. */
    readonly permanent = false,
  ) {
    super(message);
    this.name = 'MailError';
  }
}

// Modest: mail is a trickle (approvals, notices), and a small pool is kind to the relay.
const POOL_DEFAULTS: Record<string, string> = {
  pool: 'true',
  maxConnections: '2',
  maxMessages: '100',
  // Fail fast and let the activity retry, rather than hang for nodemailer's defaults (2 min, 10 min).
  connectionTimeout: '10000',
  greetingTimeout: '10000',
  socketTimeout: '60000',
};

// A plain addr-spec: no comma or semicolon (a list), no angle brackets or quotes (a display
// name), no whitespace or line break (header injection).
const PLAIN_ADDRESS = /^[^\s@,;<>"()[\]\\]+@[^\s@,;<>"()[\]\\]+$/;
const MESSAGE_ID = /^<[^\s<>@]+@[^\s<>@]+>$/;

/** SMTP_URL with the pool defaults added where the URL does not set them itself. */
function transportUrl(smtpUrl: string): string {
  let url: URL;
  try {
    url = new URL(smtpUrl);
  } catch {
    throw new Error('SMTP_URL is not a valid URL (expected smtp://host:port or smtps://user:password@host:port)');
  }
  if (url.protocol !== 'smtp:' && url.protocol !== 'smtps:') throw new Error(`SMTP_URL must start with smtp:// or smtps://, not ${url.protocol}//`);
  if (!url.hostname) throw new Error('SMTP_URL has no host');
  for (const [key, value] of Object.entries(POOL_DEFAULTS)) if (!url.searchParams.has(key)) url.searchParams.set(key, value);
  return url.toString();
}

function checkMessage(message: MailMessage): void {
  if (!PLAIN_ADDRESS.test(message.to)) throw new MailError('the recipient is not one plain email address', 'EINVALIDRECIPIENT', undefined, true);
  for (const id of [message.messageId, message.inReplyTo]) {
    if (id !== undefined && !MESSAGE_ID.test(id)) throw new MailError('messageId and inReplyTo must look like <id@host>', 'EINVALIDMESSAGEID', undefined, true);
  }
}

/** What may be said about a nodemailer error: its code and SMTP reply code, not its text. */
function safeMailError(err: unknown): MailError {
  const { code, responseCode } = err as { code?: unknown; responseCode?: unknown };
  const codeText = typeof code === 'string' ? code : 'EUNKNOWN';
  const reply = typeof responseCode === 'number' ? responseCode : undefined;
  return new MailError(`sending mail failed (${codeText}${reply ? `, SMTP reply ${reply}` : ''})`, codeText, reply);
}

/**
 * A mailer sending from `from` (config `mail.from`) through `smtpUrl` (SMTP_URL). With no
 * URL, every send rejects with an error saying SMTP_URL is not set.
 */
export function createMailer(options: { smtpUrl: string | undefined; from: string }): Mailer {
  if (!options.smtpUrl) {
    return {
      send: async () => {
        throw new MailError('SMTP_URL is not set: mail cannot be sent (set SMTP_URL, or run `npm start`, which catches mail locally)', 'ENOSMTPURL');
      },
      close: async () => {},
    };
  }
  const transport = nodemailer.createTransport(transportUrl(options.smtpUrl), {
    from: options.from,
    // Our messages have no attachments; nothing may make nodemailer read a file or fetch a URL.
    disableFileAccess: true,
    disableUrlAccess: true,
  });
  return {
    async send(message) {
      checkMessage(message);
      try {
        await transport.sendMail({
          to: message.to,
          subject: message.subject,
          text: message.text,
          html: message.html,
          ...(message.messageId ? { messageId: message.messageId } : {}),
          ...(message.inReplyTo ? { inReplyTo: message.inReplyTo, references: message.inReplyTo } : {}),
        });
      } catch (err) {
        throw safeMailError(err);
      }
    },
    async close() {
      transport.close();
    },
  };
}
