import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { addressOf, closeServer, createHttpMetrics, listen } from '@crud-master/common';
import { createApp } from '../src/app';
import { captureLogger, type CapturedLogs } from '../../../test/support/capture-logger';
import { rawRequest } from '../../../test/support/http';
import { waitFor } from '../../../test/harness/processes';
import { sample } from '../../../test/support/prometheus';

/** A stand-in inventory that answers every request with the target it received, echoing the request id. */
async function echoInventory() {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const body = JSON.stringify({ url: req.url, method: req.method, forwardedFor: req.headers['x-forwarded-for'] ?? null });
      res.writeHead(200, { 'X-Request-Id': String(req.headers['x-request-id']), 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

/** A GET of `target` exactly as written (Node's client and URL would normalise it), on its own connection. */
function getTarget(server: http.Server, target: string, requestId: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const port = (server.address() as net.AddressInfo).port;
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write(`GET ${target} HTTP/1.1\r\nHost: x\r\nX-Request-Id: ${requestId}\r\nConnection: close\r\n\r\n`);
    });
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    socket.on('close', () => resolve({ status: Number(text.slice(9, 12)), body: text.slice(text.indexOf('\r\n\r\n') + 4) }));
    socket.on('error', reject);
    socket.setTimeout(5000, () => socket.destroy(new Error(`no answer to ${target}`)));
  });
}

describe('api-gateway front door: movie requests before the Koa stack, the rest through it', () => {
  let inventory: http.Server;
  let gateway: http.Server;
  let logs: CapturedLogs;
  const metrics = createHttpMetrics({ service: 'api-gateway' });
  const agent = new http.Agent({ keepAlive: true });
  let app: ReturnType<typeof createApp>;

  before(async () => {
    inventory = await echoInventory();
    logs = captureLogger('api-gateway');
    app = createApp({ config: { inventoryUrl: addressOf(inventory), upstreamTimeoutMs: 2000 }, logger: logs.logger, inventoryAgent: agent, metrics });
    gateway = await listen(app.callback(), { host: '127.0.0.1', port: 0 });
  });
  after(async () => {
    await closeServer(gateway, 200);
    await app.close();
    agent.destroy();
    inventory.closeAllConnections();
    await new Promise((resolve) => inventory.close(resolve));
  });

  const accessLines = (id: string) => logs.lines().filter((l) => l.msg === 'request' && l.requestId === id);

  it('forwards a plain movie request as it came, with one access line, its metrics and X-Forwarded-For', async () => {
    const labels = { method: 'GET', route: '/api/movies/:id', status: '200' };
    const before = sample(await metrics.registry.metrics(), 'http_requests_total', labels);
    const res = await rawRequest(addressOf(gateway), { path: '/api/movies/7?x=%C3%A9', headers: { 'X-Request-Id': 'front-1' } });
    assert.equal(res.status, 200);
    assert.equal(res.headers['x-request-id'], 'front-1');
    assert.deepEqual(JSON.parse(res.body.toString('utf8')), { url: '/api/movies/7?x=%C3%A9', method: 'GET', forwardedFor: '127.0.0.1' });
    const [line, ...more] = await waitFor(() => (accessLines('front-1').length > 0 ? accessLines('front-1') : undefined), { timeoutMs: 2000 });
    assert.equal(more.length, 0, 'one access line');
    assert.deepEqual(
      { method: line!.method, path: line!.path, route: line!.route, status: line!.status, durationMs: typeof line!.durationMs },
      { method: 'GET', path: '/api/movies/7', route: '/api/movies/:id', status: 200, durationMs: 'number' },
    );
    assert.equal(sample(await metrics.registry.metrics(), 'http_requests_total', labels), before + 1);
  });

  it('forwards a movie path only Koa reads its own way through the Koa stack, still with one access line', async () => {
    // '#' is not a path character: the front door leaves it to Koa, which reads the path before it.
    const res = await getTarget(gateway, '/api/movies/7#part', 'front-2');
    assert.equal(res.status, 200, res.body);
    assert.equal(JSON.parse(res.body).url, '/api/movies/7#part');
    await waitFor(() => (accessLines('front-2').length > 0 ? true : undefined), { timeoutMs: 2000 });
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(accessLines('front-2').length, 1, 'one access line');
    assert.equal(accessLines('front-2')[0]!.route, '/api/movies/:id');
  });

  it('leaves the bounds to the Koa stack: 414 for a long target, 404 for a non-canonical path, never forwarded', async () => {
    const long = await rawRequest(addressOf(gateway), { path: `/api/movies?title=${'a'.repeat(9000)}` });
    assert.equal(long.status, 414);
    assert.equal(JSON.parse(long.body.toString('utf8')).error.code, 'uri_too_long');
    for (const path of ['/api/movies//7', '/api/movies/%2e%2e/x', '/api/movies/7/..', '/api/movies/./7']) {
      const res = await getTarget(gateway, path, 'front-bounds');
      assert.equal(res.status, 404, path);
      assert.equal(JSON.parse(res.body).error.code, 'not_found', path);
    }
  });

  it('answers a body the front door sheds or refuses with the JSON error shape and its request id', async () => {
    const res = await rawRequest(addressOf(gateway), {
      method: 'POST',
      path: '/api/movies',
      headers: { 'Content-Type': 'application/json', 'X-Request-Id': 'front-3' },
      body: JSON.stringify({ title: 'x', description: 'y'.repeat(20_000) }),
    });
    assert.equal(res.status, 413);
    assert.equal(res.headers['x-request-id'], 'front-3');
    assert.equal(JSON.parse(res.body.toString('utf8')).error.code, 'payload_too_large');
    const line = await waitFor(() => accessLines('front-3')[0], { timeoutMs: 2000 });
    assert.equal(line.status, 413);
  });
});
