import assert from 'node:assert/strict';
import type Koa from 'koa';
import pg from 'pg';
import type { Knex } from '@crud-master/common';
import { createApp } from '../src/app';
import { inventorySchema } from '../src/db/schema';
import { bulkLoadMovies } from '../src/movies/bulk-load';
import { likePattern, type ListFilter } from '../src/movies/list-filter';
import { querySlice, sliceStatement, type Statement } from '../src/movies/list-sql';
import type { Movie } from '../src/movies/movie';
import { fromEnd, pageDirection, pageStrategy, type PageStrategy } from '../src/movies/page-strategy';
import { MoviesRepository } from '../src/movies/repository';
import { OFFSET_MAX } from '../src/movies/schemas';
import { freshDatabase, type TestDatabase } from '../../../test/support/databases';
import { silentLogger } from '../../../test/support/silent-logger';
import { contractRequest } from '../../../test/support/contract';

/** The page as plain OFFSET in id order gives it: what every page must equal. */
async function reference(db: Knex, filter: ListFilter, limit: number, offset: number): Promise<Movie[]> {
  const where = filter.title ? `WHERE title ILIKE ? ESCAPE '\\'` : '';
  const bindings = filter.title ? [likePattern(filter.title), limit, offset] : [limit, offset];
  const { rows } = await db.raw<{ rows: Movie[] }>(`SELECT id, title, description FROM movies ${where} ORDER BY id LIMIT ? OFFSET ?`, bindings);
  return rows;
}

async function referenceTotal(db: Knex, filter: ListFilter): Promise<number> {
  const query = db('movies').count({ n: '*' });
  if (filter.title) query.whereRaw(`title ILIKE ? ESCAPE '\\'`, [likePattern(filter.title)]);
  return Number((await query)[0]?.n);
}

/** Offsets around both ends, around the half where the direction turns, and past the end. */
function edgeOffsets(total: number, limit: number): number[] {
  const half = Math.floor((total - limit) / 2);
  const lastPage = total === 0 ? 0 : Math.floor((total - 1) / limit) * limit;
  const offsets = [0, 1, limit, half - 1, half, half + 1, lastPage - limit, lastPage, total - limit, total - 1, total, total + 1];
  return [...new Set([...offsets, total + 1000, OFFSET_MAX].filter((n) => n >= 0))].sort((a, b) => a - b);
}

