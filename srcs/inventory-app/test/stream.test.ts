import assert from 'node:assert/strict';
import http from 'node:http';
import Koa from 'koa';
import pg from 'pg';
import { addressOf, closeServer, errorMiddleware, listen, type Logger } from '@crud-master/common';
import { inventorySchema } from '../src/db/schema';
import { bulkLoadMovies } from '../src/movies/bulk-load';
import { JsonArrayStream, type MovieSource } from '../src/movies/list-stream';
import type { Movie } from '../src/movies/movie';
import type { ListFilter } from '../src/movies/list-filter';
import type { MovieCursor } from '../src/movies/movie-cursor';
import { MoviesRepository } from '../src/movies/repository';
import { createMoviesRouter, type MoviesRouterDeps } from '../src/movies/router';
import { freshDatabase, type TestDatabase } from '../../../test/support/databases';
import { silentLogger } from '../../../test/support/silent-logger';
import { sharedPostgres, waitFor } from '../../../test/harness/fixtures';

const MOVIES = 3000;
const BATCH = 100;

interface StreamedResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** Whether the body ended properly (the terminating chunk arrived). */
  complete: boolean;
}

/** One request; resolves when the response ends or is cut off, never rejects on a cut. */
function fetchRaw(url: string, options: { method?: string; headers?: Record<string, string> } = {}): Promise<StreamedResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: options.method ?? 'GET', headers: options.headers, agent: false, timeout: 15_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', () => undefined); // 'aborted': reported through `complete`
      res.on('close', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), complete: res.complete }),
      );
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url} within 15 s`)));
    req.on('error', reject);
    req.end();
  });
}

/** A repository whose cursors run `hook(readNumber)` before each read: to fail or stall on cue. */
class HookedRepository extends MoviesRepository {
  hook: (read: number) => Promise<void> = async () => undefined;

  override async openCursor(filter: ListFilter): Promise<MovieCursor> {
    const cursor = await super.openCursor(filter);
    let reads = 0;
    return {
      version: cursor.version,
      read: async () => {
        await this.hook(++reads);
        return cursor.read();
      },
      close: () => cursor.close(),
    };
  }
}

describe('inventory-app GET /api/movies streamed from a cursor', () => {
  let testDb: TestDatabase;
  let repository: HookedRepository;
  let server: http.Server;
  let baseUrl: string;
  let expected: Movie[];
  const logged: Array<{ msg: string; err: unknown }> = [];
  const record = (obj: { err?: unknown }, msg: string) => logged.push({ msg, err: obj.err });
  const logger = { ...silentLogger(), error: record, warn: record } as unknown as Logger;
  let routerOptions: Partial<MoviesRouterDeps> = {};

  const poolInUse = (): number => (testDb.db.client as { pool: { numUsed(): number } }).pool.numUsed();

  before(async () => {
    testDb = await freshDatabase(inventorySchema);
    const client = new pg.Client(testDb.owner);
    await client.connect();
    try {
      await bulkLoadMovies(client, { count: MOVIES, seed: 7 });
    } finally {
      await client.end();
    }
    expected = await testDb.db('movies').select('id', 'title', 'description').orderBy('id');
    repository = new HookedRepository(testDb.db, { cursorBatchSize: BATCH });
    const app = new Koa();
    app.silent = true;
    app.use(errorMiddleware(silentLogger()));
    // A new router whenever a test sets its own options (the stream limit lives in the router).
    let router: ReturnType<typeof createMoviesRouter> | undefined;
    let builtFor: Partial<MoviesRouterDeps> | undefined;
    app.use(async (ctx, next) => {
      if (router === undefined || builtFor !== routerOptions) {
        router = createMoviesRouter({ movies: repository, bodyLimit: '16kb', logger, streamAbove: BATCH, ...routerOptions });
        builtFor = routerOptions;
      }
      await router.routes()(ctx as never, next);
    });
    server = await listen(app.callback(), { host: '127.0.0.1', port: 0 });
    baseUrl = addressOf(server);
  });
  after(async () => {
    if (server) {
      server.closeAllConnections();
      await closeServer(server);
    }
    await testDb?.db.destroy();
  });
  afterEach(async () => {
    repository.hook = async () => undefined;
    routerOptions = {};
    logged.length = 0;
    // Every test must leave no cursor open and no connection checked out.
    await waitFor(() => poolInUse() === 0, { timeoutMs: 5_000, description: 'the pool to have no connection in use' });
  });

  it('sends every movie as one JSON array, chunked, byte for byte what JSON.stringify writes', async () => {
    const res = await fetchRaw(`${baseUrl}/api/movies`);
    assert.equal(res.status, 200);
    assert.equal(res.complete, true);
    assert.equal(res.headers['transfer-encoding'], 'chunked');
    assert.equal(res.headers['content-length'], undefined);
    assert.match(String(res.headers['content-type']), /^application\/json; charset=utf-8$/);
    assert.equal(res.headers['cache-control'], 'no-cache');
    assert.match(String(res.headers.etag), /^"l1\./);
    assert.equal(res.body.toString('utf8'), JSON.stringify(expected));
  });

  it('streams a filtered list the same way', async () => {
    const res = await fetchRaw(`${baseUrl}/api/movies/?title=the`);
    assert.equal(res.status, 200);
    assert.equal(res.complete, true);
    const want = expected.filter((m) => m.title.toLowerCase().includes('the'));
    assert.ok(want.length > BATCH, `the seed gave only ${want.length} matches`);
    assert.deepEqual(JSON.parse(res.body.toString('utf8')), want);
  });

  it('answers a list of at most one batch whole, with a Content-Length', async () => {
    const res = await fetchRaw(`${baseUrl}/api/movies?title=${encodeURIComponent(expected[0]!.title)}`);
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-length'], String(res.body.length));
    const list = JSON.parse(res.body.toString('utf8')) as Movie[];
    assert.ok(list.length >= 1 && list.length <= BATCH);
  });

  it('answers HEAD with the headers of the streamed GET and no body, without streaming', async () => {
    const get = await fetchRaw(`${baseUrl}/api/movies`);
    let cursorsOpened = 0;
    repository.hook = async () => {
      cursorsOpened++;
    };
    const head = await fetchRaw(`${baseUrl}/api/movies`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.body.length, 0);
    assert.equal(head.headers.etag, get.headers.etag);
    assert.equal(head.headers['content-type'], get.headers['content-type']);
    assert.equal(head.headers['content-length'], undefined);
    assert.equal(cursorsOpened, 0);
  });

  it('answers 304 to a client whose copy of the whole list is current', async () => {
    const get = await fetchRaw(`${baseUrl}/api/movies`);
    const res = await fetchRaw(`${baseUrl}/api/movies`, { headers: { 'If-None-Match': String(get.headers.etag) } });
    assert.equal(res.status, 304);
    assert.equal(res.body.length, 0);
  });

  it('cuts the connection, rather than end a shorter array, when reading fails midway', async () => {
    repository.hook = async (read) => {
      if (read === 5) throw new Error('injected cursor failure');
    };
    const res = await fetchRaw(`${baseUrl}/api/movies`);
    assert.equal(res.status, 200, 'the headers went out before the failure');
    assert.equal(res.complete, false, 'the chunked body must not end normally');
    const text = res.body.toString('utf8');
    assert.ok(text.startsWith('[{"id":'), text.slice(0, 40));
    assert.throws(() => JSON.parse(text), SyntaxError);
    assert.ok(text.length < JSON.stringify(expected).length);
    assert.equal(logged.length, 1);
    assert.match(String((logged[0]!.err as Error).message), /injected cursor failure/);
  });

  it('cuts the connection when the database connection dies midway, and recovers for the next request', async () => {
    const pgInstance = await sharedPostgres();
    repository.hook = async (read) => {
      if (read !== 3) return;
      // Between fetches the cursor's backend is "idle in transaction": kill it.
      const killed = await pgInstance.query(
        `SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity
          WHERE datname = $1 AND state LIKE 'idle in transaction%'`,
        [testDb.config.database],
      );
      assert.equal(killed.length, 1);
    };
    const res = await fetchRaw(`${baseUrl}/api/movies`);
    assert.equal(res.status, 200);
    assert.equal(res.complete, false);
    assert.throws(() => JSON.parse(res.body.toString('utf8')), SyntaxError);

    repository.hook = async () => undefined;
    const again = await fetchRaw(`${baseUrl}/api/movies`);
    assert.equal(again.complete, true);
    assert.equal(again.body.toString('utf8'), JSON.stringify(expected));
  });

  it('closes the cursor and frees the connection when the client hangs up midway', async () => {
    let reads = 0;
    repository.hook = async (read) => {
      reads = read;
    };
    await new Promise<void>((resolve, reject) => {
      const req = http.get(`${baseUrl}/api/movies`, { agent: false }, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', () => undefined);
      setTimeout(() => reject(new Error('no data within 5 s')), 5_000).unref();
    });
    await waitFor(() => poolInUse() === 0, { timeoutMs: 5_000, description: 'the cursor connection to return' });
    const open = await (await sharedPostgres()).query(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND state LIKE 'idle in transaction%'`,
      [testDb.config.database],
    );
    assert.equal(open[0]!.n, 0, 'no transaction left open');
    assert.ok(reads < MOVIES / BATCH, `read ${reads} batches: the stream should have stopped early`);
    assert.equal(logged.length, 0, 'a client hanging up is not an error');
  });

  it('answers 503 busy when too many whole lists are being streamed', async () => {
    routerOptions = { maxConcurrentStreams: 1 };
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    repository.hook = async (read) => {
      if (read === 2) await gate;
    };
    const first = fetchRaw(`${baseUrl}/api/movies`);
    await waitFor(() => poolInUse() === 1, { timeoutMs: 5_000, description: 'the first stream to hold its cursor' });
    const second = await fetchRaw(`${baseUrl}/api/movies`);
    assert.equal(second.status, 503);
    assert.equal(second.headers['retry-after'], '1');
    assert.equal((JSON.parse(second.body.toString('utf8')) as { error: { code: string } }).error.code, 'busy');
    // Paged and short answers hold no cursor: they are not limited.
    const page = await fetchRaw(`${baseUrl}/api/movies?limit=5`);
    assert.equal(page.status, 200);
    release();
    const done = await first;
    assert.equal(done.complete, true);
    assert.equal(done.body.toString('utf8'), JSON.stringify(expected));
    const third = await fetchRaw(`${baseUrl}/api/movies`);
    assert.equal(third.status, 200);
  });
});

