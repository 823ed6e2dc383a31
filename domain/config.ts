// The shape of jml.config.yaml. Parsing is pure (text in, typed config or a list of
// problems out); reading the file and the environment happens in the callers.
import { z } from 'zod';
import { parseDuration } from './duration.js';
import { ENTITLEMENT_KINDS } from './types.js';

const duration = z.union([z.string(), z.number()]).transform((value, ctx) => {
  if (typeof value === 'number') return value * 1000; // bare numbers are seconds
  try {
    return parseDuration(value);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
});

const ldapUrl = z.string().regex(/^ldaps?:\/\/.+/, 'expected an ldap:// URL');
const dn = z.string().min(3).regex(/=/, 'expected a distinguished name such as ou=people,dc=example,dc=com');

const ldapTarget = z.object({
  id: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'expected a lower-case id'),
  type: z.literal('ldap'),
  /** Empty means: `npm start` runs a local slapd and fills this in. */
  url: ldapUrl.optional(),
  bindDN: dn,
  bindPassword: z.string().min(1),
  baseDN: dn,
  usersDN: dn,
  groupsDN: dn,
  /** How a disabled account is enforced by this directory. */
  disable: z
    .object({
      method: z.enum(['ppolicy', 'move']).default('ppolicy'),
      disabledDN: dn.optional(),
    })
    .default({ method: 'ppolicy' }),
  timeout: duration.default(10_000),
  /**
   * Reconcile repairs the drift it finds in this target (missing access granted again,
   * unexpected access removed, each verified by read-back and audited) instead of only
   * alerting. The engine's view wins. Absent or false: alert only. (Optional in the parsed
   * type too, so targets built in code need not state it.)
   */
  autoRemediate: z.boolean().optional(),
});

const httpUrl = z.string().url().refine((u) => /^https?:\/\//.test(u), 'expected an http(s):// URL');

/** How the engine authenticates to a SCIM service provider (RFC 7644 §2): a bearer token, or OAuth 2.0 client credentials (RFC 6749 §4.4). */
const scimAuth = z.discriminatedUnion('type', [
  z.object({ type: z.literal('bearer'), token: z.string().min(1) }).strict(),
  z
    .object({
      type: z.literal('oauth2'),
      tokenUrl: httpUrl,
      clientId: z.string().min(1),
      clientSecret: z.string().min(1),
      /** Space-separated scopes asked for, if the authorization server wants them. */
      scope: z.string().min(1).optional(),
    })
    .strict(),
]);

/**
 * A SCIM 2.0 service provider (RFC 7643/7644): Okta, Entra, Slack, GitHub Enterprise and
 * most SaaS. The engine finds its users by `externalId` (the employee id); groups are named
 * by their SCIM `id` in entitlements' `ref`.
 */
const scimTarget = z
  .object({
    id: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'expected a lower-case id'),
    type: z.literal('scim'),
    /** The SCIM base URL, e.g. https://example.com/scim/v2 (`/Users` and `/Groups` are below it). */
    url: httpUrl,
    auth: scimAuth,
    /** The identity attribute sent as `userName` (e.g. email); `employeeId` sends the employee id. */
    userName: z.string().min(1).default('employeeId'),
    /** Calls in flight at once to this target, and calls started per second at most. */
    concurrency: z.number().int().min(1).max(64).default(4),
    ratePerSecond: z.number().min(0.1).max(1_000).default(10),
    /** Resources per page when reconcile lists the target. */
    pageSize: z.number().int().min(1).max(1_000).default(100),
    timeout: duration.default(10_000),
    /** As for LDAP targets: reconcile repairs what it finds instead of only alerting. */
    autoRemediate: z.boolean().optional(),
  })
  .strict();

const target = z.discriminatedUnion('type', [ldapTarget, scimTarget]);

/** Who may elevate: everyone active (true), nobody (false), or whoever matches one of the rules. */
const jitEligibilityRule = z
  .object({
    /** Attribute -> accepted value(s), as in birthright rules; all must match. */
    when: z.record(z.string(), z.union([z.string(), z.array(z.string()).min(1)])).default({}),
    /** Entitlements the person must hold (a live grant), all of them. */
    holds: z.array(z.string()).default([]),
  })
  .strict();

/**
 * Just-in-time elevation of one entitlement: who may (`eligible`), for how long
 * (`defaultDuration`, at most `maxDuration`, per elevation and per extension), who approves
 * (`approval`), whether a ticket is needed (`ticketRequired`, matching `ticketPattern`), how
 * long after an elevation ends the next may start (`cooldown`), how often it may be extended
 * (`maxExtensions`), and whether it may be taken at once in an emergency (`breakGlass`: no
 * approval, a critical alert, and a review the owner closes afterwards). The requester is
 * emailed `warnBefore` the end. `requiresApproval` (older files): true is `approval: manager`,
 * false is `approval: none`.
 */
