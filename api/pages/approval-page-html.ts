// The approval page's HTML: plain server-rendered documents, readable and usable with
// JavaScript off (there is no script at all), one <main>, headings, a facts table, labelled
// fields. Every value that comes from data goes through escapeHtml; nothing else is
// interpolated. Pure functions: the route (api/routes/approval-page.ts) sends them.
import type { ApprovalPageView, PersonRef } from '../../db/approval-page-view.js';
import type { ApprovalRole } from '../../domain/request-view.js';
import type { RequestStatus } from '../../domain/types.js';

/** The longest comment the form takes (the textarea's maxlength, checked again on POST). */
export const COMMENT_MAX_LENGTH = 1_000;

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text made safe for HTML element content and double- or single-quoted attribute values. */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}

const STYLE = `
  body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; line-height: 1.5; color: #1a1a1a; background: #fff; margin: 0; }
  main { max-width: 42rem; margin: 0 auto; padding: 1.5rem 1rem 3rem; }
  h1 { font-size: 1.6rem; line-height: 1.25; }
  h2 { font-size: 1.2rem; margin-top: 2rem; }
  table { border-collapse: collapse; width: 100%; }
  caption { text-align: left; font-weight: 600; padding-bottom: 0.5rem; }
  th, td { text-align: left; vertical-align: top; padding: 0.4rem 0.6rem; border-bottom: 1px solid #ccc; }
  th { width: 11rem; font-weight: 600; }
  .risk-high, .risk-critical { font-weight: 700; color: #8a1c1c; }
  label { display: block; font-weight: 600; margin-bottom: 0.3rem; }
  textarea { width: 100%; box-sizing: border-box; font: inherit; padding: 0.4rem; }
  .actions { margin-top: 1rem; display: flex; gap: 1rem; flex-wrap: wrap; }
  button { font: inherit; font-weight: 600; padding: 0.6rem 1.4rem; border-radius: 4px; border: 2px solid #1a1a1a; cursor: pointer; }
  button[value="approve"] { background: #14532d; border-color: #14532d; color: #fff; }
  button[value="deny"] { background: #fff; color: #8a1c1c; border-color: #8a1c1c; }
  button:focus-visible, textarea:focus-visible { outline: 3px solid #1d4ed8; outline-offset: 2px; }
  .note { color: #444; font-size: 0.95rem; }
`;

