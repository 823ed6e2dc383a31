// Access requests as a person works with them: `jml request`, `jml requests`, `jml approve`,
// `jml deny`, `jml withdraw`. Unlike the operator commands these never read Postgres: they
// act as someone, so they go through the HTTP API with that person's bearer token
// (JML_TOKEN), and the API decides who the token is, what it may see and what it may decide.
// Every request shows its three statuses side by side (request, grant, revocation), never
// merged: an approved request whose grant failed reads `approved` and `failed`. The HTTP
// client and the printing here are shared with the JIT commands (cli/commands/jit.ts).
import { randomUUID } from 'node:crypto';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { z } from 'zod';
import { parseDuration } from '../../domain/duration.js';
import { safe, terminalSafeJson } from '../../domain/terminal-safe.js';
import { REQUEST_KINDS, REQUEST_STATUSES } from '../../domain/types.js';
import { readEnv } from '../../services/env.js';
import { clip, table } from './format.js';
import { employeeIdArgument } from './status.js';

/** How long one HTTP exchange may take before the command gives up. */
const ANSWER_WAIT_MS = 30_000;
/** The API's largest page. */
const PAGE_MAX = 200;
const DEFAULT_LIMIT = 50;
const MAX_LIMIT = 1_000;
/** A server that keeps handing out cursors (a bug, a loop) must not keep the command running. */
const MAX_PAGES = 100;

// --- the answers, as far as the CLI prints them ----------------------------------------
// Statuses are plain strings here: a newer API with a status this CLI does not know should
// still be shown, not refused. `--json` prints the answer as received, every field kept.

const text = z.string();
export const optionalText = z.string().nullable().optional();

const approvalSchema = z.object({
  stage: z.number(),
  role: text,
  approver: text,
  decision: z.string().nullable(),
  dueAt: optionalText,
  decidedBy: optionalText,
  decidedAt: optionalText,
  comment: optionalText,
  escalatedTo: optionalText,
  fallbackReason: optionalText,
});

export const viewSchema = z.object({
  id: text,
  employeeId: text,
  entitlementId: text,
  requestStatus: text,
  grantStatus: z.string().nullable(),
  revocationStatus: z.string().nullable(),
  statusReason: optionalText,
  duration: optionalText,
  createdAt: text,
  expiresAt: optionalText,
  retainedBy: z.array(text).optional(),
  grant: z.object({ lastError: z.string().nullable().optional() }).nullable().optional(),
  approvals: z.array(approvalSchema).default([]),
});
export type View = z.infer<typeof viewSchema>;

export const withdrawalSchema = viewSchema.extend({
  withdrawal: z.object({
    requestStatus: text,
    grantStatus: z.string().nullable(),
    revocationStatus: z.string().nullable(),
    retainedBy: z.array(text).default([]),
  }),
});

const pageSchema = z.object({ items: z.array(z.unknown()), nextCursor: z.string().nullable().optional() });

/** RFC 9457 problem details; a 422 policy refusal adds the rule and the field. */
const problemSchema = z.object({
  title: z.string().optional(),
  detail: z.string().optional(),
  rule: z.string().optional(),
  field: z.string().optional(),
  errors: z.array(z.object({ field: z.string(), message: z.string() })).optional(),
});

// --- the HTTP client ----------------------------------------------------------------------

export interface Answer {
  status: number;
  statusText: string;
  /** The parsed JSON body; undefined when there is none or it is not JSON. */
  body: unknown;
}

export interface Api {
  /** The base URL as shown in messages. */
  where: string;
  call(method: 'GET' | 'POST' | 'DELETE', path: string, init?: { body?: unknown; query?: Record<string, string | undefined>; headers?: Record<string, string> }): Promise<Answer>;
}

export interface ApiOptions {
  url?: string;
  json?: boolean;
}

const TOKEN_MISSING =
  'JML_TOKEN is not set. These commands act as a person through the API with their bearer token: ' +
  'create one with `jml token create --name <who> --scopes requests:write,requests:approve,jit:request --employee <employee id>` and `export JML_TOKEN=<token>`.';

/** The error code of a failed connection (ECONNREFUSED, ENOTFOUND), found in fetch's causes. */
function networkReason(err: unknown): string {
  let current: unknown = err;
  for (let depth = 0; current && depth < 5; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    const errors = (current as { errors?: unknown[] }).errors;
    current = (current as { cause?: unknown }).cause ?? (Array.isArray(errors) ? errors[0] : undefined);
  }
  return err instanceof Error ? err.message : String(err);
}

