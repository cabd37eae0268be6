import assert from 'node:assert/strict';
import http from 'node:http';
import { addressOf, closeServer, createHttpMetrics, listen, type HttpMetrics } from '@crud-master/common';
import { createApp as createInventoryApp } from '../../inventory-app/src/app';
import { inventorySchema } from '../../inventory-app/src/db/schema';
import { createAdminApp } from '../src/admin';
import { createApp as createGatewayApp, gatewayHealthChecks } from '../src/app';
import { createUpstreamPool } from '../src/upstream/pool';
import { freshDatabase, type TestDatabase } from '../../../test/support/databases';
import { captureLogger, type CapturedLogs } from '../../../test/support/capture-logger';
import { checkedRawRequest } from '../../../test/support/contract';
import { rawRequest as rawRequestUnchecked } from '../../../test/support/http';
import { waitFor } from '../../../test/harness/processes';
import { sample } from '../../../test/support/prometheus';

// Every response is also checked against openapi.yaml.
const rawRequest = checkedRawRequest();
// The admin listener and the inventory's own routes are not the gateway's public API.
const plainRequest = rawRequestUnchecked;

describe('request ids, logs and metrics across gateway and inventory', () => {
  let testDb: TestDatabase;
  let inventory: http.Server;
  let gateway: http.Server;
  let admin: http.Server;
  let inventoryLogs: CapturedLogs;
  let gatewayLogs: CapturedLogs;
  let inventoryMetrics: HttpMetrics;
  let gatewayMetrics: HttpMetrics;
  const agent = new http.Agent({ keepAlive: true });

  before(async () => {
    testDb = await freshDatabase(inventorySchema);
    inventoryLogs = captureLogger('inventory-app');
    gatewayLogs = captureLogger('api-gateway');
    inventoryMetrics = createHttpMetrics({ service: 'inventory-app' });
    gatewayMetrics = createHttpMetrics({ service: 'api-gateway' });
    const inventoryApp = createInventoryApp({
      db: testDb.db,
      config: { bodyLimit: '16kb' },
      logger: inventoryLogs.logger,
      metrics: inventoryMetrics,
    });
    inventory = await listen(inventoryApp.callback(), { host: '127.0.0.1', port: 0 });
    const gatewayApp = createGatewayApp({
      config: { inventoryUrl: addressOf(inventory), upstreamTimeoutMs: 5000 },
      logger: gatewayLogs.logger,
      inventoryAgent: agent,
      metrics: gatewayMetrics,
    });
    gateway = await listen(gatewayApp.callback(), { host: '127.0.0.1', port: 0 });
    const pool = createUpstreamPool({ urls: [addressOf(inventory)], agent, logger: gatewayLogs.logger, intervalMs: 1000, checkTimeoutMs: 2000 });
    const healthChecks = gatewayHealthChecks(pool);
    admin = await listen(createAdminApp({ metrics: gatewayMetrics, healthChecks, logger: gatewayLogs.logger }).callback(), { host: '127.0.0.1', port: 0 });
  });
  after(async () => {
    agent.destroy();
    if (gateway) await closeServer(gateway, 200);
    if (admin) await closeServer(admin, 200);
    if (inventory) await closeServer(inventory, 200);
    await testDb?.db.destroy();
  });

  const linesWith = (logs: CapturedLogs, requestId: string) => logs.lines().filter((line) => line.requestId === requestId);

  it('keeps a sane incoming X-Request-Id, returns it, and both services log it', async () => {
    const res = await rawRequest(addressOf(gateway), { path: '/api/movies', headers: { 'X-Request-Id': 'abc' } });
    assert.equal(res.status, 200);
    assert.equal(res.headers['x-request-id'], 'abc');
    // The log line is written when the response has gone out, which can trail the client's read.
    const inventoryLine = await waitFor(() => linesWith(inventoryLogs, 'abc').find((l) => l.msg === 'request'), { timeoutMs: 2000 });
    assert.equal(inventoryLine.method, 'GET');
    assert.equal(inventoryLine.path, '/api/movies');
    assert.equal(inventoryLine.status, 200);
    assert.equal(typeof inventoryLine.durationMs, 'number');
    const gatewayLine = await waitFor(() => linesWith(gatewayLogs, 'abc').find((l) => l.msg === 'request'), { timeoutMs: 2000 });
    assert.equal(gatewayLine.route, '/api/movies');
    assert.equal(gatewayLine.status, 200);
  });

  it('replaces a missing or unsafe request id with a fresh UUID, the same on both sides', async () => {
    const variants: Array<Record<string, string>> = [{}, { 'X-Request-Id': 'has spaces and "quotes"' }, { 'X-Request-Id': 'x'.repeat(300) }];
    for (const headers of variants) {
      const res = await rawRequest(addressOf(gateway), { path: '/api/movies/12345', headers });
      assert.equal(res.status, 404);
      const id = String(res.headers['x-request-id']);
      assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      const line = await waitFor(() => linesWith(inventoryLogs, id).find((l) => l.msg === 'request'), { timeoutMs: 2000 });
      assert.equal(line.status, 404);
    }
  });

  it('counts requests by route template and status on both services', async () => {
    const labels = { method: 'GET', route: '/api/movies/:id', status: '404' };
    const before = {
      gateway: sample(await gatewayMetrics.registry.metrics(), 'http_requests_total', labels),
      inventory: sample(await inventoryMetrics.registry.metrics(), 'http_requests_total', labels),
    };
    for (let i = 0; i < 3; i++) assert.equal((await rawRequest(addressOf(gateway), { path: `/api/movies/${900 + i}` })).status, 404);
    await waitFor(async () => sample(await gatewayMetrics.registry.metrics(), 'http_requests_total', labels) === before.gateway + 3 || undefined, {
      timeoutMs: 2000,
    });
    assert.equal(sample(await inventoryMetrics.registry.metrics(), 'http_requests_total', labels), before.inventory + 3);
    const histogram = sample(await gatewayMetrics.registry.metrics(), 'http_request_duration_seconds_count', labels);
    assert.ok(histogram >= 3, `histogram count ${histogram}`);
  });

  it('serves GET /metrics in Prometheus text format on the inventory and on the gateway\'s admin listener, not on its public port', async () => {
    const publicMetrics = await rawRequest(addressOf(gateway), { path: '/metrics' });
    assert.equal(publicMetrics.status, 404);
    assert.equal(JSON.parse(publicMetrics.body.toString('utf8')).error.code, 'not_found');
    for (const server of [admin, inventory]) {
      const res = await plainRequest(addressOf(server), { path: '/metrics' });
      assert.equal(res.status, 200);
      assert.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/);
      const text = res.body.toString('utf8');
      assert.match(text, /# TYPE http_requests_total counter/);
      assert.match(text, /# TYPE http_request_duration_seconds histogram/);
    }
  });

  it('answers the detailed /health on the admin listener only: the public one says up or down', async () => {
    const detailed = JSON.parse((await plainRequest(addressOf(admin), { path: '/health' })).body.toString('utf8'));
    assert.equal(detailed.checks.inventory.url, addressOf(inventory), 'the admin listener tells where the inventory is');
    const publicBody = (await rawRequest(addressOf(gateway), { path: '/health' })).body.toString('utf8');
    assert.deepEqual(JSON.parse(publicBody).checks, { inventory: { status: 'up' } });
    assert.ok(!publicBody.includes('127.0.0.1'), publicBody);
  });

  it('does not log credentials or request bodies at info level', async () => {
    const secret = 'S3cr3t-body-value';
    const res = await rawRequest(addressOf(gateway), {
      method: 'POST',
      path: '/api/movies',
      headers: { 'Content-Type': 'application/json', 'X-Request-Id': 'nobody' },
      body: JSON.stringify({ title: secret, password: secret }),
    });
    assert.equal(res.status, 400);
    await waitFor(() => linesWith(inventoryLogs, 'nobody').find((l) => l.msg === 'request'), { timeoutMs: 2000 });
    const everything = JSON.stringify([...inventoryLogs.lines(), ...gatewayLogs.lines()]);
    assert.ok(!everything.includes(secret), 'a request body value reached the logs');
    assert.ok(!everything.includes(String(testDb.config.password)), 'the database password reached the logs');
  });
});
