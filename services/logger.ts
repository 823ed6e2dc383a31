import { pino, type Logger } from 'pino';

/** One pino logger per process. Never log bodies, tokens or personal attributes. */
export function createLogger(level = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino({ level, base: { service: 'jml' }, redact: ['*.authorization', '*.token', '*.password', '*.bindPassword', '*.attributes'] });
}
