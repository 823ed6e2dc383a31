// The emails of access requests, as pure functions: facts in, `{ subject, text, html }` out.
// No I/O and no clock (a due time is passed in), so a template is tested by calling it.
//
// Each mail is built as one small document (heading, paragraphs, a table of facts, one
// link, a footer) of RAW strings, and rendered twice, as plain text and as HTML. Escaping
// happens in the two renderers only: every value is HTML-escaped on its way into the HTML,
// control and bidi characters are stripped from single-line values (a name cannot start a
// forged line in the text part, or reorder a subject), and the subject is one line.
//
// The approver's mail carries ONE link, "Review request", to a page that decides nothing
// on GET: mail scanners (Outlook Safe Links, Mimecast, Proofpoint) open every link in a
// message, so separate approve and deny links would decide on the scanner's behalf.
// The requester's `grant_failed` mail says the access is NOT in place yet: an approved
// request whose grant failed must never read as done.

export type Risk = 'low' | 'medium' | 'high' | 'critical';

export interface MailPerson {
  employeeId: string;
  /** Display name; absent: the employee id alone is shown. */
  name?: string | null;
}

export interface MailEntitlement {
  id: string;
  /** Display name; absent or equal to the id: the id alone is shown. */
  name?: string | null;
  risk: Risk;
  /** The target system's id (e.g. `corp-ldap`). */
  target: string;
}

export type ApprovalMailKind = 'request' | 'reminder' | 'escalation' | 'mover_review' | 'break_glass_review';

export interface ApprovalMailInput {
  kind: ApprovalMailKind;
  requestId: string;
  /** The person who would hold the access. */
  subject: MailPerson;
  /** Who asked, when not the subject (a manager asking for a report, an admin). */
  requester?: MailPerson | null;
  entitlement: MailEntitlement;
  justification?: string | null;
  /** e.g. `8h`; null or absent: until removed. */
  duration?: string | null;
  /** ISO 8601: when the approver's decision is due. */
  dueAt: string;
  /** The one link: the approval page (PUBLIC_URL + /approvals/<token>), built by the caller. */
  reviewUrl: string;
  /** Which stage this approver decides, for two-stage requests (`{ number: 2, of: 2, role: 'resource owner' }`). */
  stage?: { number: number; of: number; role: string } | null;
  /** escalation: the approver who did not decide in time. */
  silentApprover?: MailPerson | null;
  /** mover_review: what happens when nobody decides by `dueAt`. */
  defaultAtDeadline?: 'keep' | 'remove';
  /** mover_review: the move, as the caller words it (e.g. `from Engineering to Finance`). */
  moveDetail?: string | null;
}

export type RequesterMailKind = 'approved' | 'denied' | 'expired' | 'cancelled' | 'granted' | 'grant_failed' | 'removed' | 'retained' | 'revoke_failed' | 'expiring';

export interface RequesterMailInput {
  kind: RequesterMailKind;
  requestId: string;
  /** The person who holds (or would hold) the access. */
  subject: MailPerson;
  entitlement: MailEntitlement;
  /** Who decided (approved, denied) or acted (cancelled, removed), when a person did. */
  decidedBy?: MailPerson | null;
  /** The decider's comment, when given. */
  comment?: string | null;
  /** granted with a duration: ISO 8601 time the access ends. */
  expiresAt?: string | null;
  /** retained: what still makes the access due (`birthright rule everyone`, `request <id>`). */
  retainedBy?: string[];
  /** Why it happened, when the caller knows (`withdrawn by the requester`, `its time ran out`). */
  reason?: string | null;
  /** The request's status page (built by the caller from PUBLIC_URL). */
  statusUrl: string;
}

export interface RenderedMail {
  subject: string;
  text: string;
  html: string;
}

// ---- the approver ---------------------------------------------------------------------