describe('inventory-app deep pages, read from the nearer end', () => {
  let testDb: TestDatabase;
  const ROWS = 20_000;

  before(async function () {
    this.timeout(60_000);
    testDb = await freshDatabase(inventorySchema);
    const client = new pg.Client(testDb.owner);
    await client.connect();
    try {
      await bulkLoadMovies(client, { count: ROWS, seed: 7 });
    } finally {
      await client.end();
    }
    // Gaps in the ids: a page counts rows, not ids, from either end.
    await testDb.db.raw('DELETE FROM movies WHERE id % 7 = 3 OR id BETWEEN 9000 AND 9100');
    await testDb.db.raw('VACUUM ANALYZE movies');
  });
  after(async () => {
    await testDb?.db.destroy();
  });

  const explainAnalyze = async ({ sql, bindings }: Statement): Promise<string> => {
    const { rows } = await testDb.db.raw<{ rows: Array<Record<string, string>> }>(`EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) ${sql}`, bindings);
    return rows.map((row) => row['QUERY PLAN']).join('\n');
  };

  it('gives the whole list the same pages as OFFSET in id order, at every edge', async () => {
    const repository = new MoviesRepository(testDb.db);
    const total = await referenceTotal(testDb.db, {});
    for (const limit of [1, 7, 20, 100]) {
      for (const offset of edgeOffsets(total, limit)) {
        const page = await repository.page({}, limit, offset);
        assert.equal(page.total, total);
        assert.deepEqual(page.movies, await reference(testDb.db, {}, limit, offset), `limit ${limit}, offset ${offset}`);
      }
    }
    // Every page of a window of limits across the turn, one by one.
    for (let offset = Math.floor(total / 2) - 30; offset < Math.floor(total / 2) + 5; offset++) {
      assert.deepEqual((await repository.page({}, 50, offset)).movies, await reference(testDb.db, {}, 50, offset), `at ${offset}`);
    }
  });

  /** The statement the repository sends for one page. */
  const pageQuery = async (repository: MoviesRepository, filter: ListFilter, limit: number, offset: number): Promise<Statement> => {
    const captured: Statement[] = [];
    const capture = (query: Statement): void => {
      // As knex sent it, $1, $2, ... in order: back to its own placeholders.
      captured.push({ sql: query.sql.replace(/\$\d+/g, '?'), bindings: query.bindings });
    };
    testDb.db.on('query', capture);
    try {
      await repository.page(filter, limit, offset);
    } finally {
      testDb.db.removeListener('query', capture);
    }
    assert.equal(captured.length, 1);
    return captured[0] as Statement;
  };

  it('reads the last page of the whole list backwards through the primary key alone', async () => {
    const repository = new MoviesRepository(testDb.db);
    const total = await referenceTotal(testDb.db, {});
    const last = await explainAnalyze(await pageQuery(repository, {}, 20, total - 20));
    // Twenty ids from the end, not the whole index; the forward branch reads nothing.
    assert.match(last, /Index Only Scan Backward using movies_pkey on movies \S+ \(actual rows=20 loops=1\)/, last);
    assert.match(last, /Index Only Scan using movies_pkey on movies \S+ \(never executed\)/, last);
    const first = await explainAnalyze(await pageQuery(repository, {}, 20, 0));
    assert.match(first, /Index Only Scan using movies_pkey on movies \S+ \(actual rows=20 loops=1\)/, first);
    assert.match(first, /Index Only Scan Backward using movies_pkey on movies \S+ \(never executed\)/, first);
    const past = await explainAnalyze(await pageQuery(repository, {}, 20, OFFSET_MAX));
    // Past the end: LIMIT 0 at both ends, so not one id is read.
    assert.match(past, /Index Only Scan Backward using movies_pkey on movies \S+ \(never executed\)/, past);
    assert.match(past, /Index Only Scan using movies_pkey on movies \S+ \(never executed\)/, past);
  });

  it('gives filtered lists the same pages whichever strategy and direction, at every edge', async () => {
    for (const title of ['the', 'night', 'wolf', 'quinel', 'no such title at all']) {
      const total = await referenceTotal(testDb.db, { title });
      for (const limit of [1, 7, 25]) {
        for (const offset of edgeOffsets(total, limit)) {
          const expected = await reference(testDb.db, { title }, limit, offset);
          for (const strategy of ['walk', 'all'] as PageStrategy[]) {
            const forward = await querySlice(testDb.db, sliceStatement({ title }, limit, offset, strategy, 'forward'));
            assert.deepEqual(forward.movies, expected, `${title} ${strategy} forward, limit ${limit}, offset ${offset}`);
            const window = fromEnd(total, limit, offset);
            const backward = await querySlice(testDb.db, sliceStatement({ title }, window.limit, window.offset, strategy, 'backward'));
            assert.deepEqual(backward.movies, expected, `${title} ${strategy} backward, limit ${limit}, offset ${offset}`);
          }
        }
      }
    }
  });

  it('pages a filtered list through the repository as OFFSET does, once its total is known', async () => {
    const repository = new MoviesRepository(testDb.db);
    for (const title of ['the', 'night', 'quinel']) {
      const total = (await repository.page({ title }, 20, 0)).total; // counts, caches the total
      assert.equal(total, await referenceTotal(testDb.db, { title }));
      for (const offset of edgeOffsets(total, 20)) {
        const page = await repository.page({ title }, 20, offset);
        assert.equal(page.total, total);
        assert.deepEqual(page.movies, await reference(testDb.db, { title }, 20, offset), `${title} at ${offset}`);
      }
    }
  });

  it("walks a common word's last page backwards from the end of the table", async () => {
    const title = 'the';
    const total = await referenceTotal(testDb.db, { title });
    const rowCount = await referenceTotal(testDb.db, {});
    assert.equal(pageStrategy(total, rowCount, 20, total - 20), 'walk');
    const repository = new MoviesRepository(testDb.db);
    await repository.page({ title }, 20, 0); // counts, caches the total
    const plan = await explainAnalyze(await pageQuery(repository, { title }, 20, total - 20));
    const read = /Index Scan Backward using movies_pkey on movies \(actual rows=(\d+) loops=1\)/.exec(plan);
    assert.ok(read, plan);
    // About 20 / density rows from the end, instead of every row before the page.
    assert.ok(Number(read[1]) < rowCount / 10, plan);
  });

  it('does not see rows another transaction has not committed, and sees them once it has', async () => {
    const repository = new MoviesRepository(testDb.db);
    const total = await referenceTotal(testDb.db, {});
    await repository.page({ title: 'the' }, 20, 0); // caches the filtered total
    const before = await repository.page({}, 20, total - 5);
    await testDb.db.transaction(async (trx) => {
      await trx('movies').insert(Array.from({ length: 30 }, (_, i) => ({ title: `the late one ${i}`, description: '' })));
      // The other connection's snapshot: the same count, the same last page.
      const during = await repository.page({}, 20, total - 5);
      assert.deepEqual(during, before);
      const filteredTotal = await referenceTotal(testDb.db, { title: 'the' });
      const filtered = await repository.page({ title: 'the' }, 20, filteredTotal - 3);
      assert.equal(filtered.total, filteredTotal);
      assert.deepEqual(filtered.movies, await reference(testDb.db, { title: 'the' }, 20, filteredTotal - 3));
    });
    const after = await repository.page({}, 20, total - 5);
    assert.equal(after.total, total + 30);
    assert.deepEqual(after.movies, await reference(testDb.db, {}, 20, total - 5));
    assert.equal(after.movies.length, 20);
    assert.notEqual(after.version, before.version);
    // The cached filtered total is of an older version: counted again, the new rows included.
    const filteredTotal = await referenceTotal(testDb.db, { title: 'the' });
    const filtered = await repository.page({ title: 'the' }, 20, filteredTotal - 3);
    assert.equal(filtered.total, filteredTotal);
    assert.deepEqual(filtered.movies, await reference(testDb.db, { title: 'the' }, 20, filteredTotal - 3));
  });

  describe('over HTTP', () => {
    let app: Koa;
    before(() => {
      app = createApp({ db: testDb.db, config: { bodyLimit: '16kb' }, logger: silentLogger() });
    });
    const http = () => contractRequest(app.callback(), 'inventory');

    it('answers a deep page with the same headers, and 304 to its ETag', async () => {
      const total = await referenceTotal(testDb.db, {});
      const lastOffset = Math.floor((total - 1) / 20) * 20;
      const res = await http().get('/api/movies').query({ limit: 20, offset: lastOffset }).expect(200);
      assert.deepEqual(res.body, await reference(testDb.db, {}, 20, lastOffset));
      assert.equal(res.headers['x-total-count'], String(total));
      assert.match(String(res.headers.link), new RegExp(`offset=${lastOffset - 20}>; rel="prev"`));
      assert.doesNotMatch(String(res.headers.link), /rel="next"/);
      const etag = res.headers.etag as string;
      await http().get('/api/movies').query({ limit: 20, offset: lastOffset }).set('If-None-Match', etag).expect(304);
      const first = await http().get('/api/movies').query({ limit: 20, offset: 0 }).expect(200);
      assert.equal(first.headers.etag, etag, 'one list, one version: the same validator from either end');
    });
  });
});

