// Small pieces of the operator commands' text output (status, grants, audit).
import { terminalSafe } from '../../domain/terminal-safe.js';

/** A time as ISO 8601, or `-` when there is none. */
export const when = (value: Date | null | undefined): string => (value ? value.toISOString() : '-');

/**
 * Rows as aligned columns, each line indented. Every cell is made terminal-safe first (most
 * are HR data or connector messages), so the padding counts what is really shown.
 */
export function table(header: string[], rows: Array<Array<string | number | null | undefined>>, indent = '  '): string[] {
  const cells = [header, ...rows.map((row) => row.map((cell) => terminalSafe(cell === null || cell === undefined || cell === '' ? '-' : String(cell))))];
  const widths = header.map((_, i) => Math.max(...cells.map((row) => row[i]?.length ?? 0)));
  // The last column is not padded: a long error message needs no trailing spaces.
  return cells.map((row) => indent + row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  '));
}

/** At most `max` characters of a long text (a connector's error), marked where cut; `--json` has it whole. */
export const clip = (text: string | null, max = 120): string | null => (text !== null && text.length > max ? `${text.slice(0, max - 3)}...` : text);