export function approvalMail(input: ApprovalMailInput): RenderedMail {
  const entitlement = entitlementLabel(input.entitlement);
  const subjectPerson = personLabel(input.subject);
  const askedBy = input.requester && input.requester.employeeId !== input.subject.employeeId ? input.requester : null;
  const asking = askedBy ? `${personLabel(askedBy)} asks for access to ${entitlement} for ${subjectPerson}.` : `${subjectPerson} asks for access to ${entitlement}.`;
  const due = formatTime(input.dueAt);

  let subject: string;
  let heading: string;
  let intro: string[];
  switch (input.kind) {
    case 'request':
      subject = `Access request to review: ${entitlement} for ${subjectPerson}`;
      heading = 'An access request needs your decision';
      intro = [asking, `Please approve or deny it by ${due}.`];
      break;
    case 'reminder':
      subject = `Reminder: access request to review: ${entitlement} for ${subjectPerson}`;
      heading = 'Reminder: an access request is waiting for your decision';
      intro = [asking, `It is still waiting for your decision. Please approve or deny it by ${due}.`];
      break;
    case 'escalation': {
      const silent = input.silentApprover ? personLabel(input.silentApprover) : 'The first approver';
      subject = `Escalated: access request to review: ${entitlement} for ${subjectPerson}`;
      heading = 'An access request has been escalated to you';
      intro = [asking, `${silent} did not decide in time, so the decision is now yours. Please approve or deny it by ${due}.`];
      break;
    }
    case 'break_glass_review':
      subject = `Review a break-glass elevation: ${entitlement} taken by ${subjectPerson}`;
      heading = 'A break-glass elevation needs your review';
      intro = [
        `${subjectPerson} took ${entitlement} in an emergency, without approval. A critical alert was raised.`,
        `As its owner, please review whether it was justified, by ${due}. If it was not, your answer ends it at once.`,
      ];
      break;
    case 'mover_review': {
      const moved = input.moveDetail ? `${subjectPerson} has moved ${input.moveDetail}.` : `${subjectPerson} has moved to a new role.`;
      const byDefault = input.defaultAtDeadline === 'keep' ? 'they keep it' : 'it is removed';
      subject = `Review access after a move: ${entitlement} for ${subjectPerson}`;
      heading = 'Access to review after a move';
      intro = [
        `${moved} They hold ${entitlement}, which was requested for their previous role.`,
        `As their manager now, please decide whether they keep this access or it is removed, by ${due}. If nobody decides by then, ${byDefault}.`,
      ];
      break;
    }
  }

  const facts: Fact[] = [
    { label: 'Request', value: input.requestId },
    { label: 'For', value: subjectPerson },
    ...(askedBy ? [{ label: 'Asked by', value: personLabel(askedBy) }] : []),
    { label: 'Access', value: entitlement },
    { label: 'Target system', value: input.entitlement.target },
    { label: 'Risk', value: input.entitlement.risk },
    { label: 'Reason given', value: input.justification?.trim() ? input.justification : '(none given)', multiline: true },
    { label: 'For how long', value: input.duration?.trim() ? input.duration : 'until removed' },
    { label: 'Decide by', value: due },
    ...(input.stage ? [{ label: 'Your stage', value: `${input.stage.number} of ${input.stage.of} (${input.stage.role})` }] : []),
    ...(input.kind === 'escalation' && input.silentApprover ? [{ label: 'Did not decide', value: personLabel(input.silentApprover) }] : []),
    ...(input.kind === 'mover_review' ? [{ label: 'If nobody decides', value: input.defaultAtDeadline === 'keep' ? 'the access is kept' : 'the access is removed' }] : []),
  ];

  return render({
    subject,
    heading,
    intro,
    facts,
    action: { label: 'Review request', url: input.reviewUrl },
    footer: [
      'Opening the link decides nothing: the page shows the request, and you approve or deny it there.',
      'The link is for you alone, and works once. Please do not forward this email.',
    ],
  });
}

// ---- the requester ----------------------------------------------------------------------

