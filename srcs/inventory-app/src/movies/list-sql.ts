import type { Knex } from '@crud-master/common';
import { filterSql, type ListFilter } from './list-filter';
import { listVersionOf } from './list-version';
import type { Movie } from './movie';
import { toMovie, type MovieRow } from './movie-row';
import type { PageDirection, PageStrategy } from './page-strategy';

/** One statement over a list: SQL with `?` placeholders and its bindings. */
export interface Statement {
  sql: string;
  bindings: Knex.RawBinding[];
}

/** A slice of a list and the table state it was read at, from one statement (one snapshot). */
export interface SliceResult {
  version: string;
  /** The unfiltered row count, kept by a trigger. */
  rowCount: number;
  /** The filtered total, when the statement counted it. */
  total: number | undefined;
  movies: Movie[];
}

interface SliceRow {
  epoch: string;
  version: string;
  row_count: string;
  total: string | null;
  id: number | null;
  title: string | null;
  description: string | null;
}

/**
 * The rows of one slice, found the way `strategy` says and read from the end `direction` says
 * (`backward`: limit and offset count from the end of the list, see `fromEnd`), as a LATERAL
 * subquery with `?` placeholders. `walk` filters the rows of an `ORDER BY id OFFSET 0` subquery:
 * PostgreSQL never pushes a condition into a subquery with OFFSET, so the subquery can only be
 * read in primary key order and the trigram index is out of reach. `all` orders by `id + 0`,
 * which the primary key does not provide, so every match is fetched (through the trigram index)
 * and sorted. The statement puts the rows back in id order.
 */
function sliceSql(filter: ListFilter, strategy: PageStrategy, direction: PageDirection): string {
  const { where } = filterSql(filter);
  const desc = direction === 'backward' ? ' DESC' : '';
  if (strategy === 'all') {
    return `(SELECT id, title, description FROM movies WHERE ${where} ORDER BY id + 0${desc} LIMIT ? OFFSET ?)`;
  }
  return `(SELECT id, title, description
             FROM (SELECT id, title, description FROM movies ORDER BY id${desc} OFFSET 0) walked
            WHERE ${where} ORDER BY id${desc} LIMIT ? OFFSET ?)`;
}

/**
 * One statement, so one snapshot: the table version, the unfiltered row count and one slice of
 * the list, found the way `strategy` says, read from the end `direction` says (`backward`:
 * `limit` and `offset` count from the end, see `fromEnd`).
 */
export function sliceStatement(
  filter: ListFilter,
  limit: number,
  offset: number,
  strategy: PageStrategy,
  direction: PageDirection = 'forward',
): Statement {
  const { bindings } = filterSql(filter);
  return {
    sql: `SELECT v.epoch, v.version, v.row_count, NULL AS total, m.id, m.title, m.description
         FROM movies_version v LEFT JOIN LATERAL ${sliceSql(filter, strategy, direction)} m ON true
        ORDER BY m.id`,
    bindings: [...bindings, limit, offset],
  };
}

/**
 * One page of the whole list, in one snapshot with the version and the row count, read from the
 * nearer end (see PageDirection): the count is the snapshot's own, so the direction is chosen in
 * the statement. Each end has its id query, and the one not chosen has LIMIT 0, which PostgreSQL
 * answers without reading a row. The ids are found by an index-only scan of the primary key
 * (about twice as fast per skipped row as reading the rows themselves, once VACUUM has marked the
 * pages all-visible), then only the page's rows are read. An id array, not `IN (subquery)`: the
 * planner cannot estimate a LIMIT computed from the count and would hash-join the whole table.
 */
export function wholePageStatement(limit: number, offset: number): Statement {
  const backward = '2 * CAST(? AS bigint) + ? > v.row_count';
  return {
    sql: `SELECT v.epoch, v.version, v.row_count, NULL AS total, m.id, m.title, m.description
         FROM movies_version v LEFT JOIN LATERAL (
           SELECT id, title, description FROM movies
            WHERE id = ANY (
              ARRAY(SELECT id FROM movies ORDER BY id
                     LIMIT CASE WHEN ${backward} THEN 0 ELSE ? END OFFSET ?)
              || ARRAY(SELECT id FROM movies ORDER BY id DESC
                        LIMIT CASE WHEN ${backward} THEN greatest(0, least(?, v.row_count - ?)) ELSE 0 END
                       OFFSET greatest(0, v.row_count - ? - ?))
            )
         ) m ON true
        ORDER BY m.id`,
    bindings: [offset, limit, limit, offset, offset, limit, limit, offset, offset, limit],
  };
}

/**
 * Like `sliceStatement`, and the filtered total too, from one pass over the matches: their ids
 * are collected once (through the trigram index when they are few), counted, and the page is
 * picked from them.
 */
export function sliceAndCountStatement(filter: ListFilter, limit: number, offset: number): Statement {
  const { where, bindings } = filterSql(filter);
  return {
    sql: `WITH matches AS MATERIALIZED (SELECT id FROM movies WHERE ${where})
       SELECT v.epoch, v.version, v.row_count, (SELECT count(*) FROM matches) AS total, m.id, m.title, m.description
         FROM movies_version v
         LEFT JOIN LATERAL (
           SELECT id, title, description FROM movies
            WHERE id IN (SELECT id FROM matches ORDER BY id LIMIT ? OFFSET ?)
         ) m ON true
        ORDER BY m.id`,
    bindings: [...bindings, limit, offset],
  };
}

/** Runs a slice statement. */
export async function querySlice(db: Knex, { sql, bindings }: Statement): Promise<SliceResult> {
  const { rows } = await db.raw<{ rows: SliceRow[] }>(sql, bindings);
  const version = listVersionOf(rows[0]);
  const first = rows[0] as SliceRow;
  return {
    version,
    rowCount: Number(first.row_count),
    total: first.total === null ? undefined : Number(first.total),
    movies: first.id === null ? [] : rows.map((row) => toMovie(row as MovieRow)),
  };
}