const jitPolicy = z
  .object({
    eligible: z.union([z.boolean(), jitEligibilityRule, z.array(jitEligibilityRule).min(1)]).default(false),
    maxDuration: duration.default(4 * 3_600_000),
    defaultDuration: duration.optional(),
    approval: z.enum(['none', 'manager', 'owner', 'manager_then_owner']).optional(),
    requiresApproval: z.boolean().optional(),
    ticketRequired: z.boolean().default(false),
    ticketPattern: z
      .string()
      .refine((p) => {
        try {
          new RegExp(p, 'u');
          return true;
        } catch {
          return false;
        }
      }, 'must be a valid regular expression')
      .optional(),
    cooldown: duration.default(0),
    maxExtensions: z.number().int().min(0).max(100).default(2),
    breakGlass: z.boolean().default(false),
    warnBefore: duration.default(10 * 60_000),
  })
  .strict()
  .superRefine((jit, ctx) => {
    if (jit.approval !== undefined && jit.requiresApproval !== undefined) ctx.addIssue({ code: 'custom', path: ['requiresApproval'], message: 'give approval or requiresApproval, not both' });
    if (jit.defaultDuration !== undefined && jit.defaultDuration > jit.maxDuration) ctx.addIssue({ code: 'custom', path: ['defaultDuration'], message: 'must not be longer than maxDuration' });
    if (jit.maxDuration <= 0) ctx.addIssue({ code: 'custom', path: ['maxDuration'], message: 'must be longer than 0' });
  })
  .transform(({ requiresApproval, ...jit }) => ({ ...jit, approval: jit.approval ?? (requiresApproval === false ? ('none' as const) : ('manager' as const)) }));

const entitlement = z.object({
  id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]*$/, 'expected an id of letters, digits, . _ : -'),
  name: z.string().optional(),
  target: z.string(),
  kind: z.enum(ENTITLEMENT_KINDS),
  /** The object in the target: a group DN for LDAP groups; unused for accounts. */
  ref: z.string().optional(),
  risk: z.enum(['low', 'medium', 'high', 'critical']).default('low'),
  /** The resource owner's employee id: approves requests routed to `owner`. */
  owner: z.string().optional(),
  requestable: z.boolean().default(false),
  /** Who approves a request for it; absent: `approval.approver`. */
  approver: z.enum(['manager', 'owner', 'manager_then_owner']).optional(),
  /** The longest a requested grant may last (a request must then give a duration); absent: no limit. */
  maxDuration: duration.optional(),
  jit: jitPolicy.optional(),
});

const matchValue = z.union([z.string(), z.array(z.string()).min(1)]);
const birthrightRule = z.object({
  name: z.string().min(1),
  /** Attribute -> accepted value(s). All must match; an empty `when` matches everyone. */
  when: z.record(z.string(), matchValue).default({}),
  grant: z.array(z.string()).min(1),
});

/**
 * How requests are approved. Each stage's approver is reminded once at `reminderAfter`, the
 * stage escalates once to the approver's manager at `escalateAfter`, and ends `expired` at
 * `timeout` (each from the stage's start). A stage whose approver is missing, not active or
 * the subject goes to `fallbackApprover`, or the request is refused. A mover's requested
 * access goes to the new manager to keep or remove; without an answer within
 * `moverReview.timeout`, `moverReview.default` applies (remove: the safe side).
 */
const approvalPolicy = z
  .object({
    approver: z.enum(['manager', 'owner', 'manager_then_owner']).default('manager'),
    fallbackApprover: z.string().min(1).optional(),
    timeout: duration.default(3 * 86_400_000),
    reminderAfter: duration.default(86_400_000),
    escalateAfter: duration.default(2 * 86_400_000),
    moverReview: z
      .object({ timeout: duration.default(7 * 86_400_000), default: z.enum(['remove', 'keep']).default('remove') })
      .strict()
      .default({ timeout: 7 * 86_400_000, default: 'remove' }),
  })
  .strict()
  .superRefine((a, ctx) => {
    if (!(a.reminderAfter < a.timeout)) ctx.addIssue({ code: 'custom', path: ['reminderAfter'], message: 'must be shorter than timeout' });
    if (!(a.escalateAfter < a.timeout)) ctx.addIssue({ code: 'custom', path: ['escalateAfter'], message: 'must be shorter than timeout' });
  })
  .default({ approver: 'manager', timeout: 3 * 86_400_000, reminderAfter: 86_400_000, escalateAfter: 2 * 86_400_000, moverReview: { timeout: 7 * 86_400_000, default: 'remove' } });