describe('page direction (unit)', () => {
  it('reads a page backwards once fewer rows follow its start than precede its end', () => {
    assert.equal(pageDirection(100, 10, 0), 'forward');
    assert.equal(pageDirection(100, 10, 45), 'forward'); // 55 rows either way
    assert.equal(pageDirection(100, 10, 46), 'backward');
    assert.equal(pageDirection(100, 10, 90), 'backward');
    assert.equal(pageDirection(100, 10, 1_000), 'backward');
    assert.equal(pageDirection(0, 10, 0), 'backward');
  });

  it('counts the same window from the end: last partial page, past the end', () => {
    assert.deepEqual(fromEnd(100, 10, 90), { limit: 10, offset: 0 });
    assert.deepEqual(fromEnd(100, 10, 60), { limit: 10, offset: 30 });
    assert.deepEqual(fromEnd(95, 10, 90), { limit: 5, offset: 0 });
    assert.deepEqual(fromEnd(95, 10, 95), { limit: 0, offset: 0 });
    assert.deepEqual(fromEnd(95, 10, 10_000), { limit: 0, offset: 0 });
  });

  it("walks a common word's last pages from the end instead of fetching every match", () => {
    // A third of a million rows match: walking forward to the last page passes the whole table.
    assert.equal(pageStrategy(330_000, 1_000_000, 20, 329_980), 'walk');
    assert.equal(pageStrategy(330_000, 1_000_000, 20, 0), 'walk');
    // The middle of a rarer word is still cheaper to find through the index.
    assert.equal(pageStrategy(9_000, 1_000_000, 20, 4_500), 'all');
    assert.equal(pageStrategy(9_000, 1_000_000, 20, 8_980), 'walk');
  });
});
