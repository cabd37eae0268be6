import { ValidationError, type Knex } from '@crud-master/common';
import { isIndexableTerm } from './text-rules';

/** Refuses (400) a title search that only a read of every title can answer, once the table is big. */
export type SearchCheck = (title: string | undefined) => Promise<void>;

export interface SearchBoundsOptions {
  db: Knex;
  /** Up to this many movies, any term is searched; above it a term needs 3 letters or digits in a row. */
  maxUnindexedRows: number;
}

/**
 * A term such as `ab` or `%` gives the trigram index nothing to look up: PostgreSQL reads every
 * title, about a second at a million movies, while holding a pooled connection. On a small
 * table that costs nothing, so the check reads the trigger-kept row count (one row) and refuses
 * such terms only above `maxUnindexedRows`.
 */
export function searchBounds({ db, maxUnindexedRows }: SearchBoundsOptions): SearchCheck {
  return async function checkSearch(title) {
    if (title === undefined || title === '' || isIndexableTerm(title)) return;
    const { rows } = await db.raw<{ rows: Array<{ row_count: string }> }>('SELECT row_count FROM movies_version');
    if (Number(rows[0]?.row_count ?? 0) <= maxUnindexedRows) return;
    throw new ValidationError(
      `title: give at least 3 letters or digits in a row; with more than ${maxUnindexedRows} movies a shorter term cannot use the search index`,
    );
  };
}