/** Outgoing mail (SMTP_URL says where to): the sender of approval requests and notices. */
const mail = z
  .object({ from: z.string().min(3).default('jml-engine <jml@localhost>') })
  .strict()
  .default({ from: 'jml-engine <jml@localhost>' });

const lifecycle = z
  .object({
    preProvisionLead: duration.default(0),
    /** Pre-provisioned accounts stay disabled until the start date (false: enabled at once). */
    preProvisionDisabled: z.boolean().default(true),
    moverGracePeriod: duration.default(0),
    deleteAfter: duration.default(30 * 86_400_000),
    grantSla: duration.default(15 * 60_000),
  })
  .default({ preProvisionLead: 0, preProvisionDisabled: true, moverGracePeriod: 0, deleteAfter: 30 * 86_400_000, grantSla: 15 * 60_000 });

/**
 * Connector calls retry `maximumAttempts` times from `initialInterval` to `maximumInterval`.
 * When that budget is spent the step fails with an alert, and the whole step is tried again
 * on `afterFailure`'s backoff until it succeeds: a directory outage never leaves a leaver
 * with access, nor a joiner without it, for good.
 */
const afterFailure = z
  .object({ initialInterval: duration.default(30_000), maximumInterval: duration.default(15 * 60_000) })
  .default({ initialInterval: 30_000, maximumInterval: 15 * 60_000 });

const retries = z
  .object({
    initialInterval: duration.default(1_000),
    maximumInterval: duration.default(60_000),
    maximumAttempts: z.number().int().min(1).max(100).default(8),
    afterFailure,
  })
  .default({ initialInterval: 1_000, maximumInterval: 60_000, maximumAttempts: 8, afterFailure: { initialInterval: 30_000, maximumInterval: 15 * 60_000 } });

/** The mass-leaver brake: a feed that would terminate more than this is held. */
const brake = z
  .object({
    /** Terminations within `window`, from every feed, above this number trip the brake (0 disables the number test). */
    maxTerminations: z.number().int().min(0).default(25),
    /** ...or above this share of active identities (0..1; 0 disables the share test). */
    maxShare: z.number().min(0).max(1).default(0.05),
    /** The share test applies from this many terminations on, so one leaver in a small org is not held. */
    minTerminations: z.number().int().min(1).default(5),
    /** The rolling window over which the brake counts terminations from every feed (webhook, SCIM, CSV, API). */
    window: duration.default(15 * 60_000),
  })
  .default({ maxTerminations: 25, maxShare: 0.05, minTerminations: 5, window: 15 * 60_000 });

/** SCIM attribute path (core or extension, `urn:...:User:department`) -> identity attribute. */
const scim = z
  .object({
    attributeMap: z.record(z.string(), z.string()).default({}),
    /** Identity attributes a SCIM user must carry (after mapping); others still go through. */
    required: z.array(z.string()).default(['givenName', 'familyName']),
  })
  .default({ attributeMap: {}, required: ['givenName', 'familyName'] });

/** CSV column -> identity attribute; special keys describe status columns. */
const csv = z
  .object({
    columns: z.record(z.string(), z.string()).default({}),
    employeeIdColumn: z.string().default('WorkerID'),
    statusColumn: z.string().default('WorkerStatus'),
    activeValues: z.array(z.string()).default(['Active']),
    onLeaveColumn: z.string().optional().default('OnLeave'),
    onLeaveValues: z.array(z.string()).default(['True', 'true', 'yes', '1']),
    hireDateColumn: z.string().optional().default('HireDate'),
  })
  .default({ columns: {}, employeeIdColumn: 'WorkerID', statusColumn: 'WorkerStatus', activeValues: ['Active'], onLeaveColumn: 'OnLeave', onLeaveValues: ['True', 'true', 'yes', '1'], hireDateColumn: 'HireDate' });

/** A duration of at least one second (a shorter rate-limit window would count almost nothing). */
const windowDuration = duration.refine((ms) => ms >= 1_000, 'must be at least 1s');

/**
 * The API's request limits, counted in memory by each API process (@fastify/rate-limit's
 * local store) and checked before a request's body is read. Strict: a misspelt key would
 * otherwise fall back to the default without a word.
 */
