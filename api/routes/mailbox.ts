// The local mailbox of `npm start` without SMTP_URL: the mail the embedded catcher
// (services/mail-catcher.ts) has kept, as server-rendered pages that work without script.
//   GET /dev/mail      the newest 100 messages, newest first
//   GET /dev/mail/:id  one message: its headers, the text part (links clickable), and the
//                      HTML part in a sandboxed iframe (no script, no same-origin, no remote images)
//
// NEVER EXPOSE THESE PAGES. They show approval links, each as good as a password for one
// decision. So this plugin is registered only while the catcher runs (api/app.ts,
// `mailCatcherDir`), and answers only a request that comes straight from this machine:
// the socket's peer is loopback (never the client address a proxy reports), no proxy
// header says it was forwarded (a reverse proxy on the same host connects from loopback),
// and the Host is a loopback name or PUBLIC_URL's host (else a web page could read the
// pages through DNS rebinding). Anything else is the same 404 as a path with no route.
import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { listCaughtMail, readCaughtMail, type CaughtMail } from '../../services/mail-catcher.js';
import { escapeHtml } from '../../services/mail-templates.js';
import { problems, withFieldPrefix } from '../problem.js';

export const MAILBOX_PATH = '/dev/mail';
const LIST_LIMIT = 100;

export interface MailboxRoutesOptions {
  /** The catcher's directory (JML_MAIL_CATCHER_DIR). */
  dir: string;
  /** PUBLIC_URL: its host is accepted in the Host header, besides the loopback names. */
  publicUrl?: string;
}

const LOOPBACK_PEERS = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);
const LOOPBACK_HOSTNAMES = new Set(['localhost', '127.0.0.1', '[::1]']);
const FORWARDING_HEADERS = ['forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-real-ip'];

// The catcher's messages are ours, but the frame's content is still mail: it runs nothing,
// loads nothing from elsewhere (a srcdoc frame inherits this policy), and is framed by nobody.
const PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'none'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'x-robots-tag': 'noindex',
} as const;

const params = withFieldPrefix(z.object({ id: z.string().max(64, 'must be at most 64 characters') }), ['params']);

function hostnameOf(host: string | undefined): string | undefined {
  if (!host) return undefined;
  try {
    return new URL(`http://${host}`).hostname.toLowerCase();
  } catch {
    return undefined;
  }
}

function isLocalRequest(request: FastifyRequest, allowedHostnames: Set<string>): boolean {
  // The socket's peer, not request.ip: with trustProxy that is what X-Forwarded-For says.
  const peer = request.socket.remoteAddress;
  if (!peer || !LOOPBACK_PEERS.has(peer)) return false;
  if (FORWARDING_HEADERS.some((name) => request.headers[name] !== undefined)) return false;
  const hostname = hostnameOf(request.headers.host);
  return hostname !== undefined && allowedHostnames.has(hostname);
}

export const mailboxRoutes: FastifyPluginAsyncZod<MailboxRoutesOptions> = async (app, opts) => {
  const allowedHostnames = new Set(LOOPBACK_HOSTNAMES);
  const publicHostname = opts.publicUrl ? new URL(opts.publicUrl).hostname.toLowerCase() : undefined;
  if (publicHostname) allowedHostnames.add(publicHostname);

  // Before anything else, for every route of this plugin: an outsider learns nothing, not even that it exists.
  app.addHook('onRequest', async (request) => {
    if (!isLocalRequest(request, allowedHostnames)) throw problems.notFound(`No route for ${request.method} at this path.`);
  });

  app.get(MAILBOX_PATH, { schema: { hide: true } }, async (_request, reply) => {
    const mails = await listCaughtMail(opts.dir, LIST_LIMIT);
    return reply.headers(PAGE_HEADERS).send(listPage(mails));
  });

  app.get(`${MAILBOX_PATH}/:id`, { schema: { hide: true, params } }, async (request, reply) => {
    // readCaughtMail refuses any id its writer does not produce (`..`, a path): 404 like a missing one.
    const mail = await readCaughtMail(opts.dir, request.params.id);
    if (!mail) throw problems.notFound('No caught message with this id.');
    return reply.headers(PAGE_HEADERS).send(messagePage(mail));
  });
};

// ---- pages ------------------------------------------------------------------------------

