// What an alert says to people, as pure functions: alert rows in, an email (`{ subject, text,
// html }`) or a webhook body out. No I/O and no clock (times come in as ISO strings).
//
// One alert is one email with its facts; many alerts opened at once are one digest with a
// line each. Escaping is as in mail-templates.ts: raw strings are HTML-escaped on their way
// into the HTML, single-line values lose control and bidi characters (an alert subject or a
// target's error text cannot forge a line or reorder the mail subject), free text (the last
// error) is quoted in the text part.
import { CELL, escapeHtml, formatTime, htmlMessage, htmlParagraph, multiLine, singleLine, subjectLine, textHead, type Fact, type RenderedMail } from './mail-templates.js';

/** An alert as it is delivered: the row's facts, times as ISO 8601. */
export interface AlertView {
  id: string;
  kind: string;
  severity: string;
  /** open | acknowledged | resolved, at the time of sending. */
  status: string;
  subject: string;
  details: Record<string, unknown>;
  /** How often the cause was seen while the alert was open. */
  count: number;
  firstSeenAt: string;
  lastSeenAt: string;
}

export const ALERT_WEBHOOK_TYPE = 'jml.alert';
export const ALERT_DIGEST_WEBHOOK_TYPE = 'jml.alert.digest';

/** The JSON body of a webhook (Standard Webhooks style: a type, a timestamp, the data). */
export interface AlertWebhookBody {
  type: typeof ALERT_WEBHOOK_TYPE | typeof ALERT_DIGEST_WEBHOOK_TYPE;
  timestamp: string;
  /** One line for chat tools that show `text` (Slack incoming webhooks, Teams workflows). */
  text: string;
  alerts: AlertView[];
}

const SEVERITY_ORDER: Record<string, number> = { critical: 0, warning: 1, info: 2 };

/** Most severe first, then oldest first: what a person should look at first leads. */
function bySeverity(a: AlertView, b: AlertView): number {
  return (SEVERITY_ORDER[a.severity] ?? 3) - (SEVERITY_ORDER[b.severity] ?? 3) || a.firstSeenAt.localeCompare(b.firstSeenAt) || a.id.localeCompare(b.id);
}

function headline(alert: AlertView): string {
  return `[${alert.severity}] ${alert.kind}: ${singleLine(alert.subject)}`;
}

/** `3 critical, 9 warning`, most severe first. */
function severityCounts(alerts: AlertView[]): string {
  const counts = new Map<string, number>();
  for (const alert of [...alerts].sort(bySeverity)) counts.set(alert.severity, (counts.get(alert.severity) ?? 0) + 1);
  return [...counts].map(([severity, n]) => `${n} ${severity}`).join(', ');
}

export function alertWebhookBody(alerts: AlertView[], timestamp: string): AlertWebhookBody {
  const sorted = [...alerts].sort(bySeverity);
  const digest = sorted.length > 1;
  return {
    type: digest ? ALERT_DIGEST_WEBHOOK_TYPE : ALERT_WEBHOOK_TYPE,
    timestamp,
    text: digest ? `JML: ${sorted.length} alerts opened (${severityCounts(sorted)})` : `JML alert ${headline(sorted[0]!)}`,
    alerts: sorted,
  };
}

// ---- email ------------------------------------------------------------------------------

// The details most alerts carry, under names a person reads; any other plain value is shown
// under its own key. Nested objects are left to the API and the webhook.
const DETAIL_LABELS: Record<string, string> = {
  employeeId: 'Employee',
  entitlementId: 'Access',
  target: 'Target system',
  grantId: 'Grant',
  grantStatus: 'Grant status',
  requestId: 'Request',
  eventId: 'HR event',
  type: 'Event type',
  activity: 'Activity',
  attempt: 'Attempt',
};
const ERROR_KEYS = new Set(['error', 'lastError']);
const MAX_DETAILS = 16;
const MAX_VALUE = 500;

function detailValue(value: unknown): string | undefined {
  if (typeof value === 'string') return value.length > MAX_VALUE ? `${value.slice(0, MAX_VALUE - 1)}…` : value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value) && value.length > 0 && value.every((v) => typeof v === 'string' || typeof v === 'number')) return detailValue(value.join(', '));
  return undefined;
}

function detailFacts(details: Record<string, unknown>): Fact[] {
  const known: Fact[] = [];
  const other: Fact[] = [];
  let error: Fact | undefined;
  for (const [key, raw] of Object.entries(details)) {
    const value = detailValue(raw);
    if (value === undefined || value.trim() === '') continue;
    if (ERROR_KEYS.has(key)) error ??= { label: 'Last error', value, multiline: true };
    else if (DETAIL_LABELS[key]) known.push({ label: DETAIL_LABELS[key], value });
    else other.push({ label: key, value });
  }
  return [...known, ...other].slice(0, MAX_DETAILS).concat(error ? [error] : []);
}

function seen(alert: AlertView): string {
  return alert.count === 1 ? 'once' : `${alert.count} times`;
}

const FOOTER = [
  'See, acknowledge or resolve alerts with `jml alerts --open` and `jml ack <id>`, or at GET /api/v1/alerts.',
  'You receive this email because your address is in alerts.email of the JML engine configuration.',
];

