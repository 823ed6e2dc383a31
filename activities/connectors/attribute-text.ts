// How both connectors read identity attributes into a target's text values.

/** An attribute as the text a target stores: numbers as digits, blank or non-text as absent. */
export function text(value: unknown): string | null {
  if (typeof value === 'number') return String(value);
  if (typeof value !== 'string') return null;
  const trimmed = value.trim();
  return trimmed ? trimmed : null;
}

/** "Given Family", either part alone, or absent. */
export function fullName(given: string | null, family: string | null): string | null {
  const name = [given, family].filter(Boolean).join(' ');
  return name || null;
}