/** The API at `--url` (or PUBLIC_URL), with the token from JML_TOKEN; refused before any request when either is unusable. */
export function connect(options: ApiOptions): Api {
  const token = process.env.JML_TOKEN?.trim();
  if (!token) throw new Error(TOKEN_MISSING);
  const raw = options.url ?? readEnv().publicUrl;
  let base: URL;
  try {
    base = new URL(raw);
  } catch {
    throw new Error(`${options.url === undefined ? 'PUBLIC_URL' : '--url'} is not a URL`);
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new Error('the API URL must be http:// or https://');
  // fetch refuses such URLs, and the message would show them: the token is the credential.
  if (base.username || base.password) throw new Error('the API URL must not carry a user name or password');
  const prefix = base.pathname.replace(/\/+$/, '');
  const where = base.origin + prefix;
  return {
    where,
    async call(method, path, init = {}) {
      const url = new URL(prefix + path, base.origin);
      for (const [name, value] of Object.entries(init.query ?? {})) if (value !== undefined) url.searchParams.set(name, value);
      let response: Response;
      let bodyText: string;
      try {
        response = await fetch(url, {
          method,
          headers: {
            authorization: `Bearer ${token}`,
            accept: 'application/json, application/problem+json',
            ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
            ...init.headers,
          },
          body: init.body === undefined ? undefined : JSON.stringify(init.body),
          redirect: 'error',
          signal: AbortSignal.timeout(ANSWER_WAIT_MS),
        });
        bodyText = await response.text();
      } catch (err) {
        const reason = err instanceof Error && err.name === 'TimeoutError' ? `no answer within ${ANSWER_WAIT_MS / 1000} s` : networkReason(err);
        // One line naming where (never the token); describeError makes it terminal-safe.
        throw new Error(`cannot reach the jml API at ${where}: ${reason}`);
      }
      let body: unknown;
      try {
        body = bodyText === '' ? undefined : JSON.parse(bodyText);
      } catch {
        body = undefined;
      }
      return { status: response.status, statusText: response.statusText, body };
    },
  };
}

/**
 * POSTs something new (a request, an elevation) under a fresh Idempotency-Key, one per run:
 * the API records it once even if this exchange is repeated.
 */
export const postNew = (api: Api, path: string, body: Record<string, unknown>): Promise<Answer> => api.call('POST', path, { body, headers: { 'idempotency-key': randomUUID() } });

export const succeeded = (answer: Answer): boolean => answer.status >= 200 && answer.status < 300;

/** A 2xx answer's body in the expected shape, or an error saying the API answered something else. */
export function expectBody<S extends z.ZodType>(api: Api, answer: Answer, schema: S): z.output<S> {
  const parsed = schema.safeParse(answer.body);
  if (!parsed.success) throw new Error(`unexpected answer from the jml API at ${api.where} (HTTP ${answer.status}): not the documented JSON`);
  return parsed.data;
}

/**
 * A refused or failed call: the problem's JSON with `--json`, else what the problem says on
 * stderr (a policy refusal names its rule). Exit code 1 either way. Every value printed is
 * the server's text, so it goes through `safe`.
 */
export function refused(api: Api, answer: Answer, what: string, options: ApiOptions): void {
  process.exitCode = 1;
  if (options.json && answer.body !== undefined) {
    console.log(terminalSafeJson(answer.body));
    return;
  }
  const parsed = problemSchema.safeParse(answer.body);
  if (!parsed.success || answer.body === undefined) {
    console.error(safe`jml: ${what} failed: HTTP ${answer.status} ${answer.statusText} from ${api.where}`);
    return;
  }
  const problem = parsed.data;
  const detail = problem.detail ?? problem.title ?? answer.statusText;
  if (answer.status === 422 && problem.rule !== undefined) {
    console.error(safe`jml: ${what} refused by rule ${problem.rule}: ${detail}`);
  } else if (answer.status === 401) {
    console.error(safe`jml: the API did not accept JML_TOKEN (401): ${detail}`);
  } else {
    console.error(safe`jml: ${what} refused (${answer.status} ${problem.title ?? answer.statusText}): ${detail}`);
  }
  if (problem.field !== undefined) console.error(safe`  field: ${problem.field}`);
  for (const error of problem.errors ?? []) console.error(safe`  ${error.field}: ${error.message}`);
}

/**
 * What a command prints of an answer, up to its text: a refusal is reported (exit code 1); a
 * success's body is checked against `schema`, even with `--json`, which prints it as received.
 * Returns the view for the command to print as text; undefined when it has nothing more to print.
 */
export function answerToPrint<S extends z.ZodType>(api: Api, answer: Answer, what: string, schema: S, options: ApiOptions): z.output<S> | undefined {
  if (!succeeded(answer)) {
    refused(api, answer, what, options);
    return undefined;
  }
  const view = expectBody(api, answer, schema);
  if (options.json) {
    console.log(terminalSafeJson(answer.body));
    return undefined;
  }
  return view;
}

// --- what is printed ------------------------------------------------------------------

export const dash = (value: string | null | undefined): string => (value === null || value === undefined || value === '' ? '-' : value);

/** A server time as `YYYY-MM-DD HH:MMZ`, or as sent when it is not a time. */
export function shortTime(value: string | null | undefined): string {
  if (!value) return '-';
  const at = new Date(value);
  return Number.isNaN(at.getTime()) ? value : `${at.toISOString().slice(0, 16).replace('T', ' ')}Z`;
}

const openStage = (view: View) => view.approvals.filter((a) => a.decision === null);

/** One request: what, for whom, its three statuses side by side, and who must approve or has decided. */
export function viewLines(view: View, noun: 'request' | 'elevation' = 'request'): string[] {
  const lasting = view.duration ? safe`${view.duration}` : 'until removed';
  const lines = [safe`${noun} ${view.id}`, safe`  ${view.entitlementId} for ${view.employeeId} (${lasting}` + (view.expiresAt ? safe`, expires ${shortTime(view.expiresAt)}` : '') + ')'];
  lines.push(...table(['REQUEST', 'GRANT', 'REVOCATION'], [[view.requestStatus, view.grantStatus, view.revocationStatus]]));
  if (view.statusReason) lines.push(safe`  reason: ${view.statusReason}`);
  if (view.grant?.lastError) lines.push(safe`  grant error: ${clip(view.grant.lastError)}`);
  if (view.retainedBy?.length) lines.push(safe`  access stays: still due for ${view.retainedBy.join(', ')}`);
  const waiting = openStage(view);
  if (waiting.length) lines.push(`  waiting for: ${waiting.map((a) => safe`${a.approver} (${a.role}, stage ${a.stage})`).join('; ')}`);
  if (view.approvals.length === 0) {
    lines.push('  approvals: none');
  } else {
    lines.push('  approvals:');
    const rows = view.approvals.map((a) => [
      a.stage,
      a.role,
      a.approver,
      a.decision ?? 'waiting',
      a.decidedBy,
      a.decision === null ? `due ${shortTime(a.dueAt)}` : shortTime(a.decidedAt),
      clip(a.comment ?? a.fallbackReason ?? null, 60),
    ]);
    lines.push(...table(['STAGE', 'ROLE', 'APPROVER', 'DECISION', 'DECIDED BY', 'WHEN', 'COMMENT'], rows, '    '));
  }
  return lines;
}

export function parseLimit(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > MAX_LIMIT) throw new InvalidArgumentError(`expected a whole number from 1 to ${MAX_LIMIT}`);
  return n;
}

