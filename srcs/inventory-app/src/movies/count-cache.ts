export interface CountEntry {
  version: string;
  total: number;
  rowCount: number;
}

/**
 * Totals of filtered lists, valid for one table version each. Counting the matches of a common
 * word at a million rows reads every matching row (tens of milliseconds), so a client paging
 * through one search pays for it once; any write to the table changes the version and so
 * invalidates every entry. Least recently used entries go first.
 */
export class CountCache {
  private readonly entries = new Map<string, CountEntry>();

  constructor(private readonly size: number) {}

  get(title: string): CountEntry | undefined {
    const entry = this.entries.get(title);
    if (!entry) return undefined;
    this.entries.delete(title);
    this.entries.set(title, entry);
    return entry;
  }

  set(title: string, entry: CountEntry): void {
    this.entries.delete(title);
    this.entries.set(title, entry);
    if (this.entries.size > this.size) this.entries.delete(this.entries.keys().next().value as string);
  }
}