const STYLE = `
body { margin: 0; padding: 24px; color: #1a1a1a; background: #ffffff; font: 16px/1.5 -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif; }
main { max-width: 960px; margin: 0 auto; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: 6px 12px 6px 0; border-bottom: 1px solid #d0d0d0; }
a { color: #0b57d0; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; background: #f4f4f4; padding: 12px; }
iframe { width: 100%; height: 640px; border: 1px solid #d0d0d0; }
.note { color: #4d4d4d; }
`;

function page(title: string, body: string): string {
  return [
    '<!doctype html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<meta name="robots" content="noindex">',
    `<title>${escapeHtml(title)}</title>`,
    `<style>${STYLE}</style>`,
    '</head>',
    '<body>',
    '<main>',
    body,
    '</main>',
    '</body>',
    '</html>',
    '',
  ].join('\n');
}

const NOTE =
  '<p class="note">Mail caught on this machine: SMTP_URL is not set, so nothing is delivered. These pages answer this machine only; they hold approval links, so never expose them.</p>';

function messageHref(id: string): string {
  return `${MAILBOX_PATH}/${encodeURIComponent(id)}`;
}

function listPage(mails: CaughtMail[]): string {
  const rows = mails.map(
    (mail) =>
      `<tr><td><time datetime="${escapeHtml(mail.date)}">${escapeHtml(mail.date)}</time></td><td>${escapeHtml(mail.to)}</td><td><a href="${escapeHtml(messageHref(mail.id))}">${escapeHtml(mail.subject || '(no subject)')}</a></td></tr>`,
  );
  const body = mails.length
    ? ['<table>', '<thead><tr><th scope="col">Received</th><th scope="col">To</th><th scope="col">Subject</th></tr></thead>', '<tbody>', ...rows, '</tbody>', '</table>'].join('\n')
    : '<p>No mail caught yet.</p>';
  return page('Caught mail', `<h1>Caught mail</h1>\n${NOTE}\n<p>The newest ${LIST_LIMIT} messages, newest first.</p>\n${body}`);
}

// Trailing punctuation usually ends the sentence, not the URL.
const URL_IN_TEXT = /https?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]]/g;

/** The text part, HTML-escaped, with each http(s) URL a link (its href escaped as well). */
export function linkifyText(text: string): string {
  let html = '';
  let last = 0;
  for (const match of text.matchAll(URL_IN_TEXT)) {
    const url = match[0];
    html += escapeHtml(text.slice(last, match.index));
    html += `<a href="${escapeHtml(url)}">${escapeHtml(url)}</a>`;
    last = match.index + url.length;
  }
  return html + escapeHtml(text.slice(last));
}

/**
 * The HTML part for the frame's srcdoc: links open outside the frame (a page such as the
 * approval page refuses to be framed), which the sandbox allows only as a new window.
 */
function framedHtml(html: string): string {
  const base = '<base target="_blank">';
  return /<head[^>]*>/i.test(html) ? html.replace(/<head[^>]*>/i, (head) => `${head}${base}`) : `${base}${html}`;
}

function messagePage(mail: CaughtMail): string {
  const subject = mail.subject || '(no subject)';
  const headers = [
    ['Date', mail.date],
    ['From', mail.from],
    ['To', mail.to],
    ['Subject', subject],
  ]
    .map(([label, value]) => `<tr><th scope="row">${escapeHtml(label!)}</th><td>${escapeHtml(value!)}</td></tr>`)
    .join('\n');
  const parts = [
    `<p><a href="${MAILBOX_PATH}">All caught mail</a></p>`,
    `<h1>${escapeHtml(subject)}</h1>`,
    NOTE,
    `<table>\n<tbody>\n${headers}\n</tbody>\n</table>`,
    '<h2>Text part</h2>',
    mail.text ? `<pre>${linkifyText(mail.text)}</pre>` : '<p>This message has no text part.</p>',
    '<h2>HTML part</h2>',
    mail.html
      ? // No allow-scripts and no allow-same-origin: the mail runs nothing and reaches nothing of this page.
        `<iframe title="The HTML part of this message" sandbox="allow-popups allow-popups-to-escape-sandbox" srcdoc="${escapeHtml(framedHtml(mail.html))}"></iframe>`
      : '<p>This message has no HTML part.</p>',
  ];
  return page(`${subject} - caught mail`, parts.join('\n'));
}