export function requesterMail(input: RequesterMailInput): RenderedMail {
  const entitlement = entitlementLabel(input.entitlement);
  const target = input.entitlement.target;
  const decider = input.decidedBy ? personLabel(input.decidedBy) : null;
  const ends = input.expiresAt ? formatTime(input.expiresAt) : null;

  let subject: string;
  let heading: string;
  let intro: string[];
  let status: string;
  switch (input.kind) {
    case 'approved':
      subject = `Access request approved: ${entitlement}`;
      heading = 'Your access request was approved';
      intro = [
        `${decider ? `${decider} approved` : 'The request was approved for'} access to ${entitlement}.`,
        `The access is being set up on ${target} now, and checked there. You will get another email when it is ready to use.`,
      ];
      status = 'Approved; the access is being set up';
      break;
    case 'denied':
      subject = `Access request denied: ${entitlement}`;
      heading = 'Your access request was denied';
      intro = [`${decider ? `${decider} denied` : 'The approver denied'} the request for ${entitlement}. Nothing was changed on ${target}.`];
      status = 'Denied';
      break;
    case 'expired':
      subject = `Access request expired: ${entitlement}`;
      heading = 'Your access request expired';
      intro = [`Nobody decided the request for ${entitlement} in time, so it expired. Nothing was changed on ${target}. You can ask again.`];
      status = 'Expired without a decision';
      break;
    case 'cancelled':
      subject = `Access request cancelled: ${entitlement}`;
      heading = 'Your access request was cancelled';
      intro = [`The request for ${entitlement} was cancelled${decider ? ` by ${decider}` : ''}. Nothing was changed on ${target}.`];
      status = 'Cancelled';
      break;
    case 'granted':
      subject = `Access ready: ${entitlement}`;
      heading = 'Your access is ready';
      intro = [
        `${entitlement} has been set up on ${target} and checked there.`,
        ends ? `It ends at ${ends}, when it is removed automatically.` : 'It lasts until it is removed.',
      ];
      status = 'Approved; the access is set up and checked';
      break;
    case 'grant_failed':
      // Never "done": approved is not the same as in place.
      subject = `Access request approved, but the access is not in place yet: ${entitlement}`;
      heading = 'Approved, but the access is not in place yet';
      intro = [
        `The request for ${entitlement} was approved, but setting up the access on ${target} failed. The access is not in place yet.`,
        'An alert was raised and the access is being fixed. You will get another email when it is ready to use.',
      ];
      status = 'Approved; the access is not in place yet and is being fixed';
      break;
    case 'removed':
      subject = `Access removed: ${entitlement}`;
      heading = 'Your access was removed';
      intro = [`${entitlement} was removed from ${target}${decider ? ` at the request of ${decider}` : ''}, and its removal was checked there.`];
      status = 'Removed';
      break;
    case 'retained': {
      const reasons = input.retainedBy?.filter((r) => r.trim()) ?? [];
      subject = `Access kept: ${entitlement}`;
      heading = 'This request ended, but the access stays';
      intro = [
        `The access to ${entitlement} from this request was asked to be removed, but it stays on ${target}: it is still due for another reason${reasons.length ? ` (${reasons.join('; ')})` : ''}.`,
      ];
      status = 'Ended; the access stays for another reason';
      break;
    }
    case 'expiring':
      // A JIT elevation near its end: the link leads to it, where it can be extended.
      subject = `Access ends soon: ${entitlement}`;
      heading = 'Your elevated access ends soon';
      intro = [
        `${entitlement} on ${target} ends${ends ? ` at ${ends}` : ' soon'}, when it is removed automatically.`,
        'If you still need it, extend it from the link below (or `jml extend <id> --for 30m`), within what its policy allows.',
      ];
      status = 'Active; ends soon';
      break;
    case 'revoke_failed':
      subject = `Access removal not complete: ${entitlement}`;
      heading = 'The access could not be removed yet';
      intro = [
        `Removing ${entitlement} from ${target} failed: the access is still there.`,
        'An alert was raised and the removal is being retried. You will get another email when it is gone.',
      ];
      status = 'Removal failed; the access is still there and is being fixed';
      break;
  }

  const retainedBy = input.kind === 'retained' ? (input.retainedBy ?? []).filter((r) => r.trim()) : [];
  const facts: Fact[] = [
    { label: 'Request', value: input.requestId },
    { label: 'For', value: personLabel(input.subject) },
    { label: 'Access', value: entitlement },
    { label: 'Target system', value: target },
    { label: 'Status', value: status },
    ...(decider ? [{ label: input.kind === 'removed' || input.kind === 'cancelled' ? 'By' : 'Decided by', value: decider }] : []),
    ...(input.comment?.trim() ? [{ label: 'Comment', value: input.comment, multiline: true }] : []),
    ...(input.kind === 'granted' ? [{ label: 'Ends', value: ends ?? 'when removed' }] : []),
    ...(retainedBy.length ? [{ label: 'Still due because of', value: retainedBy.join('\n'), multiline: true }] : []),
    ...(input.reason?.trim() ? [{ label: 'Reason', value: input.reason, multiline: true }] : []),
  ];

  return render({
    subject,
    heading,
    intro,
    facts,
    action: { label: 'View request status', url: input.statusUrl },
    footer: ['You receive this email because you asked for this access, or it was asked for you.'],
  });
}

