import type { Client as PgClient } from 'pg';
import Cursor from 'pg-cursor';
import type { Knex } from '@crud-master/common';
import { filterSql, type ListFilter } from './list-filter';
import type { MovieSource } from './list-stream';
import { LIST_VERSION_SQL, listVersionOf, type VersionRow } from './list-version';
import type { Movie } from './movie';
import { toMovie, type MovieRow } from './movie-row';

/** An open cursor over a list, in a read-only REPEATABLE READ transaction holding one connection. */
export interface MovieCursor extends MovieSource {
  readonly version: string;
}

interface Pool {
  acquireConnection(): Promise<PgClient>;
  releaseConnection(c: PgClient): Promise<void>;
}

/**
 * Opens a cursor over a whole list on a connection of its own, inside a read-only REPEATABLE
 * READ transaction so that `version` describes exactly the rows the cursor returns. The caller
 * must `close()` it (JsonArrayStream does, whatever happens); until then it holds a pooled
 * connection.
 */
export async function openMovieCursor(db: Knex, filter: ListFilter, batchSize: number): Promise<MovieCursor> {
  const { where, bindings } = filterSql(filter);
  const sql = `SELECT id, title, description FROM movies WHERE ${where.replace('?', '$1')} ORDER BY id`;
  const pool = db.client as Pool;
  const conn = await pool.acquireConnection();
  let broken = false;
  const release = async (): Promise<void> => {
    // A connection in an unknown state must not go back to the pool: ending it makes knex
    // discard it (its 'end' listener marks it disposed).
    if (broken) await conn.end().catch(() => undefined);
    await pool.releaseConnection(conn);
  };

  let version: string;
  let cursor: Cursor<MovieRow>;
  try {
    await conn.query('BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY');
    const { rows } = await conn.query<VersionRow>(LIST_VERSION_SQL);
    version = listVersionOf(rows[0]);
    cursor = conn.query(new Cursor<MovieRow>(sql, bindings));
  } catch (err) {
    broken = true;
    await release();
    throw err;
  }

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
