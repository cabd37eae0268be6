/**
 * How to find one page of a filtered list, ordered by id:
 * - `walk`: follow the primary key in id order, testing each title, until the page is full.
 *   Cheap when matches are dense: about (offset + limit) / density rows, or, read backwards from
 *   the end (see PageDirection), (total - offset) / density rows.
 * - `all`: fetch every match through the trigram index, then sort them. Cheap when matches are
 *   few: about `total` rows.
 * PostgreSQL picks between them from its estimate of how many titles match, and for
 * `ILIKE '%word%'` that estimate is often off by a factor of 10 to 100, so it picks the wrong
 * one. Once the exact total is known (it is counted for X-Total-Count anyway), the cheaper way is
 * chosen here, and the query is written so that it is the only way open to the planner (see
 * list-sql.ts).
 */
export type PageStrategy = 'walk' | 'all';

/**
 * Which end of a list of `total` rows to read a page from. OFFSET makes PostgreSQL read and drop
 * every row before the page, so a page in the far half is read backwards instead (ORDER BY id
 * DESC, offset `total - offset - limit`, see `fromEnd`) and put back in id order: the last page
 * costs what the first does, and the middle one is the dearest.
 */
export type PageDirection = 'forward' | 'backward';

/** `backward` when fewer rows lie after the page's start than before its end. */
export function pageDirection(total: number, limit: number, offset: number): PageDirection {
  return 2 * offset + limit > total ? 'backward' : 'forward';
}

/**
 * The same rows counted from the end of a list of `total` rows, in descending id order: skip the
 * rows after the page, take the page's rows that exist (none once `offset >= total`).
 */
export function fromEnd(total: number, limit: number, offset: number): { limit: number; offset: number } {
  return { limit: Math.max(0, Math.min(limit, total - offset)), offset: Math.max(0, total - offset - limit) };
}

export function pageStrategy(total: number, rowCount: number, limit: number, offset: number): PageStrategy {
  if (total <= 0) return 'all';
  // Read from the nearer end (see pageDirection): rows of the list up to the page's far edge.
  const listRows = pageDirection(total, limit, offset) === 'forward' ? offset + limit : Math.max(0, total - offset);
  const walkRows = (listRows * rowCount) / total;
  // The cost model at a million rows: a walked row costs about 0.8 us, a fetched match 2.6 us
  // (random heap access and the index's recheck) plus about 1.5 ms for the index scan itself.
  return walkRows < 3 * total + 1000 ? 'walk' : 'all';
}