export function parseRequestDuration(value: string): string {
  const trimmed = value.trim();
  let ms: number;
  try {
    ms = parseDuration(trimmed);
  } catch {
    throw new InvalidArgumentError('expected a duration such as 90m, 8h or 30d');
  }
  if (ms <= 0) throw new InvalidArgumentError('expected a duration longer than 0');
  return trimmed;
}

export function nonEmpty(value: string): string {
  if (value.trim() === '') throw new InvalidArgumentError('must not be empty');
  return value;
}

/** `--url` and `--json`, which every command here takes. */
export function apiCommand(program: Command, name: string): Command {
  return program
    .command(name)
    .option('--url <url>', 'API base URL (default PUBLIC_URL)')
    .option('--json', 'print the API answer as JSON')
    .addHelpText('after', '\nActs as the person the bearer token in JML_TOKEN belongs to (jml token create --employee <id>).');
}

const requestPath = (id: string) => `/api/v1/access-requests/${encodeURIComponent(id)}`;

// --- the commands -----------------------------------------------------------------------

interface RequestOptions extends ApiOptions {
  for?: string;
  reason: string;
  employee?: string;
}

async function createRequest(entitlementId: string, options: RequestOptions): Promise<void> {
  const api = connect(options);
  const answer = await postNew(api, '/api/v1/access-requests', {
    entitlementId,
    justification: options.reason,
    ...(options.for ? { duration: options.for } : {}),
    ...(options.employee ? { employeeId: options.employee } : {}),
  });
  const view = answerToPrint(api, answer, 'request', viewSchema, options);
  if (!view) return;
  if (answer.status === 200) console.log('(the API answered with a request it already had)');
  for (const line of viewLines(view)) console.log(line);
}