const rateLimit = z
  .object({
    /** Requests per `window` from one client address, and (counted apart) with one bearer token. */
    max: z.number().int().min(1).default(3_000),
    window: windowDuration.default(60_000),
    /** Failed authentications (any 401: unknown token, bad webhook signature) per client within `failedAuthWindow`; past that, the client's every request is a 429 until the window ends. */
    failedAuthMax: z.number().int().min(1).default(20),
    failedAuthWindow: windowDuration.default(15 * 60_000),
  })
  .strict()
  .default({ max: 3_000, window: 60_000, failedAuthMax: 20, failedAuthWindow: 15 * 60_000 });

const api = z
  .object({
    rateLimit,
    /**
     * Which proxies' X-Forwarded-For to believe for the client address (Fastify's
     * `trustProxy`): false (default: the peer is the client), true (any), or a list of
     * addresses / CIDRs of the load balancers. Behind a proxy and without it, every client
     * is the proxy, and one client's failed logins would lock everyone out.
     */
    trustProxy: z.union([z.boolean(), z.array(z.string().min(1)).min(1)]).default(false),
  })
  .strict()
  .default({ rateLimit: { max: 3_000, window: 60_000, failedAuthMax: 20, failedAuthWindow: 15 * 60_000 }, trustProxy: false });

/**
 * Where alerts go: each new (or reopened) alert is emailed to `email` and posted to each
 * `webhook` URL signed as Standard Webhooks with `webhookSecret` (`whsec_…`). At most
 * `ratePerMinute` messages a minute per channel; when more than `digestAfter` alerts wait at
 * once, they go as one digest. Without any recipient, alerts are only shown (API, CLI).
 */
const alerts = z
  .object({
    email: z.array(z.string().email()).default([]),
    webhook: z.array(z.string().url().refine((u) => /^https?:/.test(u), 'must be an http(s) URL')).default([]),
    webhookSecret: z.string().regex(/^whsec_[A-Za-z0-9+/=]+$/, 'expected a whsec_… secret').optional(),
    ratePerMinute: z.number().int().min(1).max(10_000).default(30),
    digestAfter: z.number().int().min(1).default(5),
  })
  .strict()
  .superRefine((a, ctx) => {
    if (a.webhook.length > 0 && !a.webhookSecret) ctx.addIssue({ code: 'custom', path: ['webhookSecret'], message: 'webhooks are signed: give a whsec_… secret (e.g. ${ALERT_WEBHOOK_SECRET})' });
  })
  .default({ email: [], webhook: [], ratePerMinute: 30, digestAfter: 5 });

export const configSchema = z
  .object({
    webhook: z
      .object({ secrets: z.union([z.string(), z.array(z.string())]).optional() })
      .default({}),
    targets: z.array(target).min(1),
    entitlements: z.array(entitlement).min(1),
    birthright: z.array(birthrightRule).default([]),
    approval: approvalPolicy,
    mail,
    sod: z.array(z.object({ name: z.string(), conflicting: z.array(z.string()).min(2) })).default([]),
    lifecycle,
    retries,
    reconcile: z.object({ interval: duration.default(3_600_000) }).default({ interval: 3_600_000 }),
    brake,
    scim,
    csv,
    api,
    alerts,
  })
  .superRefine((config, ctx) => {
    const targetIds = new Set(config.targets.map((t) => t.id));
    const entitlementIds = new Set<string>();
    config.entitlements.forEach((e, i) => {
      if (entitlementIds.has(e.id)) ctx.addIssue({ code: 'custom', path: ['entitlements', i, 'id'], message: `duplicate entitlement id "${e.id}"` });
      entitlementIds.add(e.id);
      if (!targetIds.has(e.target)) ctx.addIssue({ code: 'custom', path: ['entitlements', i, 'target'], message: `unknown target "${e.target}"` });
      if (e.kind !== 'account' && !e.ref) ctx.addIssue({ code: 'custom', path: ['entitlements', i, 'ref'], message: `a ${e.kind} needs a ref (the object in the target)` });
      // The LDAP connector reads a group back from its own entry, so the ref must name one
      // under the target's groupsDN; refused here rather than at the first grant.
      const target = config.targets.find((t) => t.id === e.target);
      if (e.kind !== 'account' && e.ref && target?.type === 'ldap' && !dnIsUnder(e.ref, target.groupsDN)) {
        ctx.addIssue({ code: 'custom', path: ['entitlements', i, 'ref'], message: `must be a DN under the target's groupsDN (${target.groupsDN}), e.g. cn=${e.ref.includes('=') ? 'name' : e.ref},${target.groupsDN}` });
      }
    });
    config.entitlements.forEach((e, i) => {
      if (!e.jit) return;
      const rules = e.jit.eligible === true || e.jit.eligible === false ? [] : Array.isArray(e.jit.eligible) ? e.jit.eligible : [e.jit.eligible];
      rules.forEach((rule, r) =>
        rule.holds.forEach((id, h) => {
          if (!entitlementIds.has(id)) ctx.addIssue({ code: 'custom', path: ['entitlements', i, 'jit', 'eligible', ...(Array.isArray(e.jit!.eligible) ? [r] : []), 'holds', h], message: `unknown entitlement "${id}"` });
        }),
      );
      const needsOwner = e.jit.approval === 'owner' || e.jit.approval === 'manager_then_owner' || e.jit.breakGlass;
      if (needsOwner && !e.owner && !config.approval.fallbackApprover) {
        ctx.addIssue({ code: 'custom', path: ['entitlements', i, 'owner'], message: `its elevations are ${e.jit.breakGlass ? 'reviewed' : 'approved'} by the owner: name one (or set approval.fallbackApprover)` });
      }
    });
    config.entitlements.forEach((e, i) => {
      if (e.requestable && (e.approver ?? config.approval.approver) !== 'manager' && !e.owner && !config.approval.fallbackApprover) {
        ctx.addIssue({ code: 'custom', path: ['entitlements', i, 'owner'], message: `requests for it are approved by the owner: name one (or set approval.fallbackApprover)` });
      }
    });
    config.sod.forEach((rule, i) =>
      rule.conflicting.forEach((id, j) => {
        if (!entitlementIds.has(id)) ctx.addIssue({ code: 'custom', path: ['sod', i, 'conflicting', j], message: `unknown entitlement "${id}"` });
      }),
    );
    config.birthright.forEach((rule, i) =>
      rule.grant.forEach((id, j) => {
        if (!entitlementIds.has(id)) ctx.addIssue({ code: 'custom', path: ['birthright', i, 'grant', j], message: `unknown entitlement "${id}"` });
      }),
    );
    config.targets.forEach((t, i) => {
      if (t.type === 'ldap' && t.disable.method === 'move' && !t.disable.disabledDN) ctx.addIssue({ code: 'custom', path: ['targets', i, 'disable', 'disabledDN'], message: 'method "move" needs a disabledDN' });
    });
  });

