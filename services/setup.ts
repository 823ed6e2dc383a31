// First-run set-up shared by `jml start` and the other CLI commands: the config file, the
// generated secrets, and which webhook secrets apply.
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
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
  mkdirSync(env.dataDir, { recursive: true });
  const example = path.resolve(import.meta.dirname, '../jml.config.example.yaml');
  if (!existsSync(env.configPath) && existsSync(example)) {
    copyFileSync(example, env.configPath);
    logger.info({ file: env.configPath }, 'created the config from jml.config.example.yaml');
  }
  const secretsFile = path.join(env.dataDir, 'secrets.env');
  if (!existsSync(secretsFile)) {
    const lines = [`JML_WEBHOOK_SECRET=whsec_${randomBytes(24).toString('base64')}`, `LDAP_BIND_PASSWORD=${randomBytes(18).toString('base64url')}`];
    writeFileSync(secretsFile, `${lines.join('\n')}\n`, { mode: 0o600 });
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

export function webhookSecrets(env: Env, config: JmlConfig): string[] {
  const fromConfig = config.webhook.secrets;
  const list = env.webhookSecrets.length ? env.webhookSecrets : Array.isArray(fromConfig) ? fromConfig : (fromConfig ?? '').split(',');
  return list.map((s) => s.trim()).filter(Boolean);
}