export const everything = (): boolean => true;

/** A list page the API refused, carried out of the paging loop to be reported as any refusal. */
export class ListRefused extends Error {
  constructor(readonly answer: Answer) {
    super('list refused');
  }
}

interface ListOptions extends ApiOptions {
  mine?: boolean;
  pendingMyApproval?: boolean;
  status?: string;
  employee?: string;
  entitlement?: string;
  approver?: string;
  kind?: string;
  limit: number;
}

/**
 * Pages of the list at `path`, following nextCursor, until `limit` items (read with `schema`)
 * pass `keep` or the list ends. The items are returned raw (for `--json`) beside their parsed form.
 */
export async function collect<V extends View>(
  api: Api,
  path: string,
  schema: z.ZodType<V>,
  query: Record<string, string | undefined>,
  limit: number,
  keep: (view: V) => boolean,
): Promise<{ raw: unknown[]; views: V[]; more: boolean }> {
  const raw: unknown[] = [];
  const views: V[] = [];
  const filtering = keep !== everything;
  let cursor: string | undefined;
  const seen = new Set<string>();
  for (let page = 0; page < MAX_PAGES; page++) {
    // Filtering here drops items, so ask for full pages rather than what is still missing.
    const size = filtering ? PAGE_MAX : Math.min(PAGE_MAX, limit - views.length);
    const answer = await api.call('GET', path, { query: { ...query, limit: String(size), cursor } });
    if (!succeeded(answer)) throw new ListRefused(answer);
    const body = expectBody(api, answer, pageSchema);
    for (const item of body.items) {
      const view = expectBody(api, { ...answer, body: item }, schema);
      if (!keep(view)) continue;
      if (views.length === limit) return { raw, views, more: true };
      raw.push(item);
      views.push(view);
    }
    const next = body.nextCursor ?? null;
    if (next === null) return { raw, views, more: false };
    if (views.length === limit) return { raw, views, more: true };
    if (seen.has(next)) throw new Error(`the jml API at ${api.where} returned the same cursor twice`);
    seen.add(next);
    cursor = next;
  }
  return { raw, views, more: true };
}

/** A list as `requests` and `elevations` print it: its items in `columns`, or what `empty` says. */
export interface ListPrint<V extends View> {
  path: string;
  schema: z.ZodType<V>;
  query: Record<string, string | undefined>;
  keep: (view: V) => boolean;
  /** Names the list in a refusal, e.g. `listing requests`. */
  what: string;
  empty: string;
  columns: string[];
  row: (view: V) => Array<string | number | null | undefined>;
}

/**
 * Collects the list (collect: `--limit` items that `keep` passes) and prints it: as received
 * with `--json`, else as a table, saying when more exist than were shown.
 */
export async function printList<V extends View>(api: Api, options: ApiOptions & { limit: number }, list: ListPrint<V>): Promise<void> {
  let result: { raw: unknown[]; views: V[]; more: boolean };
  try {
    result = await collect(api, list.path, list.schema, list.query, options.limit, list.keep);
  } catch (err) {
    if (err instanceof ListRefused) return refused(api, err.answer, list.what, options);
    throw err;
  }
  if (options.json) return console.log(terminalSafeJson({ items: result.raw, more: result.more }));
  if (result.views.length === 0) return console.log(list.empty);
  for (const line of table(list.columns, result.views.map(list.row), '')) console.log(line);
  if (result.more) console.log(`the first ${result.views.length} shown; --limit to see more`);
}

async function listRequests(id: string | undefined, options: ListOptions): Promise<void> {
  const api = connect(options);
  if (id !== undefined) {
    const view = answerToPrint(api, await api.call('GET', requestPath(id)), `request ${id}`, viewSchema, options);
    if (view) for (const line of viewLines(view)) console.log(line);
    return;
  }
  const status = options.pendingMyApproval ? 'pending_approval' : options.status;
  const query = { status, employeeId: options.employee, entitlementId: options.entitlement, approver: options.approver, kind: options.kind };
  // A bound token already sees only requests involving its person; what is left to pick
  // here is those with a stage still open (and, given --approver, open for that approver).
  const keep = options.pendingMyApproval
    ? (view: View) => view.requestStatus === 'pending_approval' && openStage(view).some((a) => options.approver === undefined || [a.approver, a.escalatedTo].some((who) => who?.toUpperCase() === options.approver))
    : everything;
  await printList(api, options, {
    path: '/api/v1/access-requests',
    schema: viewSchema,
    query,
    keep,
    what: 'listing requests',
    empty: options.pendingMyApproval ? 'no request is waiting for an approval decision' : 'no access requests',
    columns: ['ID', 'EMPLOYEE', 'ENTITLEMENT', 'REQUEST', 'GRANT', 'REVOCATION', 'CREATED'],
    row: (v) => [v.id, v.employeeId, v.entitlementId, v.requestStatus, dash(v.grantStatus), dash(v.revocationStatus), shortTime(v.createdAt)],
  });
}

