// Just-in-time elevation as a person works with it: `jml elevate`, `jml elevations`,
// `jml extend`, `jml revoke`. Like the request commands these act as someone through the HTTP
// API with their bearer token (JML_TOKEN, scope jit:request), and share those commands' HTTP
// client and printing (cli/commands/requests.ts): the three statuses side by side, then when
// the access ends and how long it has left.
import { Option, type Command } from 'commander';
import { z } from 'zod';
import { safe } from '../../domain/terminal-safe.js';
import { REQUEST_STATUSES } from '../../domain/types.js';
import {
  answerToPrint,
  apiCommand,
  connect,
  dash,
  everything,
  nonEmpty,
  optionalText,
  parseLimit,
  parseRequestDuration,
  postNew,
  printList,
  shortTime,
  viewLines,
  viewSchema,
  withdrawalSchema,
  type ApiOptions,
} from './requests.js';
import { employeeIdArgument } from './status.js';

const ELEVATIONS_PATH = '/api/v1/jit/elevations';
const elevationPath = (id: string) => `${ELEVATIONS_PATH}/${encodeURIComponent(id)}`;
const DEFAULT_LIMIT = 50;

// What the CLI reads of an elevation beyond a request's fields; a field this CLI does not
// know is kept in `--json` and ignored here.
const elevationSchema = viewSchema.extend({
  timeLeftMs: z.number().nullable().optional(),
  ticket: optionalText,
  breakGlass: z.boolean().optional(),
  extensions: z.number().optional(),
  revokedAt: optionalText,
  revocationLagMs: z.number().nullable().optional(),
});
type Elevation = z.infer<typeof elevationSchema>;

const extensionSchema = elevationSchema.extend({
  extension: z.object({ status: z.string(), expiresAt: optionalText, extensions: z.number().optional(), stage: z.number().optional() }),
});

/** Time left as `1h 5m`, `42s`; `ended` at 0; `-` before the grant starts the clock. */
export function timeLeftText(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '-';
  if (ms <= 0) return 'ended';
  const seconds = Math.ceil(ms / 1000);
  const parts: string[] = [];
  const days = Math.floor(seconds / 86_400);
  const hours = Math.floor((seconds % 86_400) / 3_600);
  const minutes = Math.floor((seconds % 3_600) / 60);
  if (days) parts.push(`${days}d`);
  if (hours) parts.push(`${hours}h`);
  if (minutes) parts.push(`${minutes}m`);
  // Seconds only when they matter: under an hour.
  if (seconds % 60 && seconds < 3_600) parts.push(`${seconds % 60}s`);
  return parts.join(' ');
}

/** One elevation: the request's lines, then its end, time left, ticket, break-glass and extensions. */
function elevationLines(view: Elevation): string[] {
  const lines = viewLines(view, 'elevation');
  const ends = [`time left ${timeLeftText(view.timeLeftMs)}`];
  if (view.revokedAt) ends.push(safe`revoked ${shortTime(view.revokedAt)}` + (typeof view.revocationLagMs === 'number' ? ` (${(view.revocationLagMs / 1000).toFixed(1)} s after expiry)` : ''));
  lines.push(`  ${ends.join(', ')}`);
  const extras: string[] = [];
  if (view.ticket) extras.push(safe`ticket ${view.ticket}`);
  if (view.breakGlass) extras.push('BREAK-GLASS (the owner reviews it)');
  if (view.extensions) extras.push(`extended ${view.extensions} time(s)`);
  if (extras.length) lines.push(`  ${extras.join(', ')}`);
  return lines;
}

// --- the commands -----------------------------------------------------------------------

interface ElevateOptions extends ApiOptions {
  for?: string;
  reason: string;
  ticket?: string;
  breakGlass?: boolean;
  employee?: string;
}

async function elevate(entitlementId: string, options: ElevateOptions): Promise<void> {
  const api = connect(options);
  const answer = await postNew(api, ELEVATIONS_PATH, {
    entitlementId,
    justification: options.reason,
    ...(options.for ? { duration: options.for } : {}),
    ...(options.ticket !== undefined ? { ticket: options.ticket } : {}),
    ...(options.breakGlass ? { breakGlass: true } : {}),
    ...(options.employee ? { employeeId: options.employee } : {}),
  });
  const view = answerToPrint(api, answer, 'elevation', elevationSchema, options);
  if (!view) return;
  if (answer.status === 200) console.log('(the API answered with an elevation it already had)');
  for (const line of elevationLines(view)) console.log(line);
}

interface ElevationsOptions extends ApiOptions {
  all?: boolean;
  status?: string;
  employee?: string;
  entitlement?: string;
  limit: number;
}

