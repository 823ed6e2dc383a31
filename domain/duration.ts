// Durations in config are written as `90s`, `15m`, `4h`, `30d` (or `0`), and kept as
// milliseconds everywhere else so workflows can sleep on them directly.
const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const DURATION_RE = /^(\d+)(ms|s|m|h|d)$/;

export function parseDuration(text: string): number {
  if (text === '0') return 0;
  const match = DURATION_RE.exec(text.trim());
  if (!match) throw new Error(`expected a duration such as 90s, 15m, 4h or 30d, got "${text}"`);
  return Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
}

export function formatDuration(ms: number): string {
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    if (ms > 0 && ms % UNIT_MS[unit] === 0) return `${ms / UNIT_MS[unit]}${unit}`;
  }
  return `${ms}ms`;
}
