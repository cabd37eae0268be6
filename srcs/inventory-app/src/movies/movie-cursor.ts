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
  /** Runs pg_cancel_backend for `c` on a connection of its own (knex's PostgreSQL client). */
  cancelQuery(c: PgClient): Promise<unknown>;
}

/**
 * Opens a cursor over a whole list on a connection of its own, inside a read-only REPEATABLE
 * READ transaction so that `version` describes exactly the rows the cursor returns. The caller
 * must `close()` it (JsonArrayStream does, whatever happens); until then it holds a pooled
 * connection.
 *
 * The pool's statement_timeout bounds each read, not the whole list. PostgreSQL counts every
 * Execute of a portal up to the next Sync as one statement, so its own timer would cut any list
 * that takes longer than the timeout to send: the transaction lifts it (SET LOCAL) and each read
 * is cancelled here instead once it runs past the session's timeout (boundedRead). An SQL cursor
 * (DECLARE, one FETCH per batch) would keep the timer in PostgreSQL, but FETCH copies every batch
 * into a tuple store first: 15 to 25% slower for a million movies, and more memory.
 */
export async function openMovieCursor(db: Knex, filter: ListFilter, batchSize: number): Promise<MovieCursor> {
  const { where, bindings } = filterSql(filter);
  const sql = `SELECT id, title, description FROM movies WHERE ${where.replace('?', '$1')} ORDER BY id`;
  const pool = db.client as Pool;
  const conn = await pool.acquireConnection();
  const fetchLimitMs = sessionStatementTimeout(conn);
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
    if (fetchLimitMs > 0) await conn.query('SET LOCAL statement_timeout = 0');
    cursor = conn.query(new Cursor<MovieRow>(sql, bindings));
  } catch (err) {
    broken = true;
    await release();
    throw err;
  }

  let inFlight: Promise<unknown> = Promise.resolve();
  let closing: Promise<void> | undefined;
  const cancel = async (): Promise<void> => {
    broken = true;
    // Cancelled, the read fails with 57014 (query_canceled); if the cancel itself cannot get
    // through, ending the connection fails the read all the same.
    await pool.cancelQuery(conn).catch(() => conn.end().catch(() => undefined));
  };
  return {
    version,
    read(): Promise<Movie[]> {
      if (closing) return Promise.reject(new Error('cursor is closed'));
      const rows = boundedRead(cursor.read(batchSize), fetchLimitMs, cancel).then(
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

/** The statement_timeout the pool gives its sessions (ms, 0: none). */
function sessionStatementTimeout(conn: PgClient): number {
  const { connectionParameters } = conn as PgClient & { connectionParameters?: { statement_timeout?: number | false } };
  return Number(connectionParameters?.statement_timeout || 0);
}

/** `read`, with `cancel` called should it still run after `limitMs` (0: no limit). */
function boundedRead<T>(read: Promise<T>, limitMs: number, cancel: () => Promise<void>): Promise<T> {
  if (limitMs <= 0) return read;
  const timer = setTimeout(() => void cancel(), limitMs);
  return read.finally(() => clearTimeout(timer));
}
