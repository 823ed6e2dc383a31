// The approval page, opened from the "Review request" link an approver is emailed:
//   GET  /approvals/:token  (and HEAD) shows the request and, while the link is open, one form;
//   POST /approvals/:token  decides, with a CSRF nonce, through the approval workflow's Update.
// GET and HEAD never decide and never use up the token: mail scanners (Outlook Safe Links,
// Mimecast, Proofpoint) open every link in a message, and workflow tools that decided on GET
// were tricked that way (activepieces #14024). Pages are HTML with no script, and every answer
// here, errors included, is a page rather than a problem document: a person reads it.
// The token sits in the URL, so nothing is cached, no Referer leaves the page, and robots
// are asked not to index it. Hidden from the OpenAPI document: it is not part of the JSON API.
import fastifyCookie from '@fastify/cookie';
import fastifyCsrfProtection from '@fastify/csrf-protection';
import fastifyFormbody from '@fastify/formbody';
import type { Client } from '@temporalio/client';
import type { FastifyError, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { approvalByToken, type ApprovalPageView } from '../../db/approval-page-view.js';
import type { Db } from '../../db/client.js';
import { textProblem } from '../../domain/attributes.js';
import { decideStage, DecisionRefused } from '../../services/decisions.js';
import { hashToken } from '../auth.js';
import { alreadyDecidedPage, approvalPage, closedPage, COMMENT_MAX_LENGTH, decisionResultPage, messagePage, notValidPage } from '../pages/approval-page-html.js';
import { isDatabaseUnavailable, ProblemError, safeErrorInfo } from '../problem.js';

export const APPROVALS_PATH = '/approvals';
const CSRF_COOKIE = 'jml_approval_csrf';
/** The form is a decision, a comment of at most 1000 characters and a nonce: far below this. */
const FORM_BODY_LIMIT = 16 * 1024;

export interface ApprovalPageOptions {
  db: Db;
  /** Absent (no Temporal client): the page shows, but a decision answers 503. */
  temporal?: Client;
}

/** Sent with every page: the token is in the URL, and the page runs no script and is framed by nobody. */
export const PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-frame-options': 'DENY',
  'x-robots-tag': 'noindex',
} as const;

function sendPage(reply: FastifyReply, status: number, html: string): FastifyReply {
  return reply.code(status).headers(PAGE_HEADERS).send(html);
}

const formSchema = z.object({
  decision: z.enum(['approve', 'deny']),
  comment: z.string().optional(),
});

/**
 * The comment as it is kept: one line (a textarea's line breaks become spaces, so it meets
 * the one text rule of every input, as a comment sent through the API must), trimmed, NFC.
 * Returns the comment (null when empty) or what is wrong with it.
 */
export function commentFromForm(raw: string | undefined): { comment: string | null } | { problem: string } {
  if (raw === undefined) return { comment: null };
  const folded = raw.replace(/\r\n|\r|\n|\t/g, ' ').trim().normalize('NFC');
  if (folded.length === 0) return { comment: null };
  const problem = textProblem(folded, COMMENT_MAX_LENGTH);
  return problem ? { problem: `The comment ${problem}.` } : { comment: folded };
}

function tokenOf(request: FastifyRequest): string {
  return (request.params as { token?: string }).token ?? '';
}

/** The 410 page for a link that can no longer decide, or null while it is open. */
function endedPage(view: ApprovalPageView): string | null {
  if (view.token.state === 'used') return alreadyDecidedPage(view.token);
  if (view.token.state === 'expired') return closedPage(view.token.reason);
  return null;
}

/** Errors in this scope (a stale form, a body too large, the database down) answer as pages too. */
function pageErrorHandler(error: FastifyError | Error, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const code = (error as FastifyError).code;
  if (code === 'FST_CSRF_MISSING_SECRET' || code === 'FST_CSRF_INVALID_TOKEN') {
    return sendPage(reply, 403, messagePage('This form expired', 'This form expired, reload the page and decide again. Nothing was decided.'));
  }
  if (error instanceof ProblemError) {
    // The limits and the shutdown refusal raised by the app's own hooks, with their Retry-After.
    if (error.problem.headers) reply.headers(error.problem.headers);
    return sendPage(reply, error.statusCode, messagePage(error.problem.title, error.problem.detail ?? error.problem.title));
  }
  if (isDatabaseUnavailable(error)) {
    request.log.warn({ err: safeErrorInfo(error) }, 'approval page: database unavailable');
    reply.header('retry-after', '5');
    return sendPage(reply, 503, messagePage('Please try again shortly', 'The service is busy or restarting. Nothing was decided; reload the page in a moment.'));
  }
  const status = (error as FastifyError).statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    // Fastify's own refusals (body too large, a content type it does not read): the form is
    // sent as a web form by the page itself, so say only that.
    return sendPage(reply, status, messagePage('This form could not be read', 'Reload the page and send the form again. Nothing was decided.'));
  }
  request.log.error({ err: safeErrorInfo(error) }, 'approval page: unhandled error');
  return sendPage(reply, 500, messagePage('Something went wrong', 'An unexpected error occurred and has been logged. Nothing was decided.'));
}

