import type { Client as PgClient } from 'pg';
import Cursor from 'pg-cursor';
import { NotFoundError, type Knex } from '@crud-master/common';
import type { MovieSource } from './list-stream';
import type { Movie, MoviePatch, NewMovie } from './movie';
import { ID_MAX } from './schemas';

const TABLE = 'movies';
const COLUMNS = ['id', 'title', 'description'];

interface MovieRow {
  id: number;
  title: string;
  description: string;
}

function toMovie(row: MovieRow): Movie {
  return { id: row.id, title: row.title, description: row.description };
}

/** `%`, `_` and the escape character itself are literal in a title search, not wildcards. */
export function likePattern(fragment: string): string {
  return `%${fragment.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

export interface ListFilter {
  /** Keep titles containing this, case-insensitively; absent or empty keeps every movie. */
  title?: string | undefined;
}

/** Rows of a list together with the table state they were read at (one snapshot). */
export interface ListSlice {
  /** `<epoch>.<version>` of the movies table: the list validator (see the movies_version migration). */
  version: string;
  movies: Movie[];
}

export interface Page extends ListSlice {
  /** How many movies match the filter in all. */
  total: number;
}

/** An open cursor over a list, in a read-only REPEATABLE READ transaction holding one connection. */
export interface MovieCursor extends MovieSource {
  readonly version: string;
}

export interface MoviesRepositoryOptions {
  /** Rows fetched per cursor read when streaming a list. */
  cursorBatchSize?: number;
  /** Filtered totals remembered per title for the current table version. */
  countCacheSize?: number;
}

/** The SQL condition of a filter, using `?` placeholders, and its bindings. */
function filterSql(filter: ListFilter): { where: string; bindings: string[] } {
  if (filter.title === undefined || filter.title === '') return { where: 'true', bindings: [] };
  return { where: `title ILIKE ? ESCAPE '\\'`, bindings: [likePattern(filter.title)] };
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
 * How to find one page of a filtered list, ordered by id:
 * - `walk`: follow the primary key in id order, testing each title, until the page is full.
 *   Cheap when matches are dense: about (offset + limit) / density rows.
 * - `all`: fetch every match through the trigram index, then sort them. Cheap when matches are
 *   few: about `total` rows.
 * PostgreSQL picks between them from its estimate of how many titles match, and for
 * `ILIKE '%word%'` that estimate is often off by a factor of 10 to 100 (it guessed 100 rows for
 * words with 9,000 matches), which turned 3 ms searches into 60 ms ones in the benchmark. Once the
 * exact total is known (it is counted for X-Total-Count anyway), the cheaper way is chosen here,
 * and the query is written so that it is the only way open to the planner (see sliceSql).
 */
export type PageStrategy = 'walk' | 'all';

export function pageStrategy(total: number, rowCount: number, limit: number, offset: number): PageStrategy {
  if (total <= 0) return 'all';
  const walkRows = ((offset + limit) * rowCount) / total;
  // Measured at a million rows: a walked row costs about 0.8 us, a fetched match 2.6 us (random
  // heap access and the index's recheck) plus about 1.5 ms for the index scan itself.
  return walkRows < 3 * total + 1000 ? 'walk' : 'all';
}

/**
 * The rows of one slice, found the way `strategy` says, as a LATERAL subquery with `?`
 * placeholders. `walk` filters the rows of an `ORDER BY id OFFSET 0` subquery: PostgreSQL never
 * pushes a condition into a subquery with OFFSET, so the subquery can only be read in primary
 * key order and the trigram index is out of reach. `all` orders by `id + 0`, which the primary
 * key does not provide, so every match is fetched (through the trigram index) and sorted.
 */
function sliceSql(filter: ListFilter, strategy: PageStrategy): string {
  const { where } = filterSql(filter);
  if (strategy === 'all') {
    return `(SELECT id, title, description FROM movies WHERE ${where} ORDER BY id + 0 LIMIT ? OFFSET ?)`;
  }
  return `(SELECT id, title, description
             FROM (SELECT id, title, description FROM movies ORDER BY id OFFSET 0) walked
            WHERE ${where} ORDER BY id LIMIT ? OFFSET ?)`;
}

interface CountEntry {
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
class CountCache {
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

/** The only code that knows how movies are stored. */
export class MoviesRepository {
  private readonly batchSize: number;
  private readonly counts: CountCache;

  constructor(
    private readonly db: Knex,
    options: MoviesRepositoryOptions = {},
  ) {
    this.batchSize = options.cursorBatchSize ?? 1000;
    this.counts = new CountCache(options.countCacheSize ?? 1000);
  }

  /** The current list validator, from one row. */
  async listVersion(): Promise<string> {
    const { rows } = await this.db.raw<{ rows: Array<{ epoch: string; version: string }> }>(
      'SELECT epoch, version FROM movies_version',
    );
    const row = rows[0];
    if (!row) throw new Error('movies_version is empty: migrations did not run');
    return `${row.epoch}.${row.version}`;
  }

  private async querySlice(sql: string, bindings: readonly Knex.RawBinding[]) {
    const { rows } = await this.db.raw<{ rows: SliceRow[] }>(sql, bindings);
    const first = rows[0];
    if (!first) throw new Error('movies_version is empty: migrations did not run');
    return {
      version: `${first.epoch}.${first.version}`,
      rowCount: Number(first.row_count),
      total: first.total === null ? undefined : Number(first.total),
      movies: first.id === null ? [] : rows.map((row) => toMovie(row as MovieRow)),
    };
  }

  /**
   * One statement, so one snapshot: the table version, the unfiltered row count and one slice of
   * the list, found the way `strategy` says.
   */
  private slice(filter: ListFilter, limit: number, offset: number, strategy: PageStrategy) {
    const { bindings } = filterSql(filter);
    return this.querySlice(
      `SELECT v.epoch, v.version, v.row_count, NULL AS total, m.id, m.title, m.description
         FROM movies_version v LEFT JOIN LATERAL ${sliceSql(filter, strategy)} m ON true
        ORDER BY m.id`,
      [...bindings, limit, offset],
    );
  }

  /**
   * Like `slice`, and the filtered total too, from one pass over the matches: their ids are
   * collected once (through the trigram index when they are few), counted, and the page is
   * picked from them.
   */
  private sliceAndCount(filter: ListFilter, limit: number, offset: number) {
    const { where, bindings } = filterSql(filter);
    return this.querySlice(
      `WITH matches AS MATERIALIZED (SELECT id FROM movies WHERE ${where})
       SELECT v.epoch, v.version, v.row_count, (SELECT count(*) FROM matches) AS total, m.id, m.title, m.description
         FROM movies_version v
         LEFT JOIN LATERAL (
           SELECT id, title, description FROM movies
            WHERE id IN (SELECT id FROM matches ORDER BY id LIMIT ? OFFSET ?)
         ) m ON true
        ORDER BY m.id`,
      [...bindings, limit, offset],
    );
  }

  /**
   * The first `limit` movies of a list, with the version they were read at. Without a filter the
   * primary key is walked; with one, every match is fetched unless a known total says walking is
   * cheaper (see PageStrategy).
   */
  async head(filter: ListFilter, limit: number): Promise<ListSlice> {
    const title = filter.title ?? '';
    const known = title === '' ? undefined : this.counts.get(title);
    const strategy = title === '' ? 'walk' : known ? pageStrategy(known.total, known.rowCount, limit, 0) : 'all';
    const { version, movies } = await this.slice(filter, limit, 0, strategy);
    return { version, movies };
  }

  /**
   * One page and the total it belongs to, both from one snapshot. The unfiltered total is the
   * trigger-kept row count; a filtered total is counted along with the first page asked for, and
   * taken from the cache (when counted at this same version) for the pages after it.
   */
  async page(filter: ListFilter, limit: number, offset: number): Promise<Page> {
    const title = filter.title ?? '';
    if (title === '') {
      const { version, rowCount, movies } = await this.slice(filter, limit, offset, 'walk');
      return { version, movies, total: rowCount };
    }
    const known = this.counts.get(title);
    if (known) {
      const strategy = pageStrategy(known.total, known.rowCount, limit, offset);
      const { version, movies } = await this.slice(filter, limit, offset, strategy);
      if (version === known.version) return { version, movies, total: known.total };
      // The table changed since that count: count again, in the same snapshot as the page.
    }
    const { version, rowCount, movies, total = 0 } = await this.sliceAndCount(filter, limit, offset);
    this.counts.set(title, { version, total, rowCount });
    return { version, movies, total };
  }

  /**
   * Opens a cursor over a whole list on a connection of its own, inside a read-only REPEATABLE
   * READ transaction so that `version` describes exactly the rows the cursor returns. The caller
   * must `close()` it (JsonArrayStream does, whatever happens); until then it holds a pooled
   * connection.
   */
  async openCursor(filter: ListFilter): Promise<MovieCursor> {
    const { where, bindings } = filterSql(filter);
    const sql = `SELECT id, title, description FROM movies WHERE ${where.replace('?', '$1')} ORDER BY id`;
    const client = this.db.client as { acquireConnection(): Promise<PgClient>; releaseConnection(c: PgClient): Promise<void> };
    const conn = await client.acquireConnection();
    let broken = false;
    const release = async (): Promise<void> => {
      // A connection in an unknown state must not go back to the pool: ending it makes knex
      // discard it (its 'end' listener marks it disposed).
      if (broken) await conn.end().catch(() => undefined);
      await client.releaseConnection(conn);
    };

    let version: string;
    let cursor: Cursor<MovieRow>;
    try {
      await conn.query('BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY');
      const { rows } = await conn.query<{ epoch: string; version: string }>('SELECT epoch, version FROM movies_version');
      if (!rows[0]) throw new Error('movies_version is empty: migrations did not run');
      version = `${rows[0].epoch}.${rows[0].version}`;
      cursor = conn.query(new Cursor<MovieRow>(sql, bindings));
    } catch (err) {
      broken = true;
      await release();
      throw err;
    }

    const batchSize = this.batchSize;
    let inFlight: Promise<unknown> = Promise.resolve();
    let closing: Promise<void> | undefined;
    return {
      version,
      read(): Promise<Movie[]> {
        if (closing) return Promise.reject(new Error('cursor is closed'));
        const rows = cursor.read(batchSize).then(
          (batch) => batch.map(toMovie),
          (err: unknown) => {
            broken = true;
            throw err;
          },
        );
        inFlight = rows.catch(() => undefined);
        return rows;
      },
      close(): Promise<void> {
        closing ??= (async () => {
          await inFlight;
          if (!broken) {
            try {
              await cursor.close();
              await conn.query('COMMIT');
            } catch {
              broken = true;
            }
          }
          await release();
        })();
        return closing;
      },
    };
  }

  /**
   * One movie and its row version for the ETag: `<epoch>.<xmin>`. PostgreSQL writes a new row
   * version, with the writing transaction's id in `xmin`, on every UPDATE, so the pair changes
   * whenever the movie can have changed; `epoch` (see the movies_version migration) keeps a
   * recreated database from reusing one. A prepared statement: parsed and planned once per
   * pooled connection.
   */
  async getVersioned(id: number): Promise<{ movie: Movie; version: string }> {
    if (id > ID_MAX) throw notFound(id);
    // Straight on a pooled connection, as openCursor does: knex's query runner (events, response
    // processing) costs more than the query itself for one row by primary key.
    const pool = this.db.client as { acquireConnection(): Promise<PgClient>; releaseConnection(c: PgClient): Promise<void> };
    const conn = await pool.acquireConnection();
    let row: (MovieRow & { xmin: string; epoch: string | null }) | undefined;
    try {
      ({ rows: [row] } = await conn.query<MovieRow & { xmin: string; epoch: string | null }>({ name: 'movies_get_versioned', text: GET_VERSIONED_SQL, values: [id] }));
    } finally {
      await pool.releaseConnection(conn);
    }
    if (!row) throw notFound(id);
    if (row.epoch === null) throw new Error('movies_version is empty: migrations did not run');
    return { movie: toMovie(row), version: `${row.epoch}.${row.xmin}` };
  }

  async get(id: number): Promise<Movie> {
    if (id > ID_MAX) throw notFound(id);
    const row = await this.db<MovieRow>(TABLE).select(...COLUMNS).where({ id }).first();
    if (!row) throw notFound(id);
    return toMovie(row);
  }

  async create(movie: NewMovie): Promise<Movie> {
    const [row] = await this.db<MovieRow>(TABLE).insert(movie).returning(COLUMNS);
    return toMovie(row as MovieRow);
  }

  async update(id: number, patch: MoviePatch): Promise<Movie> {
    if (id > ID_MAX) throw notFound(id);
    const [row] = await this.db<MovieRow>(TABLE).where({ id }).update(patch).returning(COLUMNS);
    if (!row) throw notFound(id);
    return toMovie(row as MovieRow);
  }

  async remove(id: number): Promise<Movie> {
    if (id > ID_MAX) throw notFound(id);
    const [row] = await this.db<MovieRow>(TABLE).where({ id }).delete().returning(COLUMNS);
    if (!row) throw notFound(id);
    return toMovie(row as MovieRow);
  }

  /** Deletes every movie and returns how many there were. */
  async removeAll(): Promise<number> {
    return this.db(TABLE).delete();
  }
}

const GET_VERSIONED_SQL =
  'SELECT m.id, m.title, m.description, m.xmin::text AS xmin, v.epoch FROM movies m LEFT JOIN movies_version v ON true WHERE m.id = $1';

function notFound(id: number): NotFoundError {
  return new NotFoundError(`Movie ${id} not found`);
}
