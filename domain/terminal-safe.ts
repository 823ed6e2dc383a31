// HR data shown on an operator's terminal. A name or title is whatever a feed once sent
// (stored before today's input rules, or read from a file being checked), and a terminal
// obeys the control characters in what it prints: ESC starts a sequence that can recolour,
// retitle, move the cursor or hide lines, and the bidirectional overrides reorder what is
// read. So every such character is shown as a visible escape (`\x1b`, `\u202e`) instead.

// C0 (newline and tab included: a value never spans lines), DEL, C1 (U+009B is a one-byte
// CSI), the Arabic letter mark, LRM/RLM, the line and paragraph separators, and the
// bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069).
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
// What JSON.stringify leaves raw of those: it escapes C0 itself.
const UNSAFE_IN_JSON = /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const hex = (c: string, digits: number) => c.charCodeAt(0).toString(16).padStart(digits, '0');

/**
 * The text with each control, escape and bidi character replaced by a visible escape:
 * `\x1b` up to U+00FF, `\u202e` above. Backslashes are left alone, so the function is
 * idempotent (safe text stays as it is) and ordinary values read as they are.
 */
export function terminalSafe(text: string): string {
  return text.replace(UNSAFE, (c) => (c.charCodeAt(0) <= 0xff ? `\\x${hex(c, 2)}` : `\\u${hex(c, 4)}`));
}

/**
 * Template tag for a line of CLI output: the literal parts are the program's own, every
 * interpolated value goes through terminalSafe. `safe\`${person.employeeId}: ${status}\``.
 */
export function safe(strings: TemplateStringsArray, ...values: unknown[]): string {
  let out = strings[0] ?? '';
  values.forEach((value, i) => {
    out += terminalSafe(String(value)) + (strings[i + 1] ?? '');
  });
  return out;
}

/**
 * JSON for a terminal: pretty-printed, and what JSON.stringify leaves raw (DEL, C1, bidi)
 * written as `\uXXXX` escapes. Those characters can only occur inside strings, where the
 * escape is valid JSON, so the output parses to the same value.
 */
export function terminalSafeJson(value: unknown): string {
  const json = JSON.stringify(value, null, 2) ?? 'null';
  return json.replace(UNSAFE_IN_JSON, (c) => `\\u${hex(c, 4)}`);
}
