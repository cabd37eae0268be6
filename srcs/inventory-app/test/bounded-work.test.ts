import assert from 'node:assert/strict';
import type Koa from 'koa';
import pg from 'pg';
import { createDatabase, type Knex } from '@crud-master/common';
import { createApp } from '../src/app';
import { inventorySchema } from '../src/db/schema';
import { JsonArrayStream } from '../src/movies/list-stream';
import { MoviesRepository } from '../src/movies/repository';
import { isIndexableTerm } from '../src/movies/text-rules';
import { freshDatabase, type TestDatabase } from '../../../test/support/databases';
import { silentLogger } from '../../../test/support/silent-logger';
import { contractRequest } from '../../../test/support/contract';

/*
 * Bounded work per request (issue 11): a statement timeout on every pooled session, title terms
 * the search index cannot serve refused on a big table, a deadline on every streamed list, and
 * text that PostgreSQL cannot store (NUL) or that is not valid Unicode refused before the query.
 */
describe('inventory-app bounded work', () => {
  let testDb: TestDatabase;
  before(async () => {
    testDb = await freshDatabase(inventorySchema);
    await testDb.db('movies').insert(Array.from({ length: 30 }, (_, i) => ({ title: `Bounded movie ${i}`, description: '' })));
  });
  after(async () => {
    await testDb?.db.destroy();
  });

  describe('a statement over INVENTORY_DB_STATEMENT_TIMEOUT_MS', () => {
    let slowDb: Knex;
    let app: Koa;
    before(async () => {
      slowDb = createDatabase({ ...testDb.config, statementTimeoutMs: 50 });
      app = createApp({ db: slowDb, config: { bodyLimit: '16kb' }, logger: silentLogger() });
    });
    after(async () => {
      await slowDb?.destroy();
    });

    it('cancels a statement that runs past the timeout (SQLSTATE 57014), while ordinary requests stay far below it', async () => {
      // The pool's statement_timeout applies to every query; force a slow one through the same pool.
      await assert.rejects(slowDb.raw('SELECT pg_sleep(1)'), (err: { code?: string }) => err.code === '57014');
      const res = await contractRequest(app.callback(), 'inventory').get('/api/movies?title=movie&limit=5').expect(200);
      assert.equal(res.body.length, 5, 'ordinary requests are far below the timeout');
    });

    it('bounds each fetch of a streamed list, not the whole stream: a list read for longer than the timeout arrives whole', async () => {
      // Batches of 5 over 30 movies, a pause of four timeouts before each read: the stream lasts
      // far longer than the statement timeout while every fetch stays far below it.
      const movies = new MoviesRepository(slowDb, { cursorBatchSize: 5 });
      const cursor = await movies.openCursor({});
      const ids: number[] = [];
      try {
        for (;;) {
          await new Promise((resolve) => setTimeout(resolve, 200));
          const batch = await cursor.read();
          if (batch.length === 0) break;
          ids.push(...batch.map((m) => m.id));
        }
      } finally {
        await cursor.close();
      }
      assert.equal(ids.length, 30);
    });

    it('cancels a fetch of a streamed list that runs past the timeout, and frees its connection', async () => {
      const movies = new MoviesRepository(slowDb, { cursorBatchSize: 5 });
      // The owner holds the table: the cursor's first fetch waits for the lock, past the timeout.
      const owner = new pg.Client(testDb.owner);
      await owner.connect();
      try {
        await owner.query('BEGIN');
        await owner.query('LOCK TABLE movies IN ACCESS EXCLUSIVE MODE');
        const cursor = await movies.openCursor({});
        await assert.rejects(cursor.read(), (err: { code?: string }) => err.code === '57014');
        await cursor.close();
      } finally {
        await owner.query('ROLLBACK');
        await owner.end();
      }
      const pool = (slowDb.client as { pool: { numUsed(): number } }).pool;
      assert.equal(pool.numUsed(), 0);
      const res = await contractRequest(app.callback(), 'inventory').get('/api/movies?limit=5').expect(200);
      assert.equal(res.body.length, 5);
    });

    it('answers 503 query_timeout through the error middleware', async () => {
      const koa = createApp({ db: slowDb, config: { bodyLimit: '16kb' }, logger: silentLogger() });
      // Every list reads movies_version: make that read take 200 ms, four times the timeout
      // (as the owner: the app role may not alter a table).
      const owner = createDatabase(testDb.owner, { poolMax: 1 });
      await owner.raw('ALTER TABLE movies_version RENAME TO movies_version_fast');
      try {
        await owner.raw('CREATE VIEW movies_version AS SELECT f.* FROM movies_version_fast f, pg_sleep(0.2)');
        await owner.raw('GRANT SELECT ON movies_version TO ??', [testDb.config.user]);
        const res = await contractRequest(koa.callback(), 'inventory').get('/api/movies?limit=5').expect(503);
        assert.equal(res.body.error.code, 'query_timeout');
        assert.equal(res.headers['retry-after'], '1');
      } finally {
        await owner.raw(`DROP VIEW IF EXISTS movies_version`);
        await owner.raw(`ALTER TABLE movies_version_fast RENAME TO movies_version`);
        await owner.destroy();
      }
    });
  });

  describe('title terms the search index cannot serve', () => {
    it('are searched while the table is small, refused with 400 above INVENTORY_UNINDEXED_SEARCH_MAX_ROWS', async () => {
      const small = createApp({ db: testDb.db, config: { bodyLimit: '16kb', unindexedSearchMaxRows: 1000 }, logger: silentLogger() });
      const big = createApp({ db: testDb.db, config: { bodyLimit: '16kb', unindexedSearchMaxRows: 10 }, logger: silentLogger() });
      await contractRequest(small.callback(), 'inventory').get('/api/movies?title=e%201').expect(200);
      for (const term of ['e%201', 'ab', '%25', '_', 'a b c']) {
        const res = await contractRequest(big.callback(), 'inventory').get(`/api/movies?title=${term}&limit=5`).expect(400);
        assert.match(res.body.error.message, /3 letters or digits in a row/);
      }
      const ok = await contractRequest(big.callback(), 'inventory').get('/api/movies?title=movie%201&limit=5').expect(200);
      assert.equal(ok.headers['x-total-count'], '11');
    });

    it('tells indexable terms apart: three letters or digits in a row', () => {
      assert.deepEqual(['abc', 'é1z', 'x 123', 'ab', 'a-b-c', '%%%', '12'].map(isIndexableTerm), [true, true, true, false, false, false, false]);
    });
  });

  describe('text PostgreSQL cannot store, or that is not valid Unicode', () => {
    it('is a 400 before the database, never a 500', async () => {
      const app = createApp({ db: testDb.db, config: { bodyLimit: '16kb' }, logger: silentLogger() });
      const http = () => contractRequest(app.callback(), 'inventory');
      const before = await testDb.db('movies').count<{ count: string }[]>({ count: '*' });
      for (const body of ['{"title":"a\\u0000b"}', '{"title":"bell\\u0007"}', '{"title":"two\\nlines"}', '{"title":"x","description":"\\u0000"}', '{"title":"\\ud800"}', '{"title":"x","description":"\\udc00"}']) {
        const res = await http().post('/api/movies').set('Content-Type', 'application/json').send(body).expect(400);
        assert.equal(res.body.error.code, 'validation_error', body);
      }
      await http().get('/api/movies?title=a%00b').expect(400);
      const ok = await http().post('/api/movies').set('Content-Type', 'application/json').send('{"title":"Tabs ok","description":"line 1\\r\\nline 2\\tend"}').expect(200);
      assert.equal(ok.body.description, 'line 1\r\nline 2\tend');
      const after = await testDb.db('movies').count<{ count: string }[]>({ count: '*' });
      assert.equal(Number(after[0]?.count), Number(before[0]?.count) + 1);
    });
  });

  describe('a streamed list', () => {
    it('is cut at its deadline however slowly the client reads, and its cursor closed', async () => {
      let closed = 0;
      const source = { read: async () => [{ id: 1, title: 't', description: '' }], close: async () => void closed++ };
      const stream = new JsonArrayStream(source, [{ id: 1, title: 't', description: '' }], { stallTimeoutMs: 10_000, deadlineMs: 100 });
      const error = await new Promise<NodeJS.ErrnoException>((resolve) => {
        stream.on('error', resolve);
        // A slow reader: one chunk now and then, never stalled long enough for the stall timeout.
        const timer = setInterval(() => stream.read(), 20);
        stream.once('close', () => clearInterval(timer));
      });
      assert.equal(error.code, 'ERR_STREAM_DEADLINE');
      assert.equal(closed, 1);
    });
  });
});
