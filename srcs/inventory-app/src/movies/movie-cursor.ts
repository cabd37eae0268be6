import type { Client as PgClient } from 'pg';
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

const CURSOR = 'movie_list';

/**
 * Opens a cursor over a whole list on a connection of its own, inside a read-only REPEATABLE
 * READ transaction so that `version` describes exactly the rows the cursor returns. The caller
 * must `close()` it (JsonArrayStream does, whatever happens); until then it holds a pooled
 * connection.
 *
 * An SQL cursor (DECLARE, then one FETCH per batch) rather than a protocol-level portal
 * (pg-cursor): each FETCH is a statement of its own, so the pool's statement_timeout bounds every
 * batch, whereas a portal's Execute messages all count as one statement until the final Sync and
 * the timeout would cut any list that takes longer than it to send. The whole stream is bounded
 * by its own deadline (JsonArrayStream).
 */
export async function openMovieCursor(db: Knex, filter: ListFilter, batchSize: number): Promise<MovieCursor> {
  const { where, bindings } = filterSql(filter);
  const declare = `DECLARE ${CURSOR} NO SCROLL CURSOR FOR SELECT id, title, description FROM movies WHERE ${where.replace('?', '$1')} ORDER BY id`;
  const fetch = `FETCH FORWARD ${Math.max(1, Math.floor(batchSize))} FROM ${CURSOR}`;
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
  try {
    await conn.query('BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY');
    const { rows } = await conn.query<VersionRow>(LIST_VERSION_SQL);
    version = listVersionOf(rows[0]);
    await conn.query(declare, bindings);
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
      const rows = conn.query<MovieRow>(fetch).then(
        (result) => result.rows.map(toMovie),
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
            // COMMIT closes the cursor.
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
