import { NotFoundError, type Knex } from '@crud-master/common';
import { CountCache } from './count-cache';
import type { ListFilter } from './list-filter';
import { querySlice, sliceAndCountStatement, sliceStatement, wholePageStatement } from './list-sql';
import { readListVersion } from './list-version';
import type { Movie, MoviePatch, NewMovie } from './movie';
import { MovieByIdReader } from './movie-by-id';
import { openMovieCursor, type MovieCursor } from './movie-cursor';
import { MOVIE_COLUMNS as COLUMNS, toMovie, type MovieRow } from './movie-row';
import { fromEnd, pageDirection, pageStrategy } from './page-strategy';
import { ID_MAX } from './schemas';

const TABLE = 'movies';

/** Rows of a list together with the table state they were read at (one snapshot). */
export interface ListSlice {
  /** `<epoch>.<version>` of the movies table: the list validator (see list-version.ts). */
  version: string;
  movies: Movie[];
}

export interface Page extends ListSlice {
  /** How many movies match the filter in all. */
  total: number;
}

export interface MoviesRepositoryOptions {
  /** Rows fetched per cursor read when streaming a list. */
  cursorBatchSize?: number;
  /** Filtered totals remembered per title for the current table version. */
  countCacheSize?: number;
}

/** The only code that knows how movies are stored. */
export class MoviesRepository {
  private readonly batchSize: number;
  private readonly counts: CountCache;
  private readonly byId: MovieByIdReader;

  constructor(
    private readonly db: Knex,
    options: MoviesRepositoryOptions = {},
  ) {
    this.batchSize = options.cursorBatchSize ?? 1000;
    this.counts = new CountCache(options.countCacheSize ?? 1000);
    this.byId = new MovieByIdReader(db);
  }

  /** The current list validator, from one row. */
  listVersion(): Promise<string> {
    return readListVersion(this.db);
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
    const { version, movies } = await querySlice(this.db, sliceStatement(filter, limit, 0, strategy));
    return { version, movies };
  }

  /**
   * One page and the total it belongs to, both from one snapshot. The unfiltered total is the
   * trigger-kept row count; a filtered total is counted along with the first page asked for, and
   * taken from the cache (when counted at this same version) for the pages after it. A page in
   * the far half of a list whose total is known is read backwards from its end (PageDirection).
   */
  async page(filter: ListFilter, limit: number, offset: number): Promise<Page> {
    const title = filter.title ?? '';
    if (title === '') {
      const { version, rowCount, movies } = await querySlice(this.db, wholePageStatement(limit, offset));
      return { version, movies, total: rowCount };
    }
    const known = this.counts.get(title);
    if (known) {
      const strategy = pageStrategy(known.total, known.rowCount, limit, offset);
      const direction = pageDirection(known.total, limit, offset);
      const window = direction === 'forward' ? { limit, offset } : fromEnd(known.total, limit, offset);
      const statement = sliceStatement(filter, window.limit, window.offset, strategy, direction);
      // Counted from the end of `known.total` rows: right only at `known.version`, checked here.
      const { version, movies } = await querySlice(this.db, statement);
      if (version === known.version) return { version, movies, total: known.total };
      // The table changed since that count: count again, in the same snapshot as the page.
    }
    const { version, rowCount, movies, total = 0 } = await querySlice(this.db, sliceAndCountStatement(filter, limit, offset));
    this.counts.set(title, { version, total, rowCount });
    return { version, movies, total };
  }

  /** A cursor over a whole list (see movie-cursor.ts); the caller must close it. */
  openCursor(filter: ListFilter): Promise<MovieCursor> {
    return openMovieCursor(this.db, filter, this.batchSize);
  }

  /**
   * One movie and its row version for the ETag: `<epoch>.<xmin>`. PostgreSQL writes a new row
   * version, with the writing transaction's id in `xmin`, on every UPDATE, so the pair changes
   * whenever the movie can have changed; `epoch` (see the movies_version migration) keeps a
   * recreated database from reusing one (movie-by-id.ts).
   */
  async getVersioned(id: number): Promise<{ movie: Movie; version: string }> {
    if (id > ID_MAX) throw notFound(id);
    const found = await this.byId.read(id);
    if (!found) throw notFound(id);
    return found;
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
  /**
   * Empties the table and says how many movies it held. TRUNCATE, not DELETE: a DELETE of a
   * million rows takes longer than the statement timeout (and writes every row to the WAL), while
   * TRUNCATE is one cheap statement whatever the size. Its exclusive lock makes the count read
   * right before it exact; the movies_version trigger records it like any other change.
   */
  async removeAll(): Promise<number> {
    return this.db.transaction(async (trx) => {
      await trx.raw(`LOCK TABLE ${TABLE} IN ACCESS EXCLUSIVE MODE`);
      const { rows } = await trx.raw<{ rows: Array<{ row_count: string }> }>('SELECT row_count FROM movies_version');
      await trx.raw(`TRUNCATE ${TABLE}`);
      return Number(rows[0]?.row_count ?? 0);
    });
  }
}

function notFound(id: number): NotFoundError {
  return new NotFoundError(`Movie ${id} not found`);
}