/** The email for one alert, or the digest for several opened at once. */
export function alertMail(alerts: AlertView[]): RenderedMail {
  if (alerts.length === 0) throw new Error('alertMail needs at least one alert');
  return alerts.length === 1 ? singleAlertMail(alerts[0]!) : digestMail(alerts);
}

function singleAlertMail(alert: AlertView): RenderedMail {
  const subject = subjectLine(`JML alert ${headline(alert)}`);
  const heading = `${alert.severity === 'critical' ? 'A critical' : alert.severity === 'warning' ? 'A warning' : 'An'} alert: ${alert.kind}`;
  const intro = [
    alert.subject,
    alert.count === 1 ? `First seen at ${formatTime(alert.firstSeenAt)}.` : `Seen ${seen(alert)}: first at ${formatTime(alert.firstSeenAt)}, last at ${formatTime(alert.lastSeenAt)}.`,
  ];
  const facts: Fact[] = [
    { label: 'Severity', value: alert.severity },
    { label: 'Kind', value: alert.kind },
    { label: 'Status', value: alert.status },
    ...detailFacts(alert.details),
    { label: 'Seen', value: seen(alert) },
    { label: 'First seen', value: formatTime(alert.firstSeenAt) },
    { label: 'Last seen', value: formatTime(alert.lastSeenAt) },
    { label: 'Alert id', value: alert.id },
  ];
  return {
    subject,
    text: renderText({ heading, intro, facts }),
    html: renderHtml({ heading, intro, facts }, subject),
  };
}

function digestMail(alerts: AlertView[]): RenderedMail {
  const sorted = [...alerts].sort(bySeverity);
  const counts = severityCounts(sorted);
  const subject = subjectLine(`JML alerts: ${sorted.length} opened at once (${counts})`);
  const heading = `${sorted.length} alerts opened at once`;
  const intro = [`So many alerts opened together that they come as one message: ${counts}. The most severe come first; each one is listed with its id.`];
  return {
    subject,
    text: renderText({ heading, intro, alerts: sorted }),
    html: renderHtml({ heading, intro, alerts: sorted }, subject),
  };
}

interface AlertDocument {
  heading: string;
  intro: string[];
  facts?: Fact[];
  /** A digest: a line (a table row) per alert. */
  alerts?: AlertView[];
}

function digestLine(alert: AlertView): string {
  return `${headline(alert)} (seen ${seen(alert)}, last at ${formatTime(alert.lastSeenAt)}; id ${alert.id})`;
}

function renderText(doc: AlertDocument): string {
  const lines = textHead(doc.heading, doc.intro, doc.facts);
  if (doc.alerts) {
    lines.push('Alerts', '------');
    for (const alert of doc.alerts) lines.push(`- ${singleLine(digestLine(alert))}`);
  }
  lines.push('');
  for (const paragraph of FOOTER) lines.push(singleLine(paragraph));
  return `${lines.join('\n')}\n`;
}

// The shell and style of mail-templates.ts; severity is written out in words, never shown
// by colour alone.
function renderHtml(doc: AlertDocument, subject: string): string {
  const cell = (text: string) => `<td style="${CELL}">${escapeHtml(singleLine(text))}</td>`;
  const value = (fact: Fact) => (fact.multiline ? `<td style="${CELL};white-space:pre-wrap">${multiLine(fact.value).map(escapeHtml).join('<br>')}</td>` : cell(fact.value));
  const body: string[] = [];
  if (doc.facts) {
    body.push(
      '<h2 style="font-size:18px;margin:24px 0 8px">Details</h2>',
      '<table style="border-collapse:collapse;margin:0 0 24px">',
      '<tbody>',
      ...doc.facts.map((fact) => `<tr><th scope="row" style="${CELL};text-align:left;font-weight:600;white-space:nowrap">${escapeHtml(singleLine(fact.label))}</th>${value(fact)}</tr>`),
      '</tbody>',
      '</table>',
    );
  }
  if (doc.alerts) {
    const head = ['Severity', 'Kind', 'What happened', 'Seen', 'Last seen', 'Alert id'].map((h) => `<th scope="col" style="${CELL};text-align:left;font-weight:600">${h}</th>`);
    body.push(
      '<table style="border-collapse:collapse;margin:0 0 24px">',
      `<caption style="text-align:left;font-size:18px;font-weight:600;margin:24px 0 8px">Alerts (${doc.alerts.length})</caption>`,
      `<thead><tr>${head.join('')}</tr></thead>`,
      '<tbody>',
      ...doc.alerts.map(
        (alert) =>
          `<tr><th scope="row" style="${CELL};text-align:left;font-weight:600">${escapeHtml(singleLine(alert.severity))}</th>${[alert.kind, alert.subject, seen(alert), formatTime(alert.lastSeenAt), alert.id].map(cell).join('')}</tr>`,
      ),
      '</tbody>',
      '</table>',
    );
  }
  return htmlMessage(
    subject,
    doc.heading,
    [...doc.intro.map((text) => htmlParagraph(text)), ...body, ...FOOTER.map((text) => htmlParagraph(text, 'margin:0 0 8px;font-size:14px;color:#4d4d4d'))],
    doc.alerts ? 960 : 640,
  );
}
