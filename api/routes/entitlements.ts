// GET /api/v1/entitlements (scope requests:write or identities:read): the catalogue, from the
// configuration: what each entitlement is, whether it can be requested and what a request
// needs (who approves it, for how long just-in-time access may last), which birthright rules
// grant it, and the separation-of-duties rules that name it. The catalogue is as long as the
// config, so the list is always one page (`nextCursor` null).
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { JmlConfig } from '../../domain/config.js';
import { formatDuration } from '../../domain/duration.js';
import { ENTITLEMENT_KINDS } from '../../domain/types.js';
import { requireScope } from '../auth.js';
import { bearer } from '../openapi.js';

export const ENTITLEMENTS_PATH = '/api/v1/entitlements';

const entitlementSchema = z.object({
  id: z.string(),
  name: z.string().nullable(),
  target: z.string(),
  kind: z.enum(ENTITLEMENT_KINDS),
  risk: z.enum(['low', 'medium', 'high', 'critical']),
  owner: z.string().nullable().describe("The resource owner's employee id, if one is recorded."),
  requestable: z.boolean().describe('Whether a person may ask for it (POST /api/v1/access-requests).'),
  approval: z
    .object({
      approver: z.enum(['manager', 'owner', 'manager_then_owner']).describe("Who approves a request for it: the subject's manager, the owner, or the manager and then the owner."),
      maxDuration: z.string().nullable().describe('The longest a requested grant may last, e.g. 30d (a request must then give a duration); null: no limit.'),
    })
    .nullable()
    .describe('Null when it cannot be requested.'),
  jit: z
    .object({
      maxDuration: z.string().describe('The longest elevation (and extension), e.g. 4h.'),
      defaultDuration: z.string().nullable().describe('The duration of an elevation that names none; null: a duration is required.'),
      approval: z.enum(['none', 'manager', 'owner', 'manager_then_owner']).describe('Who approves an elevation (and an extension).'),
      requiresApproval: z.boolean(),
      ticketRequired: z.boolean(),
      cooldown: z.string().nullable().describe('How long after an elevation ends the next may start; null: at once.'),
      maxExtensions: z.number().int(),
      breakGlass: z.boolean().describe('Whether it may be taken at once in an emergency (a critical alert and an owner review follow).'),
      eligibleToEveryone: z.boolean().describe('false: only people matching its eligibility rules may elevate.'),
    })
    .nullable()
    .describe('Null when it is not eligible for just-in-time elevation.'),
  birthright: z.array(z.string()).describe('The birthright rules that grant it.'),
  separationOfDuties: z.array(z.object({ rule: z.string(), conflictsWith: z.array(z.string()) })).describe('The sod rules that name it, with the entitlements it may not be held with.'),
});

const listSchema = z.object({ items: z.array(entitlementSchema), nextCursor: z.null() });
type Entitlement = z.infer<typeof entitlementSchema>;

/** The catalogue as the API shows it; made once, the config does not change while the process runs. */
export function entitlementCatalogue(config: JmlConfig): Entitlement[] {
  return config.entitlements.map((e) => ({
    id: e.id,
    name: e.name ?? null,
    target: e.target,
    kind: e.kind,
    risk: e.risk,
    owner: e.owner ?? null,
    requestable: e.requestable,
    approval: e.requestable ? { approver: e.approver ?? config.approval.approver, maxDuration: e.maxDuration === undefined ? null : formatDuration(e.maxDuration) } : null,
    jit:
      e.jit && e.jit.eligible !== false
        ? {
            maxDuration: formatDuration(e.jit.maxDuration),
            defaultDuration: e.jit.defaultDuration === undefined ? null : formatDuration(e.jit.defaultDuration),
            approval: e.jit.approval,
            requiresApproval: e.jit.approval !== 'none',
            ticketRequired: e.jit.ticketRequired,
            cooldown: e.jit.cooldown ? formatDuration(e.jit.cooldown) : null,
            maxExtensions: e.jit.maxExtensions,
            breakGlass: e.jit.breakGlass,
            eligibleToEveryone: e.jit.eligible === true,
          }
        : null,
    birthright: config.birthright.filter((rule) => rule.grant.includes(e.id)).map((rule) => rule.name),
    separationOfDuties: config.sod.filter((rule) => rule.conflicting.includes(e.id)).map((rule) => ({ rule: rule.name, conflictsWith: rule.conflicting.filter((id) => id !== e.id) })),
  }));
}

export const entitlementRoutes: FastifyPluginAsyncZod<{ config: JmlConfig }> = async (app, { config }) => {
  const catalogue = entitlementCatalogue(config);
  app.addHook('preValidation', requireScope('requests:write', 'identities:read'));
  const schema = {
    tags: ['Access'],
    summary: 'The entitlement catalogue: what can be requested and what a request needs',
    security: bearer('requests:write', 'identities:read'),
    response: { 200: listSchema },
  };
  app.get(ENTITLEMENTS_PATH, { schema }, async () => ({ items: catalogue, nextCursor: null }));
};