describe('JsonArrayStream (unit)', () => {
  function source(batches: Movie[][]): MovieSource & { closed: number } {
    const s = {
      closed: 0,
      read: async () => batches.shift() ?? [],
      close: async () => {
        s.closed++;
      },
    };
    return s;
  }
  const movie = (id: number): Movie => ({ id, title: `T"${id}\u00e9`, description: 'd\n' });

  it('writes the batches as one JSON array and closes the source', async () => {
    const src = source([[movie(2), movie(3)], [movie(4)]]);
    const stream = new JsonArrayStream(src, [movie(1)], { stallTimeoutMs: 1000 });
    let text = '';
    for await (const chunk of stream) text += String(chunk);
    assert.equal(text, JSON.stringify([1, 2, 3, 4].map(movie)));
    assert.ok(src.closed >= 1);
  });

  it('destroys itself and closes the source when the reader stalls', async () => {
    const big = Array.from({ length: 2000 }, (_, i) => movie(i));
    const src = source([big, big]);
    const stream = new JsonArrayStream(src, big, { stallTimeoutMs: 50 });
    const failed = new Promise<Error>((resolve) => stream.once('error', resolve));
    stream.read(0); // start, then never read again
    const err = await failed;
    assert.match(err.message, /read nothing for 50 ms/);
    assert.equal((err as NodeJS.ErrnoException).code, 'ERR_CLIENT_STALLED');
    await waitFor(() => src.closed >= 1, { timeoutMs: 2000 });
  });
});
