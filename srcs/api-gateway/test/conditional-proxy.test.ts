import assert from 'node:assert/strict';
import http from 'node:http';
import Koa from 'koa';
import pg from 'pg';
import { addressOf, closeServer, errorMiddleware, listen, requestContext } from '@crud-master/common';
import { inventorySchema } from '../../inventory-app/src/db/schema';
import { bulkLoadMovies } from '../../inventory-app/src/movies/bulk-load';
import type { ListFilter } from '../../inventory-app/src/movies/list-filter';
import type { MovieCursor } from '../../inventory-app/src/movies/movie-cursor';
import { MoviesRepository } from '../../inventory-app/src/movies/repository';
import { createMoviesRouter } from '../../inventory-app/src/movies/router';
import { createApp as createGatewayApp } from '../src/app';
import { freshDatabase, type TestDatabase } from '../../../test/support/databases';
import { silentLogger } from '../../../test/support/silent-logger';
import { endToEndHeaders, rawRequest, type RawRequest, type RawResponse } from '../../../test/support/http';
import { checkedRawRequest } from '../../../test/support/contract';

// Every complete response of the gateway is also checked against openapi.yaml (the inventory's
// own answers are compared with the gateway's byte for byte).
const viaGateway = checkedRawRequest();

/** Fails the cursor's `failOnRead`-th read when set: a list stream that breaks midway. */
class FlakyRepository extends MoviesRepository {
  failOnRead: number | undefined;

  override async openCursor(filter: ListFilter): Promise<MovieCursor> {
    const cursor = await super.openCursor(filter);
    let reads = 0;
    return {
      version: cursor.version,
      read: async () => {
        if (++reads === this.failOnRead) throw new Error('injected failure');
        return cursor.read();
      },
      close: () => cursor.close(),
    };
  }
}

/** Like rawRequest, but a response cut short resolves with `complete: false` instead of hanging or failing. */
function fetchMaybeCut(baseUrl: string, path: string): Promise<{ status: number; body: Buffer; complete: boolean }> {
  return new Promise((resolve, reject) => {
    const req = http.get(new URL(path, baseUrl), { agent: false, timeout: 15_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', () => undefined);
      res.on('close', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), complete: res.complete }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer for ${path} within 15 s`)));
    req.on('error', reject);
  });
}

describe('api-gateway passes conditional and paged movie responses through unchanged', () => {
  let testDb: TestDatabase;
  let repository: FlakyRepository;
  let inventory: http.Server;
  let inventoryUrl: string;
  let gateway: http.Server;
  let gatewayUrl: string;
  let agent: http.Agent;

  before(async function () {
    this.timeout(60_000);
    testDb = await freshDatabase(inventorySchema);
    const client = new pg.Client(testDb.owner);
    await client.connect();
    try {
      await bulkLoadMovies(client, { count: 2500, seed: 11 });
    } finally {
      await client.end();
    }
    repository = new FlakyRepository(testDb.db, { cursorBatchSize: 200 });
    const app = new Koa();
    app.silent = true;
    // As createApp wires it (which builds its own repository): request ids, then errors.
    app.use(requestContext(silentLogger()));
    app.use(errorMiddleware(silentLogger()));
    const movies = createMoviesRouter({ movies: repository, bodyLimit: '16kb' });
    app.use(movies.routes()).use(movies.allowedMethods());
    inventory = await listen(app.callback(), { host: '127.0.0.1', port: 0 });
    inventoryUrl = addressOf(inventory);
    agent = new http.Agent({ keepAlive: true });
    const gatewayApp = createGatewayApp({
      config: { inventoryUrl, upstreamTimeoutMs: 5000 },
      logger: silentLogger(),
      inventoryAgent: agent,
    });
    gateway = await listen(gatewayApp.callback(), { host: '127.0.0.1', port: 0 });
    gatewayUrl = addressOf(gateway);
  });
  after(async () => {
    agent?.destroy();
    if (gateway) await closeServer(gateway);
    if (inventory) {
      inventory.closeAllConnections();
      await closeServer(inventory);
    }
    await testDb?.db.destroy();
  });
  afterEach(() => {
    repository.failOnRead = undefined;
  });

  let requests = 0;
  async function same(req: RawRequest, what: string): Promise<RawResponse> {
    // One request id on both sides: the inventory echoes the id the gateway forwards.
    const tagged = { ...req, headers: { ...req.headers, 'X-Request-Id': `conditional-${++requests}` } };
    const direct = await rawRequest(inventoryUrl, tagged);
    const proxied = await viaGateway(gatewayUrl, tagged);
    assert.equal(proxied.status, direct.status, `${what}: status`);
    assert.deepEqual(endToEndHeaders(proxied), endToEndHeaders(direct), `${what}: headers`);
    assert.ok(proxied.body.equals(direct.body), `${what}: body differs`);
    return proxied;
  }

  it('keeps ETag, Cache-Control, Link and X-Total-Count byte for byte', async () => {
    const one = await same({ path: '/api/movies/7' }, 'one movie');
    assert.match(String(one.headers.etag), /^"r1\.7\./);
    assert.equal(one.headers['cache-control'], 'no-cache');
    const page = await same({ path: '/api/movies/?title=the&limit=25&offset=50&x=%C3%A9' }, 'page');
    assert.equal(page.headers['x-total-count'] !== undefined, true);
    assert.match(String(page.headers.link), /rel="next"/);
    await same({ path: '/api/movies?limit=0' }, '400 for a bad limit');
  });

  it('passes 304 Not Modified through, with its validators and without a body', async () => {
    const one = await viaGateway(gatewayUrl, { path: '/api/movies/7' });
    const list = await viaGateway(gatewayUrl, { path: '/api/movies?limit=10' });
    const cases: Array<[string, RawRequest]> = [
      ['one movie', { path: '/api/movies/7', headers: { 'If-None-Match': String(one.headers.etag) } }],
      ['HEAD one movie', { method: 'HEAD', path: '/api/movies/7', headers: { 'If-None-Match': `W/${one.headers.etag}` } }],
      ['page', { path: '/api/movies?limit=10', headers: { 'If-None-Match': String(list.headers.etag) } }],
      ['whole list', { path: '/api/movies', headers: { 'If-None-Match': '*' } }],
    ];
    for (const [what, req] of cases) {
      const res = await same(req, what);
      assert.equal(res.status, 304, what);
      assert.equal(res.body.length, 0, what);
      assert.ok(res.headers.etag, what);
      assert.equal(res.headers['cache-control'], 'no-cache', what);
    }
  });

  it('streams the whole list through unchanged, and HEAD of it', async () => {
    const res = await same({ path: '/api/movies' }, 'streamed list');
    assert.equal(res.headers['transfer-encoding'], 'chunked');
    assert.equal((JSON.parse(res.body.toString('utf8')) as unknown[]).length, 2500);
    await same({ method: 'HEAD', path: '/api/movies/' }, 'HEAD of the streamed list');
  });

  it('cuts the client connection when the inventory cuts a stream midway', async () => {
    repository.failOnRead = 4;
    const res = await fetchMaybeCut(gatewayUrl, '/api/movies');
    assert.equal(res.status, 200);
    assert.equal(res.complete, false, 'the gateway must not end the response normally');
    assert.throws(() => JSON.parse(res.body.toString('utf8')), SyntaxError);
    // The gateway is fine afterwards.
    repository.failOnRead = undefined;
    const again = await fetchMaybeCut(gatewayUrl, '/api/movies');
    assert.equal(again.complete, true);
    assert.equal((JSON.parse(again.body.toString('utf8')) as unknown[]).length, 2500);
  });
});