// ---- rendering ----------------------------------------------------------------------------

export interface Fact {
  label: string;
  value: string;
  /** Free text from a person or a target (a reason, a comment, an error): its line breaks are kept, quoted in the text part. */
  multiline?: boolean;
}

/** One mail, as raw strings: render() escapes every one of them. */
interface MailDocument {
  subject: string;
  heading: string;
  intro: string[];
  facts: Fact[];
  action: { label: string; url: string };
  footer: string[];
}

const SUBJECT_MAX = 200;

/** `&`, `<`, `>`, `"` and `'` as entities: safe in element content and in quoted attribute values. */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

// C0/C1 controls (line breaks included), and the invisible bidi controls that can make
// text read differently from what it is.
// eslint-disable-next-line no-control-regex
const CONTROL_OR_BIDI = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]+/g;
// The same minus the line feed, for free text whose lines are kept.
// eslint-disable-next-line no-control-regex
const CONTROL_OR_BIDI_BUT_LF = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]+/g;

/** One line: controls become a space, runs of spaces one. */
export function singleLine(value: string): string {
  return value.replace(CONTROL_OR_BIDI, ' ').replace(/ {2,}/g, ' ').trim();
}

/** Free text: CRLF and CR become LF, other controls a space, blank runs at the ends trimmed. */
export function multiLine(value: string): string[] {
  return value
    .replace(/\r\n?/g, '\n')
    .replace(CONTROL_OR_BIDI_BUT_LF, ' ')
    .trim()
    .split('\n')
    .map((line) => line.trimEnd());
}

/** A mail subject: one line, at most 200 characters. */
export function subjectLine(value: string): string {
  const line = singleLine(value);
  return line.length > SUBJECT_MAX ? `${line.slice(0, SUBJECT_MAX - 1)}…` : line;
}

/** Only http(s) links reach a mail: a `javascript:` or `data:` URL is a caller's bug, refused. */
function linkUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error('mail link is not an absolute URL (check PUBLIC_URL)');
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw new Error('mail link must be http or https (check PUBLIC_URL)');
  return parsed.href;
}

function personLabel(person: MailPerson): string {
  const name = person.name?.trim();
  return name && name !== person.employeeId ? `${name} (${person.employeeId})` : person.employeeId;
}

function entitlementLabel(entitlement: MailEntitlement): string {
  const name = entitlement.name?.trim();
  return name && name !== entitlement.id ? `${name} (${entitlement.id})` : entitlement.id;
}

/** `2026-12-01 09:00 UTC` from an ISO time; an unparseable value is shown as given. */
export function formatTime(iso: string): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

function render(doc: MailDocument): RenderedMail {
  const url = linkUrl(doc.action.url);
  const subject = subjectLine(doc.subject);
  return { subject, text: renderText(doc, url), html: renderHtml(doc, subject, url) };
}

