import type { Client as PgClient } from 'pg';
import type { Knex } from '@crud-master/common';
import type { Movie } from './movie';
import { toMovie, type MovieRow } from './movie-row';

interface Pool {
  acquireConnection(): Promise<PgClient>;
  releaseConnection(c: PgClient): Promise<void>;
}

/** One movie by primary key with its row version (`xmin`), a prepared statement on each pooled connection. */
const BY_ID_SQL = 'SELECT id, title, description, xmin FROM movies WHERE id = $1';
const EPOCH_SQL = 'SELECT epoch FROM movies_version';

/**
 * Reads one movie and its version `<epoch>.<xmin>` for the ETag (see MoviesRepository's
 * getVersioned), straight on a pooled connection: knex's query runner (events, response
 * processing) costs more than the query itself for one row by primary key.
 *
 * The epoch is read once per connection and kept for it. It only tells one database from
 * another (a recreated one reuses ids and transaction ids for other rows), and a database
 * cannot be dropped and recreated under an open connection; a migration that recreated
 * movies_version in place would leave the rows and their xmin, hence their content, as they were.
 * Each lookup is then one statement on one table, not a join with movies_version.
 */
export class MovieByIdReader {
  private readonly epochs = new WeakMap<PgClient, string>();

  constructor(private readonly db: Knex) {}

  async read(id: number): Promise<{ movie: Movie; version: string } | undefined> {
    const pool = this.db.client as Pool;
    const conn = await pool.acquireConnection();
    try {
      const epoch = this.epochs.get(conn) ?? (await this.readEpoch(conn));
      const { rows } = await conn.query<MovieRow & { xmin: string }>({ name: 'movies_by_id_versioned', text: BY_ID_SQL, values: [id] });
      const row = rows[0];
      return row && { movie: toMovie(row), version: `${epoch}.${row.xmin}` };
    } finally {
      await pool.releaseConnection(conn);
    }
  }

  private async readEpoch(conn: PgClient): Promise<string> {
    const { rows } = await conn.query<{ epoch: string }>(EPOCH_SQL);
    const epoch = rows[0]?.epoch;
    if (epoch === undefined) throw new Error('movies_version is empty: migrations did not run');
    this.epochs.set(conn, epoch);
    return epoch;
  }
}
