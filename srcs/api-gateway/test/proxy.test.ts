import assert from 'node:assert/strict';
import http from 'node:http';
import { addressOf, closeServer, listen } from '@crud-master/common';
import { createApp as createInventoryApp } from '../../inventory-app/src/app';
import { inventorySchema } from '../../inventory-app/src/db/schema';
import { createApp as createGatewayApp } from '../src/app';
import { freshDatabase, type TestDatabase } from '../../../test/support/databases';
import { silentLogger } from '../../../test/support/silent-logger';
import { endToEndHeaders, json, type RawRequest, type RawResponse } from '../../../test/support/http';
import { checkedRawRequest } from '../../../test/support/contract';
import { freePort } from '../../../test/harness/processes';

/** A gateway listening on loopback in front of `inventoryUrl`. */
async function startGateway(inventoryUrl: string, upstreamTimeoutMs = 5000) {
  const inventoryAgent = new http.Agent({ keepAlive: true });
  const app = createGatewayApp({ config: { inventoryUrl, upstreamTimeoutMs }, logger: silentLogger(), inventoryAgent });
  const server = await listen(app.callback(), { host: '127.0.0.1', port: 0 });
  return {
    url: addressOf(server),
    async close() {
      inventoryAgent.destroy();
      await closeServer(server, 200);
    },
  };
}

// Every response is also checked against openapi.yaml (the inventory's against the gateway's paths).
const rawRequest = checkedRawRequest('gateway');
const rawInventoryRequest = checkedRawRequest('inventory');

function assertSameResponse(direct: RawResponse, proxied: RawResponse, what: string): void {
  assert.equal(proxied.status, direct.status, `${what}: status`);
  assert.deepEqual(endToEndHeaders(proxied), endToEndHeaders(direct), `${what}: headers`);
  assert.ok(proxied.body.equals(direct.body), `${what}: body differs:\n${proxied.body}\nvs\n${direct.body}`);
}

