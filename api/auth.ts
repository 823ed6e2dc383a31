// Bearer tokens with scopes. A token is `jml_<base64url of 32 random bytes>`; only its
// SHA-256 (hex) is stored, and a request's token is found by that hash, so there is no
// string comparison of secrets to time. `admin` implies every scope.
import { randomBytes } from 'node:crypto';
import { and, eq, isNull, lt, or, sql } from 'drizzle-orm';
import type { FastifyBaseLogger, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify';
import { EMPLOYEE_ID_RULE, parseEmployeeId } from '../domain/employee-id.js';
import type { Scope } from '../domain/types.js';
import { writeAudit } from '../db/audit.js';
import type { Db } from '../db/client.js';
import { apiTokens } from '../db/schema.js';
import { hashToken } from '../db/token-hash.js';
import { problems, safeErrorInfo } from './problem.js';

export const TOKEN_PREFIX = 'jml_';
const TOKEN_PATTERN = /^jml_[A-Za-z0-9_-]{43}$/;
/** last_used_at is written at most this often per token. */
const LAST_USED_INTERVAL_MS = 60_000;

export interface Principal {
  tokenId: string;
  name: string;
  scopes: readonly string[];
  /** The person the token acts as (canonical employee id): it requests for them and decides as them. null: nobody. */
  employeeId: string | null;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by requireScope once the bearer token is accepted. */
    principal: Principal | null;
  }
  interface FastifyInstance {
    tokenAuth: TokenAuthenticator;
  }
}

export { hashToken };

export function generateToken(): string {
  return `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
}

/**
 * Creates a token and returns it once; only its hash is kept. Audited. `employeeId` binds it
 * to a person (stored canonical): it then requests for that person and decides as them.
 */
export async function createApiToken(
  db: Db,
  input: { name: string; scopes: readonly Scope[]; actor?: string; employeeId?: string | null },
): Promise<{ id: string; token: string }> {
  const token = generateToken();
  const scopes = [...new Set(input.scopes)];
  const employeeId = input.employeeId ? parseEmployeeId(input.employeeId) : null;
  if (input.employeeId && !employeeId) throw new Error(`the token's employee id ${EMPLOYEE_ID_RULE}`);
  return db.transaction(async (tx) => {
    const [row] = await tx.insert(apiTokens).values({ name: input.name, scopes, employeeId, tokenHash: hashToken(token) }).returning({ id: apiTokens.id });
    if (!row) throw new Error('api token insert returned nothing');
    await writeAudit(tx, {
      actor: input.actor ?? 'system',
      action: 'api_token.created',
      subjectType: 'api_token',
      subjectId: row.id,
      after: { name: input.name, scopes, employeeId },
    });
    return { id: row.id, token };
  });
}

/** Revokes a token; returns false when it does not exist or was already revoked. Audited. */
export async function revokeApiToken(db: Db, id: string, actor = 'system'): Promise<boolean> {
  return db.transaction(async (tx) => {
    const [row] = await tx
      .update(apiTokens)
      .set({ revokedAt: new Date() })
      .where(and(eq(apiTokens.id, id), isNull(apiTokens.revokedAt)))
      .returning({ id: apiTokens.id, name: apiTokens.name });
    if (!row) return false;
    await writeAudit(tx, { actor, action: 'api_token.revoked', subjectType: 'api_token', subjectId: row.id, before: { revoked: false }, after: { revoked: true } });
    return true;
  });
}

export function hasScope(granted: readonly string[], wanted: readonly Scope[]): boolean {
  return granted.includes('admin') || wanted.some((scope) => granted.includes(scope));
}

export class TokenAuthenticator {
  private readonly lastUsedWritten = new Map<string, number>();

  constructor(
    private readonly db: Db,
    private readonly log: FastifyBaseLogger,
  ) {}

  /** The principal for a bearer token, or null when unknown or revoked. */
  async authenticate(token: string): Promise<Principal | null> {
    if (!TOKEN_PATTERN.test(token)) return null;
    const [row] = await this.db
      .select({ id: apiTokens.id, name: apiTokens.name, scopes: apiTokens.scopes, employeeId: apiTokens.employeeId, revokedAt: apiTokens.revokedAt })
      .from(apiTokens)
      .where(eq(apiTokens.tokenHash, hashToken(token)));
    if (!row || row.revokedAt) return null;
    this.touch(row.id);
    return { tokenId: row.id, name: row.name, scopes: row.scopes, employeeId: row.employeeId };
  }

  /** Bookkeeping, not a state change: no audit row, at most once a minute, never awaited. */
  private touch(id: string): void {
    const now = Date.now();
    const last = this.lastUsedWritten.get(id);
    if (last !== undefined && now - last < LAST_USED_INTERVAL_MS) return;
    this.lastUsedWritten.set(id, now);
    if (this.lastUsedWritten.size > 10_000) this.lastUsedWritten.clear();
    this.db
      .update(apiTokens)
      .set({ lastUsedAt: sql`now()` })
      .where(and(eq(apiTokens.id, id), or(isNull(apiTokens.lastUsedAt), lt(apiTokens.lastUsedAt, sql`now() - interval '1 minute'`))))
      .then(
        () => undefined,
        (err: unknown) => this.log.warn({ err: safeErrorInfo(err) }, 'could not record token use'),
      );
  }
}

function bearerToken(request: FastifyRequest): string | null {
  const header = request.headers.authorization;
  if (!header) return null;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1] ?? null;
}

/**
 * A preHandler that lets the request through when its bearer token carries one of the
 * scopes (or `admin`): 401 with `WWW-Authenticate: Bearer` when the token is missing,
 * unknown or revoked; 403 when it lacks the scope.
 */
export function requireScope(...scopes: [Scope, ...Scope[]]): preHandlerAsyncHookHandler {
  return async function checkScope(request) {
    const token = bearerToken(request);
    if (!token) throw problems.unauthorized('A bearer token is required.');
    const principal = await request.server.tokenAuth.authenticate(token);
    if (!principal) throw problems.unauthorized('The bearer token is invalid or revoked.', 'invalid_token');
    if (!hasScope(principal.scopes, scopes)) throw problems.forbidden(`This token lacks the scope ${scopes.map((s) => `"${s}"`).join(' or ')}.`);
    request.principal = principal;
  };
}
