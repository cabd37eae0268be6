import { NotFoundError, type Knex } from '@crud-master/common';
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

/** The only code that knows how movies are stored. */
export class MoviesRepository {
  constructor(private readonly db: Knex) {}

  async list(filter: { title?: string } = {}): Promise<Movie[]> {
    const query = this.db<MovieRow>(TABLE).select(...COLUMNS).orderBy('id');
    if (filter.title !== undefined && filter.title !== '') {
      query.whereRaw(`title ILIKE ? ESCAPE '\\'`, [likePattern(filter.title)]);
    }
    return (await query).map(toMovie);
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

function notFound(id: number): NotFoundError {
  return new NotFoundError(`Movie ${id} not found`);
}
