import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import { ConfigError, parseConfig, type JmlConfig } from '../domain/config.js';

/** Reads and validates the config file; throws ConfigError naming each bad path. */
export function loadConfig(file: string, env: Record<string, string | undefined> = process.env): JmlConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([`${file}: cannot read the config file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`]);
  }
  let raw: unknown;
  try {
    raw = YAML.parse(text);
  } catch (err) {
    throw new ConfigError([`${file}: not valid YAML (${(err as Error).message.split('\n')[0]})`]);
  }
  return parseConfig(raw, env);
}