describe('api-gateway proxy to a real inventory', () => {
  let testDb: TestDatabase;
  let inventory: http.Server;
  let inventoryUrl: string;
  let gateway: Awaited<ReturnType<typeof startGateway>>;
  let inventoryConnections = 0;

  before(async () => {
    testDb = await freshDatabase(inventorySchema);
    const app = createInventoryApp({ db: testDb.db, config: { bodyLimit: '16kb' }, logger: silentLogger() });
    inventory = await listen(app.callback(), { host: '127.0.0.1', port: 0 });
    inventory.on('connection', () => inventoryConnections++);
    inventoryUrl = addressOf(inventory);
    gateway = await startGateway(inventoryUrl);
  });
  after(async () => {
    await gateway?.close();
    if (inventory) await closeServer(inventory, 200);
    await testDb?.db.destroy();
  });
  beforeEach(async () => {
    await testDb.truncate('movies');
  });

  const viaGateway = (req: RawRequest) => rawRequest(gateway.url, req);
  const direct = (req: RawRequest) => rawInventoryRequest(inventoryUrl, req);
  const jsonPost = (path: string, body: unknown, method = 'POST'): RawRequest => ({
    method,
    path,
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });

  it('creates a movie through the gateway: 200, Location, the movie as JSON', async () => {
    const res = await viaGateway(jsonPost('/api/movies/', { title: 'A new movie', description: 'Very short description' }));
    assert.equal(res.status, 200);
    const movie = json(res) as { id: number; title: string };
    assert.equal(movie.title, 'A new movie');
    assert.equal(res.headers.location, `/api/movies/${movie.id}`);
    const stored = await direct({ path: `/api/movies/${movie.id}` });
    assert.deepEqual(json(stored), movie);
  });

  it('returns exactly what the inventory returns for every read and error, byte for byte', async () => {
    for (const title of ['Heat', 'The Godfather', '100% Wolf']) {
      assert.equal((await direct(jsonPost('/api/movies', { title, description: `About ${title}` }))).status, 200);
    }
    const [first] = json(await direct({ path: '/api/movies' })) as Array<{ id: number }>;
    const cases: Array<[string, RawRequest]> = [
      ['list', { path: '/api/movies' }],
      ['list with slash', { path: '/api/movies/' }],
      ['filter', { path: '/api/movies?title=GOD' }],
      ['literal %', { path: '/api/movies?title=0%25' }],
      ['HEAD list', { method: 'HEAD', path: '/api/movies' }],
      ['one', { path: `/api/movies/${first!.id}` }],
      ['HEAD one', { method: 'HEAD', path: `/api/movies/${first!.id}/` }],
      ['404', { path: '/api/movies/987654' }],
      ['400 id', { path: '/api/movies/abc' }],
      ['405', { method: 'PATCH', path: '/api/movies' }],
      ['415', { method: 'POST', path: '/api/movies', headers: { 'Content-Type': 'text/plain' }, body: 'title=x' }],
      ['400 malformed JSON', { method: 'POST', path: '/api/movies', headers: { 'Content-Type': 'application/json' }, body: '{"title":' }],
      ['400 unknown field', jsonPost('/api/movies', { title: 'x', stars: 5 })],
      ['413', jsonPost('/api/movies', { title: 'x', description: 'y'.repeat(1_000_000) })],
      ['PUT 404', jsonPost('/api/movies/987654', { title: 'x' }, 'PUT')],
      ['DELETE 404', { method: 'DELETE', path: '/api/movies/987654' }],
      ['PUT', jsonPost(`/api/movies/${first!.id}`, { description: 'same both times' }, 'PUT')],
    ];
    for (const [index, [what, req]] of cases.entries()) {
      // The same request id on both sides: the inventory echoes it, as the gateway forwards it.
      const tagged = { ...req, headers: { ...req.headers, 'X-Request-Id': `compare-${index}` } };
      const d = await direct(tagged);
      const p = await viaGateway(tagged);
      assertSameResponse(d, p, what);
      assert.equal(p.headers['x-request-id'], `compare-${index}`, `${what}: request id`);
    }
  });

  it('forwards updates and deletes to the inventory', async () => {
    const movie = json(await viaGateway(jsonPost('/api/movies', { title: 'Ronin' }))) as { id: number };
    const put = await viaGateway(jsonPost(`/api/movies/${movie.id}`, { description: 'Frankenheimer' }, 'PUT'));
    assert.equal(put.status, 200);
    assert.deepEqual(json(await direct({ path: `/api/movies/${movie.id}` })), { id: movie.id, title: 'Ronin', description: 'Frankenheimer' });
    assert.equal((await viaGateway({ method: 'DELETE', path: `/api/movies/${movie.id}/` })).status, 200);
    assert.equal((await direct({ path: `/api/movies/${movie.id}` })).status, 404);
    await viaGateway(jsonPost('/api/movies', { title: 'A' }));
    await viaGateway(jsonPost('/api/movies', { title: 'B' }));
    const all = await viaGateway({ method: 'DELETE', path: '/api/movies' });
    assert.deepEqual(json(all), { deleted: 2 });
    assert.deepEqual(json(await direct({ path: '/api/movies' })), []);
  });

  it('keeps its connection to the inventory alive across requests', async () => {
    const before = inventoryConnections;
    for (let i = 0; i < 20; i++) assert.equal((await viaGateway({ path: '/api/movies' })).status, 200);
    const opened = inventoryConnections - before;
    assert.ok(opened <= 1, `20 sequential requests opened ${opened} connections to the inventory`);
  });

  it('does not proxy look-alike paths such as /api/moviesX', async () => {
    const res = await viaGateway({ path: '/api/moviesX' });
    assert.equal(res.status, 404);
    assert.deepEqual(json(res), { error: { code: 'not_found', message: 'No route for GET /api/moviesX' } });
  });

  it('reports itself and the inventory on GET /health', async () => {
    const res = await viaGateway({ path: '/health' });
    assert.equal(res.status, 200);
    const body = json(res) as { status: string; checks: { inventory: { status: string } } };
    assert.equal(body.status, 'ok');
    assert.equal(body.checks.inventory.status, 'up');
  });
});

describe('api-gateway when the inventory fails', () => {
  it('answers 502 JSON at once when the inventory is unreachable, and /health says 503', async () => {
    const port = await freePort(); // nothing listens there
    const gateway = await startGateway(`http://127.0.0.1:${port}`);
    try {
      const res = await rawRequest(gateway.url, { path: '/api/movies' }, 3000);
      assert.equal(res.status, 502);
      assert.match(String(res.headers['content-type']), /^application\/json/);
      assert.equal((json(res) as { error: { code: string } }).error.code, 'bad_gateway');
      const health = await rawRequest(gateway.url, { path: '/health' }, 5000);
      assert.equal(health.status, 503);
      assert.equal((json(health) as { checks: { inventory: { status: string } } }).checks.inventory.status, 'down');
    } finally {
      await gateway.close();
    }
  });

  it('answers 504 JSON when the inventory does not answer within the timeout', async () => {
    const pending: http.ServerResponse[] = [];
    const silent = http.createServer((_req, res) => pending.push(res)); // accepts, never answers
    const upstream = await new Promise<http.Server>((resolve) => {
      silent.listen(0, '127.0.0.1', () => resolve(silent));
    });
    const gateway = await startGateway(addressOf(upstream), 300);
    try {
      const res = await rawRequest(gateway.url, { path: '/api/movies/1' }, 5000);
      assert.equal(res.status, 504);
      const body = json(res) as { error: { code: string; message: string } };
      assert.equal(body.error.code, 'gateway_timeout');
      assert.match(body.error.message, /300 ms/);
    } finally {
      for (const res of pending) res.destroy();
      await gateway.close();
      upstream.closeAllConnections();
      await new Promise((resolve) => upstream.close(resolve));
    }
  });
});