async function decide(decision: 'approve' | 'deny', id: string, options: ApiOptions & { comment?: string }): Promise<void> {
  const api = connect(options);
  const answer = await api.call('POST', `${requestPath(id)}/decision`, { body: { decision, ...(options.comment !== undefined ? { comment: options.comment } : {}) } });
  const view = answerToPrint(api, answer, decision, viewSchema, options);
  if (!view) return;
  console.log(`${decision === 'approve' ? 'approved' : 'denied'}: your decision is recorded`);
  for (const line of viewLines(view)) console.log(line);
}

async function withdraw(id: string, options: ApiOptions): Promise<void> {
  const api = connect(options);
  const answer = await api.call('DELETE', requestPath(id));
  const view = answerToPrint(api, answer, 'withdraw', withdrawalSchema, options);
  if (!view) return;
  // Removal is asked, not yet proven: the revocation status says where it is.
  console.log('withdrawal accepted');
  for (const line of viewLines({ ...view, ...view.withdrawal })) console.log(line);
}

export function registerRequestCommands(program: Command): void {
  apiCommand(program, 'request')
    .description('ask for an entitlement; prints the request with its request, grant and revocation status and who must approve')
    .argument('<entitlement>', 'the entitlement id (GET /api/v1/entitlements lists what is requestable)')
    .requiredOption('--reason <text>', 'why the access is needed (shown to the approver)', nonEmpty)
    .option('--for <duration>', 'how long the access lasts, e.g. 8h or 30d (default: until removed)', parseRequestDuration)
    .option('--employee <id>', "ask for someone else (needs an admin token)", employeeIdArgument)
    .action(createRequest);

  apiCommand(program, 'requests')
    .description('list access requests with their request, grant and revocation status side by side, or show one by id')
    .argument('[id]', 'show this request in full: statuses, approval stages, decisions')
    .addOption(new Option('--mine', 'requests involving you (the default for a token bound to a person: see below)').conflicts(['pendingMyApproval']))
    .addOption(new Option('--pending-my-approval', 'pending requests with an approval stage still open').conflicts(['mine', 'status']))
    .addOption(new Option('--status <status>', 'only requests in this request status').choices(REQUEST_STATUSES))
    .addOption(new Option('--kind <kind>', 'only requests of this kind').choices(REQUEST_KINDS))
    .option('--employee <id>', 'only requests for this person', employeeIdArgument)
    .option('--entitlement <id>', 'only requests for this entitlement')
    .option('--approver <id>', 'only requests with this approver (with --pending-my-approval: whose open stage is theirs)', employeeIdArgument)
    .option('--limit <n>', `at most this many, following the API's pages (1..${MAX_LIMIT})`, parseLimit, DEFAULT_LIMIT)
    .addHelpText(
      'after',
      '\nThe API shows a token bound to a person only the requests that involve that person (as subject,\n' +
        'requester or approver), so --mine is that list. With a token bound to nobody (admin, reader),\n' +
        '--mine lists everything the token may see. --pending-my-approval lists the pending requests with\n' +
        'an open stage among those, which includes your own requests waiting on someone else; add\n' +
        '--approver <your id> to see only those waiting on you.',
    )
    .action(async (id: string | undefined, options: ListOptions) => {
      if (id !== undefined && (options.mine || options.pendingMyApproval || options.status || options.kind || options.employee || options.entitlement || options.approver)) {
        throw new Error('give a request id or filters, not both');
      }
      await listRequests(id, options);
    });

  for (const decision of ['approve', 'deny'] as const) {
    apiCommand(program, decision)
      .description(`${decision} a request waiting on you (the token must be bound to the stage's approver, scope requests:approve)`)
      .argument('<id>', 'the request id (jml requests --pending-my-approval lists them)')
      .option('--comment <text>', 'a note kept with the decision and sent to the requester')
      .action((id: string, options: ApiOptions & { comment?: string }) => decide(decision, id, options));
  }

  apiCommand(program, 'withdraw')
    .description('withdraw a pending request, or remove access a request granted (requester or admin); access still due for another reason stays')
    .argument('<id>', 'the request id')
    .action(withdraw);
}