/** The plain-text head every message shares: the heading underlined, the intro, and the facts. */
export function textHead(heading: string, intro: readonly string[], facts: readonly Fact[] | undefined): string[] {
  const title = singleLine(heading);
  const lines: string[] = [title, '='.repeat(title.length), ''];
  for (const paragraph of intro) lines.push(singleLine(paragraph), '');
  if (!facts) return lines;
  lines.push('Details', '-------');
  for (const fact of facts) {
    if (fact.multiline) {
      lines.push(`${singleLine(fact.label)}:`);
      // Quoted, so that free text cannot pass for the mail's own lines (or its link).
      for (const line of multiLine(fact.value)) lines.push(line ? `  > ${line}` : '  >');
    } else {
      lines.push(`${singleLine(fact.label)}: ${singleLine(fact.value)}`);
    }
  }
  return lines;
}

function renderText(doc: MailDocument, url: string): string {
  const lines = textHead(doc.heading, doc.intro, doc.facts);
  lines.push('', `${doc.action.label}: ${url}`, '');
  for (const paragraph of doc.footer) lines.push(singleLine(paragraph));
  return `${lines.join('\n')}\n`;
}

// Colours: #1a1a1a text and #0b57d0 link button on white, both above WCAG AA (4.5:1) contrast;
// the footer's #4d4d4d on white is 8.5:1. Inline styles only: mail clients drop <style>.
const FONT = "font-family:-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif";
export const CELL = 'padding:6px 12px 6px 0;vertical-align:top;border-bottom:1px solid #d0d0d0';

/** One paragraph, one line of escaped text. */
export const htmlParagraph = (text: string, style = 'margin:0 0 12px') => `<p style="${style}">${escapeHtml(singleLine(text))}</p>`;

/**
 * The accessible shell every message shares: language, title, one main landmark with the
 * heading, then `body` (already escaped HTML lines), at most `maxWidth` pixels wide.
 */
export function htmlMessage(subject: string, heading: string, body: string[], maxWidth = 640): string {
  return [
    '<!doctype html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(subject)}</title>`,
    '</head>',
    `<body style="margin:0;padding:24px;background:#ffffff;color:#1a1a1a;${FONT};font-size:16px;line-height:1.5">`,
    `<main style="max-width:${maxWidth}px;margin:0 auto">`,
    `<h1 style="font-size:22px;line-height:1.3;margin:0 0 16px">${escapeHtml(singleLine(heading))}</h1>`,
    ...body,
    '</main>',
    '</body>',
    '</html>',
    '',
  ].join('\n');
}

function renderHtml(doc: MailDocument, subject: string, url: string): string {
  const value = (fact: Fact) =>
    fact.multiline ? `<td style="${CELL};white-space:pre-wrap">${multiLine(fact.value).map(escapeHtml).join('<br>')}</td>` : `<td style="${CELL}">${escapeHtml(singleLine(fact.value))}</td>`;
  const rows = doc.facts.map((fact) => `<tr><th scope="row" style="${CELL};text-align:left;font-weight:600;white-space:nowrap">${escapeHtml(fact.label)}</th>${value(fact)}</tr>`);
  return htmlMessage(subject, doc.heading, [
    ...doc.intro.map((text) => htmlParagraph(text)),
    '<h2 style="font-size:18px;margin:24px 0 8px">Details</h2>',
    '<table style="border-collapse:collapse;margin:0 0 24px">',
    '<tbody>',
    ...rows,
    '</tbody>',
    '</table>',
    `<p style="margin:0 0 24px"><a href="${escapeHtml(url)}" style="display:inline-block;padding:12px 20px;background:#0b57d0;color:#ffffff;font-weight:600;text-decoration:underline;border-radius:4px">${escapeHtml(doc.action.label)}</a></p>`,
    ...doc.footer.map((text) => htmlParagraph(text, 'margin:0 0 8px;font-size:14px;color:#4d4d4d')),
  ]);
}
