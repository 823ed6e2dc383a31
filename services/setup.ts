// First-run set-up shared by `jml start` and the other CLI commands: the config file, the
// generated secrets, and which webhook secrets apply.
import { chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { JmlConfig } from '../domain/config.js';
import type { Env } from './env.js';

/**
 * First run of `npm start`: copy the example config and generate the secrets it refers to
 * into ./data/secrets.env, so a new user needs no setup. Real deployments set the env.
 */
export function prepareLocalSetup(env: Env, logger: Logger): Record<string, string> {
  mkdirSync(env.dataDir, { recursive: true, mode: PRIVATE_DIR });
  // What an earlier version (or another umask) left readable is tightened on every start.
  for (const problem of makePrivate(env.dataDir)) logger.warn(problem, 'cannot make this file private to its owner');
  const example = path.resolve(import.meta.dirname, '../jml.config.example.yaml');
  if (!existsSync(env.configPath) && existsSync(example)) {
    copyFileSync(example, env.configPath);
    logger.info({ file: env.configPath }, 'created the config from jml.config.example.yaml');
  }
  const secretsFile = path.join(env.dataDir, 'secrets.env');
  if (!existsSync(secretsFile)) {
    const lines = [`JML_WEBHOOK_SECRET=whsec_${randomBytes(24).toString('base64')}`, `LDAP_BIND_PASSWORD=${randomBytes(18).toString('base64url')}`];
    writeFileSync(secretsFile, `${lines.join('\n')}\n`, { mode: PRIVATE_FILE });
  }
  const secrets = Object.fromEntries(
    readFileSync(secretsFile, 'utf8')
      .split('\n')
      .filter((line) => line.includes('='))
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  );
  // The environment wins over the generated file.
  for (const [key, value] of Object.entries(secrets)) process.env[key] ??= value;
  return secrets;
}

// The data folder holds personal data (Temporal's SQLite: names and e-mail addresses; the
// slapd database) and secrets (secrets.env, the slapd root password hash in config.ldif):
// its files are for the owner only, mode 0600 in 0700 folders.
export const PRIVATE_DIR = 0o700;
export const PRIVATE_FILE = 0o600;

/**
 * Takes group and other permissions off `target` and, for a folder, off everything in it
 * (folders become 0700, files keep only their owner's bits: 0600, or 0700 for an executable).
 * Symbolic links are neither followed nor changed. Returns what could not be changed (e.g.
 * a file of another user) as `{ file, code }`, for a warning; a missing target is no problem.
 */
export function makePrivate(target: string): Array<{ file: string; code: string }> {
  const problems: Array<{ file: string; code: string }> = [];
  const pending = [target];
  while (pending.length) {
    const file = pending.pop()!;
    try {
      const stat = lstatSync(file);
      if (stat.isSymbolicLink()) continue;
      const mode = stat.mode & 0o7777;
      const wanted = stat.isDirectory() ? PRIVATE_DIR : mode & 0o700;
      if (mode !== wanted) chmodSync(file, wanted);
      if (stat.isDirectory()) for (const name of readdirSync(file)) pending.push(path.join(file, name));
    } catch (err) {
      const code = String((err as NodeJS.ErrnoException).code ?? 'unknown');
      if (code !== 'ENOENT') problems.push({ file, code });
    }
  }
  return problems;
}

export function webhookSecrets(env: Env, config: JmlConfig): string[] {
  const fromConfig = config.webhook.secrets;
  const list = env.webhookSecrets.length ? env.webhookSecrets : Array.isArray(fromConfig) ? fromConfig : (fromConfig ?? '').split(',');
  return list.map((s) => s.trim()).filter(Boolean);
}

