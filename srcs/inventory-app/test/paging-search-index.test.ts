import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import knex from 'knex';
import pg from 'pg';
import { createDatabase, migrateLatest, type DatabaseConfig, type Knex } from '@crud-master/common';
import { inventorySchema } from '../src/db/schema';
import { TITLE_TRIGRAM_INDEX } from '../src/db/migrations/20261124000000_movies_title_trigram';
import { bulkLoadMovies, copyField } from '../src/movies/bulk-load';
import { FakeCatalog } from '../src/movies/fake-catalog';
import { likePattern } from '../src/movies/list-filter';
import { pageStrategy } from '../src/movies/page-strategy';
import { MoviesRepository } from '../src/movies/repository';
import { freshDatabase, type TestDatabase } from '../../../test/support/databases';
import { sharedPostgres, uniqueName, type PostgresInstance } from '../../../test/harness/fixtures';

const execFileAsync = promisify(execFile);
const ROOT = path.resolve(__dirname, '../../..');

async function withClient<T>(config: DatabaseConfig, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client(config);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** A login role that is not a superuser, as provisioning creates for the owner. */
async function appRole(instance: PostgresInstance): Promise<{ user: string; password: string }> {
  const user = uniqueName('app');
  const password = uniqueName('pw');
  await instance.createRole(user, password);
  return { user, password };
}

describe('inventory-app title search index (pg_trgm) and bulk load', () => {
  describe('the trigram migration', () => {
    let instance: PostgresInstance;
    const opened: Knex[] = [];
    before(async () => {
      instance = await sharedPostgres();
    });
    after(async () => {
      await Promise.all(opened.map((db) => db.destroy()));
    });
    const connect = (config: DatabaseConfig): Knex => {
      const db = createDatabase(config);
      opened.push(db);
      return db;
    };

    it('creates pg_trgm as the database owner without superuser rights (a trusted extension)', async () => {
      const role = await appRole(instance);
      const name = await instance.createDatabase(uniqueName('owned'), role.user);
      const db = connect({ ...instance.connectionConfig(name), ...role });
      await migrateLatest(db, inventorySchema.migrations);
      const ext = await instance.query(`SELECT extname FROM pg_extension WHERE extname = 'pg_trgm'`, [], name);
      assert.equal(ext.length, 1);
      const idx = await instance.query(`SELECT indexdef FROM pg_indexes WHERE indexname = $1`, [TITLE_TRIGRAM_INDEX], name);
      assert.match(String(idx[0]?.indexdef), /USING gin \(title (public\.)?gin_trgm_ops\)/);
    });

    it('explains what to run when the role may not create it, and works once an admin did', async () => {
      const role = await appRole(instance);
      const name = await instance.createDatabase(uniqueName('foreign')); // owned by the superuser
      await instance.query(`REVOKE CREATE ON SCHEMA public FROM PUBLIC`, [], name);
      await instance.query(`GRANT USAGE, CREATE ON SCHEMA public TO "${role.user}"`, [], name);
      // knex's own logger would print the expected migration failure: keep the output clean.
      const quiet = () => undefined;
      const db = knex({
        client: 'pg',
        connection: { ...instance.connectionConfig(name), ...role },
        pool: { min: 0, max: 2 },
        log: { warn: quiet, error: quiet, debug: quiet, deprecate: quiet },
      });
      opened.push(db);
      await assert.rejects(migrateLatest(db, inventorySchema.migrations), (err: Error) => {
        assert.match(err.message, /may not create extension pg_trgm/);
        assert.match(err.message, /CREATE EXTENSION IF NOT EXISTS pg_trgm/);
        return true;
      });
      // What provisioning does as the postgres superuser:
      await instance.query('CREATE EXTENSION IF NOT EXISTS pg_trgm', [], name);
      await migrateLatest(db, inventorySchema.migrations);
      const tables = await db('movies').count({ n: '*' });
      assert.equal(Number(tables[0]?.n), 0);
    });
  });

  describe('at tens of thousands of rows', () => {
    let testDb: TestDatabase;
    const ROWS = 60_000;

    before(async function () {
      this.timeout(60_000);
      testDb = await freshDatabase(inventorySchema);
      const result = await withClient(testDb.owner, (client) => bulkLoadMovies(client, { count: ROWS, seed: 3 }));
      assert.equal(result.inserted, ROWS);
      // Into an empty table, above the threshold: the index is rebuilt once, rows are frozen.
      assert.deepEqual(result.rebuiltIndexes, [TITLE_TRIGRAM_INDEX]);
      assert.equal(result.frozen, true);
    });
    after(async () => {
      await testDb?.db.destroy();
    });

    it('loaded varied titles, the index, and an exact trigger-kept row count', async () => {
      const [stats] = await testDb.db('movies').select(
        testDb.db.raw('count(*)::int AS n'),
        testDb.db.raw('count(DISTINCT title)::int AS distinct_titles'),
        testDb.db.raw(`count(*) FILTER (WHERE title LIKE '%\\%%')::int AS with_percent`),
        testDb.db.raw('avg(length(description))::int AS description_length'),
      );
      assert.equal(stats.n, ROWS);
      assert.ok(stats.distinct_titles > ROWS * 0.5, `only ${stats.distinct_titles} distinct titles`);
      assert.ok(stats.with_percent > 0, 'some titles have a literal %');
      assert.ok(stats.description_length > 60);
      const version = await testDb.db('movies_version').first();
      assert.equal(Number(version.row_count), ROWS);
      const indexes = await testDb.db('pg_indexes').where({ tablename: 'movies' }).pluck('indexname');
      assert.deepEqual(indexes.sort(), ['movies_pkey', TITLE_TRIGRAM_INDEX].sort());
    });

    it('serves the search queries the app sends from the trigram index', async () => {
      const repository = new MoviesRepository(testDb.db);
      const captured: Array<{ sql: string; bindings: unknown[] }> = [];
      const capture = (q: { sql: string; bindings: unknown[] }): void => {
        captured.push(q);
      };
      testDb.db.on('query', capture);
      let page;
      try {
        // Part of an invented name: a selective search, as looking for one title is. The first
        // request counts the total; the second, for the next page, knows it.
        page = await repository.page({ title: 'quinel' }, 20, 0);
        await repository.page({ title: 'quinel' }, 20, 20);
      } finally {
        testDb.db.removeListener('query', capture);
      }
      assert.ok(page.total > 0 && page.total < ROWS / 100, `total ${page.total}`);
      assert.equal(captured.length, 2);
      for (const query of captured) {
        const plan = await withClient(testDb.config, async (client) => {
          const { rows } = await client.query(`EXPLAIN ${query.sql}`, query.bindings);
          return rows.map((r: Record<string, string>) => r['QUERY PLAN']).join('\n');
        });
        // One pass over the matches, through the index, without forcing the planner.
        const uses = plan.split('\n').filter((line) => line.includes(`Bitmap Index Scan on ${TITLE_TRIGRAM_INDEX}`));
        assert.equal(uses.length, 1, plan);
        assert.doesNotMatch(plan, /Seq Scan on movies(?!_version)/, plan);
      }
    });

    it('applies the index to any substring of three characters or more, % and _ included', async () => {
      const plans = await withClient(testDb.config, async (client) => {
        await client.query('SET enable_seqscan = off');
        const out: string[] = [];
        for (const pattern of ['%night%', '%0\\%%', '%ll\\_%']) {
          const { rows } = await client.query(`EXPLAIN SELECT count(*) FROM movies WHERE title ILIKE $1 ESCAPE '\\'`, [pattern]);
          out.push(rows.map((r: Record<string, string>) => r['QUERY PLAN']).join('\n'));
        }
        return out;
      });
      for (const plan of plans) assert.match(plan, new RegExp(`Index Scan on ${TITLE_TRIGRAM_INDEX}`), plan);
    });

    it('finds through the index exactly what a sequential scan finds', async () => {
      const search = async (client: pg.Client) =>
        (await client.query(`SELECT id FROM movies WHERE title ILIKE $1 ESCAPE '\\' ORDER BY id`, ['%NIGHT%'])).rows;
      const viaIndex = await withClient(testDb.config, async (client) => {
        await client.query('SET enable_seqscan = off');
        return search(client);
      });
      const viaScan = await withClient(testDb.config, async (client) => {
        await client.query('SET enable_bitmapscan = off');
        await client.query('SET enable_indexscan = off');
        return search(client);
      });
      assert.ok(viaIndex.length > 100);
      assert.deepEqual(viaIndex, viaScan);
    });

    it('walks the primary key for a common word once its total is known, and the index for a rare one', async () => {
      const repository = new MoviesRepository(testDb.db);
      const plans: Record<string, string> = {};
      for (const term of ['night', 'quinel']) {
        await repository.page({ title: term }, 20, 0); // counts: the total is known from now on
        const captured: Array<{ sql: string; bindings: unknown[] }> = [];
        const capture = (q: { sql: string; bindings: unknown[] }): void => {
          captured.push(q);
        };
        testDb.db.on('query', capture);
        try {
          await repository.page({ title: term }, 20, 20);
        } finally {
          testDb.db.removeListener('query', capture);
        }
        const query = captured[0];
        assert.ok(query);
        plans[term] = await withClient(testDb.config, async (client) => {
          const { rows } = await client.query(`EXPLAIN ${query.sql}`, query.bindings);
          return rows.map((r: Record<string, string>) => r['QUERY PLAN']).join('\n');
        });
      }
      assert.match(plans.night!, /Index Scan using movies_pkey on movies/, plans.night);
      assert.doesNotMatch(plans.night!, new RegExp(TITLE_TRIGRAM_INDEX), plans.night);
      assert.match(plans.quinel!, new RegExp(`Bitmap Index Scan on ${TITLE_TRIGRAM_INDEX}`), plans.quinel);
    });

    it('pages the same way whichever strategy the known total picks', async () => {
      const repository = new MoviesRepository(testDb.db);
      const reference = async (term: string, limit: number, offset: number) =>
        (await testDb.db.raw(
          `SELECT id, title, description FROM movies WHERE title ILIKE ? ESCAPE '\\' ORDER BY id LIMIT ? OFFSET ?`,
          [likePattern(term), limit, offset],
        )).rows;
      for (const term of ['the', 'night', 'quinel', 'wolf']) {
        const first = await repository.page({ title: term }, 25, 0); // counts, caches the total
        assert.deepEqual(first.movies, await reference(term, 25, 0), `${term}, first page`);
        for (const offset of [0, 25, 500, first.total - 5]) {
          const page = await repository.page({ title: term }, 25, Math.max(0, offset)); // cached total: strategy
          assert.equal(page.total, first.total);
          assert.deepEqual(page.movies, await reference(term, 25, Math.max(0, offset)), `${term} at ${offset}`);
        }
      }
    });

    it('appends to a table that has rows, keeping the index and the count', async () => {
      const result = await withClient(testDb.owner, (client) => bulkLoadMovies(client, { count: 500, seed: 99 }));
      assert.equal(result.inserted, 500);
      assert.deepEqual(result.rebuiltIndexes, []);
      assert.equal(result.frozen, false);
      const version = await testDb.db('movies_version').first();
      assert.equal(Number(version.row_count), ROWS + 500);
    });
  });

  describe('npm run seed', () => {
    let testDb: TestDatabase;
    before(async () => {
      testDb = await freshDatabase(inventorySchema);
    });
    after(async () => {
      await testDb?.db.destroy();
    });

    const seed = (args: string[]) =>
      execFileAsync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'srcs/inventory-app/src/seed.ts'), ...args], {
        cwd: ROOT,
        timeout: 60_000,
        env: {
          ...process.env,
          INVENTORY_DB_HOST: testDb.config.host,
          INVENTORY_DB_PORT: String(testDb.config.port),
          INVENTORY_DB_NAME: testDb.config.database,
          INVENTORY_DB_USER: testDb.config.user,
          INVENTORY_DB_PASSWORD: testDb.config.password,
          INVENTORY_DB_OWNER: testDb.owner.user,
          INVENTORY_DB_OWNER_PASSWORD: testDb.owner.password,
        },
      });

    it('loads --movies N into the database named by the environment, --truncate first', async function () {
      this.timeout(60_000);
      const first = await seed(['--movies', '700']);
      assert.match(first.stdout, /700 movies in/);
      await seed(['--movies', '300', '--truncate', '--seed', '5']);
      const [row] = await testDb.db('movies').count({ n: '*' });
      assert.equal(Number(row?.n), 300);
    });

    it('refuses bad arguments with its usage and exit status 2', async function () {
      this.timeout(60_000);
      for (const args of [[], ['--movies', 'many'], ['--movies', '5', '--bogus']]) {
        await assert.rejects(seed(args), (err: { code?: number; stderr?: string }) => {
          assert.equal(err.code, 2);
          assert.match(String(err.stderr), /Usage: npm run seed -- --movies N/);
          return true;
        });
      }
    });
  });

  describe('page strategy (unit)', () => {
    it('walks the primary key for dense matches and fetches all matches for sparse ones', () => {
      assert.equal(pageStrategy(300_000, 1_000_000, 20, 0), 'walk');
      assert.equal(pageStrategy(9_000, 1_000_000, 20, 0), 'walk');
      assert.equal(pageStrategy(700, 1_000_000, 20, 0), 'all');
      assert.equal(pageStrategy(0, 1_000_000, 20, 0), 'all');
      // Deep pages of a common word: walking would pass most of the table.
      assert.equal(pageStrategy(9_000, 1_000_000, 20, 8_000), 'all');
      assert.equal(pageStrategy(10, 29, 4, 4), 'walk');
    });
  });

  describe('generated data (unit)', () => {
    it('escapes what COPY text format treats specially', () => {
      assert.equal(copyField('plain'), 'plain');
      assert.equal(copyField('a\tb\nc\rd\\e'), 'a\\tb\\nc\\rd\\\\e');
    });

    it('is deterministic for a seed and differs across seeds', () => {
      const a = new FakeCatalog(42);
      const b = new FakeCatalog(42);
      const c = new FakeCatalog(43);
      const first = Array.from({ length: 50 }, () => a.movie());
      assert.deepEqual(first, Array.from({ length: 50 }, () => b.movie()));
      assert.notDeepEqual(first, Array.from({ length: 50 }, () => c.movie()));
      for (const movie of first) {
        assert.ok(movie.title.length > 0 && movie.title.length <= 255);
        assert.doesNotMatch(movie.description, /\ba [aeiou]/i);
      }
    });
  });
});