/** Not ended: waiting for approval or the grant (no clock yet), or time still left. */
const current = (view: Elevation): boolean => view.timeLeftMs === null || view.timeLeftMs === undefined || view.timeLeftMs > 0;

async function listElevations(id: string | undefined, options: ElevationsOptions): Promise<void> {
  const api = connect(options);
  if (id !== undefined) {
    const view = answerToPrint(api, await api.call('GET', elevationPath(id)), `elevation ${id}`, elevationSchema, options);
    if (view) for (const line of elevationLines(view)) console.log(line);
    return;
  }
  await printList(api, options, {
    path: ELEVATIONS_PATH,
    schema: elevationSchema,
    query: { status: options.status, employeeId: options.employee, entitlementId: options.entitlement },
    keep: options.all ? everything : current,
    what: 'listing elevations',
    empty: options.all ? 'no elevations' : 'no current elevations (--all shows those that ended)',
    columns: ['ID', 'EMPLOYEE', 'ENTITLEMENT', 'REQUEST', 'GRANT', 'REVOCATION', 'EXPIRES AT', 'TIME LEFT'],
    row: (v) => [v.id, v.employeeId, v.entitlementId, v.requestStatus, dash(v.grantStatus), dash(v.revocationStatus), shortTime(v.expiresAt), timeLeftText(v.timeLeftMs)],
  });
}

async function extend(id: string, options: ApiOptions & { for: string }): Promise<void> {
  const api = connect(options);
  const answer = await api.call('POST', `${elevationPath(id)}/extend`, { body: { duration: options.for } });
  const view = answerToPrint(api, answer, 'extension', extensionSchema, options);
  if (!view) return;
  const { extension } = view;
  if (extension.status === 'extended') console.log(safe`extended: now expires ${shortTime(extension.expiresAt)}`);
  else console.log(`the extension waits for approval (stage ${extension.stage ?? '?'}); the elevation keeps its current end until then`);
  for (const line of elevationLines(view)) console.log(line);
}

async function revoke(id: string, options: ApiOptions): Promise<void> {
  const api = connect(options);
  const answer = await api.call('POST', `${elevationPath(id)}/revoke`);
  const view = answerToPrint(api, answer, 'revoke', withdrawalSchema.extend(elevationSchema.shape), options);
  if (!view) return;
  // Removal is asked, not yet proven: the revocation status says where it is.
  console.log('revocation accepted');
  for (const line of elevationLines({ ...view, ...view.withdrawal })) console.log(line);
}

export function registerJitCommands(program: Command): void {
  apiCommand(program, 'elevate')
    .description('elevate to a privileged entitlement for a while; the access ends by itself (prints the elevation with its statuses and time left)')
    .argument('<entitlement>', 'the entitlement id (GET /api/v1/entitlements shows what can be elevated to)')
    .requiredOption('--reason <text>', 'why the access is needed (shown to the approver, kept with the elevation)', nonEmpty)
    .option('--for <duration>', "how long, e.g. 30m or 2h (default: the entitlement's default duration)", parseRequestDuration)
    .option('--ticket <ref>', 'a change or incident reference (some entitlements require one)')
    .option('--break-glass', 'an emergency: granted at once without approval where the policy allows it; raises a critical alert and a review by the owner')
    .option('--employee <id>', 'elevate someone else (needs an admin token)', employeeIdArgument)
    .action(elevate);

  apiCommand(program, 'elevations')
    .description('list your elevations (everyone\'s for an admin or reader token) with their statuses, expiry and time left, or show one by id')
    .argument('[id]', 'show this elevation in full')
    .option('--all', 'also the elevations that ended (default: pending and current only)')
    .addOption(new Option('--status <status>', 'only elevations in this request status').choices(REQUEST_STATUSES))
    .option('--employee <id>', 'only elevations of this person', employeeIdArgument)
    .option('--entitlement <id>', 'only elevations of this entitlement')
    .option('--limit <n>', 'at most this many', parseLimit, DEFAULT_LIMIT)
    .action(async (id: string | undefined, options: ElevationsOptions) => {
      if (id !== undefined && (options.all || options.status || options.employee || options.entitlement)) throw new Error('give an elevation id or filters, not both');
      await listElevations(id, options);
    });

  apiCommand(program, 'extend')
    .description('extend an active elevation (the policy decides again; it may need approval again)')
    .argument('<id>', 'the elevation id (jml elevations lists them)')
    .requiredOption('--for <duration>', 'how much longer than the current expiry, e.g. 30m', parseRequestDuration)
    .action(extend);

  apiCommand(program, 'revoke')
    .description('end an elevation now (the subject, the requester or an admin); access still due for another reason stays')
    .argument('<id>', 'the elevation id')
    .action(revoke);
}
