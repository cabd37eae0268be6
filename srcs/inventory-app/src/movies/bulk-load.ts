import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Client } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { FakeCatalog } from './fake-catalog';

export interface BulkLoadOptions {
  /** How many movies to add. */
  count: number;
  /** PRNG seed: the same seed loads the same movies. */
  seed?: number;
  /** Delete every movie first (ids keep counting up, so cached ids never name new movies). */
  truncate?: boolean;
  /** Called every `progressEvery` rows. */
  onProgress?: (loaded: number) => void;
  progressEvery?: number;
}

export interface BulkLoadResult {
  inserted: number;
  /** Secondary indexes dropped before COPY and rebuilt after it. */
  rebuiltIndexes: string[];
  /** Whether the rows were written already frozen (COPY FREEZE into a just-emptied table). */
  frozen: boolean;
  copyMs: number;
  indexMs: number;
}

/** From this many rows on, building an index once beats maintaining it row by row. */
const REBUILD_THRESHOLD = 50_000;
const ROWS_PER_CHUNK = 2_000;

/** PostgreSQL's COPY text format: backslash, tab, newline and carriage return are escaped. */
export function copyField(value: string): string {
  return /[\\\t\n\r]/.test(value)
    ? value.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r'))
    : value;
}

function* copyRows(count: number, seed: number, onProgress?: (n: number) => void, every = 100_000): Generator<string> {
  const catalog = new FakeCatalog(seed);
  let done = 0;
  while (done < count) {
    const n = Math.min(ROWS_PER_CHUNK, count - done);
    let chunk = '';
    for (let i = 0; i < n; i++) {
      const movie = catalog.movie();
      chunk += `${copyField(movie.title)}\t${copyField(movie.description)}\n`;
    }
    const before = done;
    done += n;
    if (onProgress && Math.floor(done / every) > Math.floor(before / every)) onProgress(done);
    yield chunk;
  }
}

/**
 * Adds `count` generated movies with COPY in one transaction: all of them or none.
 *
 * Into an empty (or `truncate`d) table it goes the fast way: secondary indexes (the trigram
 * index) are dropped and rebuilt once after the load, and rows are written frozen and
 * all-visible (`COPY ... FREEZE`, allowed because the table was emptied in this transaction), so
 * no VACUUM pass is needed before index-only scans work. Appending to a table that has rows
 * keeps the indexes and maintains them as it goes.
 *
 * `client` is a connected `pg.Client` on movies_db with the app's (owner) role; migrations must
 * have run.
 */
export async function bulkLoadMovies(client: Client, options: BulkLoadOptions): Promise<BulkLoadResult> {
  const { count, seed = 1, truncate = false } = options;
  if (!Number.isSafeInteger(count) || count < 0) throw new RangeError(`count must be a whole number, got ${count}`);
  const result: BulkLoadResult = { inserted: 0, rebuiltIndexes: [], frozen: false, copyMs: 0, indexMs: 0 };
  await client.query('BEGIN');
  try {
    // A bulk load need not wait for its WAL flush, and a bigger sort area speeds the GIN build.
    await client.query(`SET LOCAL synchronous_commit = off`);
    await client.query(`SET LOCAL maintenance_work_mem = '256MB'`);
    if (truncate) await client.query('TRUNCATE movies');
    else await client.query('LOCK TABLE movies IN SHARE ROW EXCLUSIVE MODE');
    const empty = (await client.query<{ empty: boolean }>('SELECT NOT EXISTS (SELECT 1 FROM movies) AS empty')).rows[0]?.empty;
    // TRUNCATE of an empty table loses nothing and makes COPY FREEZE legal.
    if (empty && !truncate) await client.query('TRUNCATE movies');

    const indexes: Array<{ name: string; def: string }> = [];
    if (empty && count >= REBUILD_THRESHOLD) {
      const found = await client.query<{ name: string; def: string }>(`
        SELECT i.relname AS name, pg_get_indexdef(i.oid) AS def
          FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
         WHERE x.indrelid = 'movies'::regclass
           AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)`);
      for (const index of found.rows) {
        await client.query(`DROP INDEX ${quoteIdent(index.name)}`);
        indexes.push(index);
      }
    }

    const copyStarted = Date.now();
    const copy = client.query(copyFrom(`COPY movies (title, description) FROM STDIN${empty ? ' WITH (FREEZE)' : ''}`));
    await pipeline(Readable.from(copyRows(count, seed, options.onProgress, options.progressEvery)), copy);
    result.inserted = copy.rowCount;
    result.frozen = Boolean(empty);
    result.copyMs = Date.now() - copyStarted;

    const indexStarted = Date.now();
    for (const index of indexes) {
      await client.query(index.def);
      result.rebuiltIndexes.push(index.name);
    }
    result.indexMs = Date.now() - indexStarted;
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
  // Fresh statistics, so the planner picks the trigram index right away.
  await client.query('ANALYZE movies');
  return result;
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