function document(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<meta name="robots" content="noindex, nofollow">
<title>${escapeHtml(title)} - jml-engine</title>
<style>${STYLE}</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>
`;
}

export function personLabel(person: PersonRef): string {
  return person.name ? `${person.name} (${person.id})` : person.id;
}

/** An instant as people read it, in UTC (the page does not know the reader's zone), in a <time> element. */
function time(at: Date): string {
  const iso = at.toISOString();
  return `<time datetime="${escapeHtml(iso)}">${escapeHtml(`${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`)}</time>`;
}

function entitlementLabel(view: ApprovalPageView): string {
  return view.entitlement.name ? `${view.entitlement.name} (${view.entitlement.id})` : view.entitlement.id;
}

const ROLE_LABELS: Record<ApprovalRole, string> = {
  manager: 'approval by the manager',
  owner: 'approval by the resource owner',
  escalation: 'approval escalated: the first approver did not answer in time',
  mover_review: 'review after a move: keep or remove this access',
  break_glass_review: 'review of a break-glass elevation taken without approval',
};

const STATUS_LABELS: Record<RequestStatus, string> = {
  pending_approval: 'pending approval',
  approved: 'approved',
  auto_approved: 'approved automatically',
  denied: 'denied',
  expired: 'expired',
  cancelled: 'withdrawn',
};

function row(label: string, valueHtml: string): string {
  return `<tr><th scope="row">${escapeHtml(label)}</th><td>${valueHtml}</td></tr>`;
}

function factsTable(view: ApprovalPageView): string {
  const rows = [
    row('Person', escapeHtml(personLabel(view.subject))),
    ...(view.requester ? [row('Requested by', escapeHtml(personLabel(view.requester)))] : []),
    row('Access', escapeHtml(entitlementLabel(view))),
    row('Where', escapeHtml(`${view.entitlement.kind} in ${view.entitlement.target}`)),
    row('Risk', `<span class="risk-${escapeHtml(view.entitlement.risk)}">${escapeHtml(view.entitlement.risk)}</span>`),
    row('Why', view.justification ? escapeHtml(view.justification) : '<em>No reason was given.</em>'),
    row('For how long', escapeHtml(view.duration)),
    row('Request status', escapeHtml(STATUS_LABELS[view.requestStatus] ?? view.requestStatus)),
    row('This step', escapeHtml(`Stage ${view.stage}: ${ROLE_LABELS[view.role] ?? view.role}`)),
    row('Approver', escapeHtml(personLabel(view.approver))),
    row('Decide by', time(view.dueAt)),
  ];
  return `<table>
<caption>The request</caption>
<tbody>
${rows.join('\n')}
</tbody>
</table>`;
}

function heldList(view: ApprovalPageView): string {
  const who = escapeHtml(view.subject.name ?? view.subject.id);
  if (view.held.length === 0) return `<h2>What ${who} already holds</h2>\n<p>Nothing yet.</p>`;
  const items = view.held.map((e) => `<li>${escapeHtml(e.name ? `${e.name} (${e.id})` : e.id)}</li>`).join('\n');
  return `<h2>What ${who} already holds</h2>\n<ul>\n${items}\n</ul>`;
}

/** The page an open link shows: the facts and one form that decides. */
export function approvalPage(view: ApprovalPageView, csrfToken: string): string {
  const review = view.role === 'mover_review';
  const breakGlass = view.role === 'break_glass_review';
  const title = review ? 'Review access after a move' : breakGlass ? 'Review a break-glass elevation' : 'Review an access request';
  const lead = review
    ? `${escapeHtml(personLabel(view.subject))} moved. Should they keep <strong>${escapeHtml(entitlementLabel(view))}</strong>?`
    : breakGlass
      ? `${escapeHtml(personLabel(view.subject))} took <strong>${escapeHtml(entitlementLabel(view))}</strong> in an emergency, without approval. Was it justified?`
      : `${escapeHtml(personLabel(view.subject))} needs your decision on <strong>${escapeHtml(entitlementLabel(view))}</strong>.`;
  const [approveLabel, denyLabel] = review ? ['Keep access', 'Remove access'] : breakGlass ? ['Justified', 'Not justified: end it'] : ['Approve', 'Deny'];
  return document(
    title,
    `<h1>${escapeHtml(title)}</h1>
<p>${lead}</p>
${factsTable(view)}
${heldList(view)}
<h2>Your decision</h2>
<form method="post">
<input type="hidden" name="_csrf" value="${escapeHtml(csrfToken)}">
<label for="comment">Comment (optional, kept with your decision)</label>
<textarea id="comment" name="comment" rows="4" maxlength="${COMMENT_MAX_LENGTH}"></textarea>
<div class="actions">
<button type="submit" name="decision" value="approve">${approveLabel}</button>
<button type="submit" name="decision" value="deny">${denyLabel}</button>
</div>
</form>
<p class="note">Opening this page decides nothing: only these buttons do. The link works until the request is decided, withdrawn or expires.</p>`,
  );
}

/** 200 after the POST: what was decided, and what happens next (never that access is already in place). */
export function decisionResultPage(view: ApprovalPageView, decision: 'approved' | 'denied'): string {
  const what = entitlementLabel(view);
  const who = personLabel(view.subject);
  let heading: string;
  let next: string;
  if (view.role === 'mover_review') {
    heading = decision === 'approved' ? `You chose to keep ${what} for ${who}` : `You chose to remove ${what} from ${who}`;
    next = decision === 'approved' ? 'The access stays.' : 'The access will now be removed, and the removal checked in the target.';
  } else if (view.role === 'break_glass_review') {
    heading = decision === 'approved' ? `You found the break-glass elevation of ${what} by ${who} justified` : `You found the break-glass elevation of ${what} by ${who} not justified`;
    next = decision === 'approved' ? 'The review is closed and its alert resolved.' : 'The elevation ends now, if it has not already; its removal is checked in the target.';
  } else {
    heading = decision === 'approved' ? `You approved ${what} for ${who}` : `You denied ${what} for ${who}`;
    next =
      decision === 'approved'
        ? 'If the request needs no other approval, the access will now be granted and checked in the target. The requester is told by email.'
        : 'Nothing will be granted. The requester is told by email.';
  }
  return document(heading, `<h1>${escapeHtml(heading)}</h1>\n<p>${escapeHtml(next)}</p>\n<p>You can close this page.</p>`);
}

/** 410: the stage was decided. Says what was decided, by whom and when; nothing about the request. */
export function alreadyDecidedPage(state: { decision: 'approved' | 'denied' | null; decidedBy: PersonRef | null; decidedAt: Date | null }): string {
  const title = 'This request was already decided';
  let detail: string;
  if (state.decision) {
    const verb = state.decision === 'approved' ? 'approved' : 'denied';
    const by = state.decidedBy ? ` by ${escapeHtml(personLabel(state.decidedBy))}` : '';
    const at = state.decidedAt ? ` at ${time(state.decidedAt)}` : '';
    detail = `${title}: ${verb}${by}${at}.`;
  } else {
    detail = `${title}: this link was already used.`;
  }
  return document(title, `<h1>${title}</h1>\n<p>${detail}</p>\n<p>Nothing more is needed from you. You can close this page.</p>`);
}

/** 410: the link or its stage ran out of time, or the request was withdrawn. */
export function closedPage(reason: 'expired' | 'withdrawn'): string {
  const title = reason === 'expired' ? 'This link has expired' : 'This request was withdrawn';
  const detail =
    reason === 'expired'
      ? 'The time to decide on this request has passed, so this link no longer works. If the access is still needed, a new request can be made.'
      : 'This request was withdrawn or ended before a decision, so there is nothing left to decide.';
  return document(title, `<h1>${title}</h1>\n<p>${detail}</p>`);
}

/** 404 for a malformed or unknown link: it says nothing about any request. */
export function notValidPage(): string {
  const title = 'This link is not valid';
  return document(title, `<h1>${title}</h1>\n<p>Check that the whole link from the email was opened; some mail programs break long links over two lines.</p>`);
}

/** Any other answer (a stale form, a bad input, the engine unavailable): a heading and one sentence. */
export function messagePage(title: string, message: string): string {
  return document(title, `<h1>${escapeHtml(title)}</h1>\n<p>${escapeHtml(message)}</p>`);
}
