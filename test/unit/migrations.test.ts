// drizzle's migrator applies a migration only when its `when` is newer than the last one
// applied, so a migration generated on a branch with an older timestamp is silently skipped.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const migrations = fileURLToPath(new URL('../../db/migrations/', import.meta.url));

interface JournalEntry {
  idx: number;
  when: number;
  tag: string;
}

const journal = JSON.parse(readFileSync(`${migrations}meta/_journal.json`, 'utf8')) as { entries: JournalEntry[] };

describe('db/migrations journal', () => {
  it('has entries', () => {
    expect(journal.entries.length).toBeGreaterThan(0);
  });

  it('numbers entries 0, 1, 2, ... in order', () => {
    expect(journal.entries.map((e) => e.idx)).toEqual(journal.entries.map((_, i) => i));
  });

  it('has strictly increasing `when` timestamps', () => {
    const out = journal.entries.filter((e, i) => i > 0 && e.when <= journal.entries[i - 1]!.when).map((e) => e.tag);
    expect(out, 'regenerate these migrations so they sort after the previous one').toEqual([]);
  });

  it('has a .sql file for every tag', () => {
    const missing = journal.entries.filter((e) => !existsSync(`${migrations}${e.tag}.sql`)).map((e) => e.tag);
    expect(missing).toEqual([]);
  });
});