export const approvalPageRoutes: FastifyPluginAsync<ApprovalPageOptions> = async (app, opts) => {
  // Registered here, so the cookie parser, the form parser and the CSRF check exist in this
  // scope only: the JSON API neither reads cookies nor accepts forms.
  await app.register(fastifyCookie);
  await app.register(fastifyFormbody, { bodyLimit: FORM_BODY_LIMIT });
  await app.register(fastifyCsrfProtection, {
    cookieKey: CSRF_COOKIE,
    cookieOpts: { path: APPROVALS_PATH, sameSite: 'strict', httpOnly: true, secure: app.deps.publicUrl.startsWith('https:') },
    // The nonce comes from the form only; the page is the one client.
    getToken: (request) => {
      const nonce = (request.body as { _csrf?: unknown } | undefined)?._csrf;
      return typeof nonce === 'string' ? nonce : undefined;
    },
  });
  app.setErrorHandler(pageErrorHandler);

  // Fastify answers HEAD with this handler, body dropped: it reads and never writes.
  app.get(`${APPROVALS_PATH}/:token`, { schema: { hide: true } }, async (request, reply) => {
    const view = await approvalByToken(opts.db, tokenOf(request));
    if (!view) return sendPage(reply, 404, notValidPage());
    const ended = endedPage(view);
    if (ended) return sendPage(reply, 410, ended);
    return sendPage(reply, 200, approvalPage(view, reply.generateCsrf()));
  });

  app.post(
    `${APPROVALS_PATH}/:token`,
    { schema: { hide: true }, bodyLimit: FORM_BODY_LIMIT, preValidation: app.csrfProtection },
    async (request, reply) => {
      const token = tokenOf(request);
      const view = await approvalByToken(opts.db, token);
      if (!view) return sendPage(reply, 404, notValidPage());
      // A second POST (a double click, a retried form) finds the decision and shows it.
      const ended = endedPage(view);
      if (ended) return sendPage(reply, 410, ended);

      const form = formSchema.safeParse(request.body ?? {});
      if (!form.success) return sendPage(reply, 400, messagePage('Choose approve or deny', 'The form did not say approve or deny, so nothing was decided. Reload the page and press one of the two buttons.'));
      const comment = commentFromForm(form.data.comment);
      if ('problem' in comment) return sendPage(reply, 400, messagePage('The comment cannot be kept', `${comment.problem} Nothing was decided; go back and change it.`));

      if (!opts.temporal) {
        reply.header('retry-after', '30');
        return sendPage(reply, 503, messagePage('Decisions cannot be taken right now', 'The workflow engine is not available to this server. Nothing was decided; try again later.'));
      }
      const decision = form.data.decision === 'approve' ? 'approved' : 'denied';
      try {
        await decideStage(opts.temporal, view.requestId, view.stage, {
          approverId: view.approver.id,
          decision,
          comment: comment.comment,
          via: 'email',
          tokenHash: hashToken(token),
        });
      } catch (err) {
        return sendPage(reply, ...(await refusedPage(opts.db, token, err, request)));
      }
      return sendPage(reply, 200, decisionResultPage(view, decision));
    },
  );
};

/** The page for a decision the workflow refused or that could not be delivered. */
async function refusedPage(db: Db, token: string, err: unknown, request: FastifyRequest): Promise<[number, string]> {
  if (err instanceof DecisionRefused && (err.code === 'already_decided' || err.code === 'stage_closed')) {
    // The stage ended since the page was read (another approver, a second tab, the deadline):
    // show what the database now says, or that it is closed.
    const now = await approvalByToken(db, token);
    const ended = now ? endedPage(now) : null;
    return [410, ended ?? messagePage('This approval is closed', err.message)];
  }
  if (err instanceof DecisionRefused) return [403, messagePage('This decision was refused', err.message)];
  // Temporal unreachable, or the answer lost on the way back: the decision may have been
  // taken, so look before saying it was not.
  request.log.warn({ err: safeErrorInfo(err) }, 'approval page: decision not delivered');
  const now = await approvalByToken(db, token).catch(() => null);
  const ended = now ? endedPage(now) : null;
  if (ended) return [410, ended];
  return [503, messagePage('Your decision was not recorded', 'The workflow engine did not answer. Nothing was decided; reload the page and try again in a moment.')];
}