export type JmlConfig = z.output<typeof configSchema>;
export type LdapTargetConfig = z.output<typeof ldapTarget>;
export type ScimTargetConfig = z.output<typeof scimTarget>;
export type TargetConfig = JmlConfig['targets'][number];
/** Whether `dn` names an entry strictly below `parent` (attribute types and spacing ignored in case). */
function dnIsUnder(dn: string, parent: string): boolean {
  const norm = (x: string) => x.split(/(?<!\\),/).map((rdn) => rdn.trim().toLowerCase().replace(/\s*=\s*/, '='));
  const child = norm(dn);
  const base = norm(parent);
  return child.length > base.length && child.every((rdn) => rdn.includes('=')) && child.slice(child.length - base.length).join(',') === base.join(',');
}

export type EntitlementConfig = JmlConfig['entitlements'][number];
export type BirthrightRule = JmlConfig['birthright'][number];
export type BrakeConfig = JmlConfig['brake'];
export type ScimConfig = JmlConfig['scim'];
export type CsvConfig = JmlConfig['csv'];
export type RateLimitConfig = JmlConfig['api']['rateLimit'];

/** Formats a zod issue path the way our errors name fields: `targets[0].url`. */
export function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((out, key) => (typeof key === 'number' ? `${out}[${key}]` : out ? `${out}.${String(key)}` : String(key)), '');
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

/** Replaces `${NAME}` with env values; a missing variable is an error naming the path. */
export function substituteEnv(value: unknown, env: Record<string, string | undefined>, path: PropertyKey[] = [], problems: string[] = []): unknown {
  if (typeof value === 'string') {
    return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => {
      const found = env[name];
      if (found === undefined) problems.push(`${formatPath(path)}: environment variable ${name} is not set`);
      return found ?? '';
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => substituteEnv(v, env, [...path, i], problems));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substituteEnv(v, env, [...path, k], problems)]));
  }
  return value;
}

/** Validates already-parsed YAML. Throws ConfigError listing every bad path. */
export function parseConfig(raw: unknown, env: Record<string, string | undefined> = {}): JmlConfig {
  const problems: string[] = [];
  const substituted = substituteEnv(raw, env, [], problems);
  if (problems.length) throw new ConfigError(problems);
  const result = configSchema.safeParse(substituted);
  if (!result.success) throw new ConfigError(result.error.issues.map((issue) => `${formatPath(issue.path) || '(root)'}: ${issue.message}`));
  return result.data;
}
