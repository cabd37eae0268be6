import type { Movie } from './movie';

/** A row of the `movies` table. */
export interface MovieRow {
  id: number;
  title: string;
  description: string;
}

export const MOVIE_COLUMNS = ['id', 'title', 'description'];

export function toMovie(row: MovieRow): Movie {
  return { id: row.id, title: row.title, description: row.description };
}
