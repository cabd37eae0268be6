import assert from 'node:assert/strict';
import path from 'node:path';
import { freePort, runDir, sharedPostgres, startService, waitFor, type PostgresInstance } from '../harness/fixtures';
import type { ServiceProcess } from '../harness/processes';
import { rawRequest, json, type RawResponse } from '../support/http';
import { sample, scrape } from '../support/prometheus';
import { migratedDatabase } from '../support/databases';
import { inventorySchema } from '../../srcs/inventory-app/src/db/schema';
import type { AppDatabase } from '../harness/postgres';
import { startInventoryProcess } from '../support/inventory-process';

const ROOT = path.resolve(__dirname, '..', '..');

/** Nothing from the repository's .env: every variable a service reads points at this test. */
function baseEnv(): Record<string, string> {
  return { CM_ENV_FILE: '/dev/null', NODE_ENV: 'test', LOG_LEVEL: 'info' };
}

/** GET /api/movies answered by one inventory instance itself (its own counter, not the gateway's). */
async function moviesServed(port: number): Promise<number> {
  return sample(await scrape(`http://127.0.0.1:${port}`), 'http_requests_total', { method: 'GET', route: '/api/movies', status: '200' });
}

describe('several inventories behind one gateway (INVENTORY_HOST=a,b)', function () {
  this.timeout(120_000);
  const started: ServiceProcess[] = [];
  const inventories: Array<ServiceProcess | undefined> = [undefined, undefined];
  const ports: number[] = [];
  let pg: PostgresInstance;
  let database: AppDatabase;
  let gatewayUrl: string;
  let adminUrl: string;

  async function startInventory(i: number): Promise<void> {
    const inventory = await startInventoryProcess({ name: `inventory-scale-${i}`, db: database.app, port: ports[i] });
    started.push(inventory);
    inventories[i] = inventory;
  }

  /** The gateway's own view of an instance: gateway_inventory_up{instance}. */
  async function gatewaySaysUp(i: number): Promise<number> {
    return sample(await scrape(adminUrl), 'gateway_inventory_up', { instance: `http://127.0.0.1:${ports[i]}` });
  }

  const get = (): Promise<RawResponse> => rawRequest(gatewayUrl, { path: '/api/movies' }, 10_000);

  before(async () => {
    pg = await sharedPostgres();
    database = await migratedDatabase(inventorySchema, pg);
    ports.push(await freePort(), await freePort());
    await startInventory(0);
    await startInventory(1);
    const port = await freePort();
    const adminPort = await freePort();
    gatewayUrl = `http://127.0.0.1:${port}`;
    adminUrl = `http://127.0.0.1:${adminPort}`;
    started.push(
      await startService({
        name: 'gateway-scale',
        script: path.join(ROOT, 'srcs/api-gateway/src/main.ts'),
        env: {
          ...baseEnv(),
          GATEWAY_LISTEN_HOST: '127.0.0.1',
          GATEWAY_PORT: String(port),
          GATEWAY_ADMIN_HOST: '127.0.0.1',
          GATEWAY_ADMIN_PORT: String(adminPort),
          // One entry with its own port, one taking INVENTORY_PORT: both forms of the list.
          INVENTORY_HOST: `127.0.0.1:${ports[0]}, 127.0.0.1`,
          INVENTORY_PORT: String(ports[1]),
          GATEWAY_UPSTREAM_HEALTH_INTERVAL_MS: '200',
          RABBITMQ_HOST: '127.0.0.1',
          RABBITMQ_PORT: String(await freePort()), // no broker: movies do not care
          RABBITMQ_GATEWAY_USER: 'nobody',
          RABBITMQ_GATEWAY_PASSWORD: 'nothing',
        },
        runDir: runDir(),
        cwd: ROOT,
        readyUrl: `${gatewayUrl}/openapi.yaml`,
        readyTimeoutMs: 30_000,
      }),
    );
  });

  after(async () => {
    for (const proc of started) if (proc.running) await proc.kill();
    if (database) await pg.dropDatabase(database.database);
  });

  it('sends GETs to both instances in turn (each one counts its own)', async () => {
    const before = [await moviesServed(ports[0]), await moviesServed(ports[1])];
    for (let n = 0; n < 20; n++) assert.equal((await get()).status, 200);
    const served = [(await moviesServed(ports[0])) - before[0], (await moviesServed(ports[1])) - before[1]];
    assert.equal(served[0] + served[1], 20, `served ${JSON.stringify(served)}`);
    assert.ok(served[0] >= 5 && served[1] >= 5, `both instances take a share: ${JSON.stringify(served)}`);
    assert.equal(await gatewaySaysUp(0), 1);
    assert.equal(await gatewaySaysUp(1), 1);
    const health = json(await rawRequest(gatewayUrl, { path: '/health' }, 5000)) as { checks: { inventory: { status: string } } };
    assert.equal(health.checks.inventory.status, 'up', 'the broker is absent here, the inventory is not');
  });

  it('keeps answering 200 to a steady stream of GETs while one instance is killed', async () => {
    const total = 300;
    const workers = 8; // enough in flight at the kill that, without the retry, several would fail
    let sent = 0;
    let killed: Promise<unknown> | undefined;
    const failures: string[] = [];
    const worker = async (): Promise<void> => {
      while (sent < total) {
        sent++;
        // A third of the way in, instance 1 dies (SIGKILL of the process this test started).
        if (sent === 100) killed = inventories[1]?.kill();
        const res = await get().catch((err: Error) => ({ status: 0, body: Buffer.from(err.message) }) as RawResponse);
        if (res.status !== 200) failures.push(`${res.status} ${res.body.toString().slice(0, 120)}`);
      }
    };
    await Promise.all(Array.from({ length: workers }, worker));
    await killed;
    // Stated bound: GETs hit by the kill are retried on the other instance, so none should fail;
    // at most 2 of 300 are tolerated (a request caught between both attempts' failures).
    assert.ok(failures.length <= 2, `${failures.length} of ${total} GETs failed: ${failures.slice(0, 5).join(' | ')}`);
    await waitFor(async () => (await gatewaySaysUp(1)) === 0, { timeoutMs: 5000, description: 'instance 1 marked down' });
  });

  it('never doubles a POST while an instance is dead: one row per success, none for a failure', async () => {
    const titles = Array.from({ length: 20 }, (_, n) => `scale-out post ${n} ${process.pid}`);
    const statuses: number[] = [];
    for (const title of titles) {
      const res = await rawRequest(gatewayUrl, {
        method: 'POST',
        path: '/api/movies',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ title, description: 'posted while one inventory is down' }),
      });
      statuses.push(res.status);
    }
    const rows = await pg.query<{ title: string; n: string }>(
      'SELECT title, count(*) AS n FROM movies WHERE title = ANY($1) GROUP BY title',
      [titles],
      database.database,
    );
    const counts = new Map(rows.map((r) => [r.title, Number(r.n)]));
    titles.forEach((title, n) => assert.equal(counts.get(title) ?? 0, statuses[n] === 200 ? 1 : 0, `${title}: ${statuses[n]}`));
    assert.deepEqual(statuses, titles.map(() => 200), 'the live instance takes every POST');
  });

  it('sends requests to the dead instance again once it is back', async () => {
    await startInventory(1);
    await waitFor(async () => (await gatewaySaysUp(1)) === 1, { timeoutMs: 10_000, description: 'instance 1 up again' });
    for (let n = 0; n < 20; n++) assert.equal((await get()).status, 200);
    // A fresh process: everything it counted came after the restart.
    assert.ok((await moviesServed(ports[1])) >= 5, 'the restarted instance takes its share');
  });

  it('answers 502 JSON, without hanging, when every instance is down', async () => {
    await Promise.all(inventories.map((p) => p?.kill()));
    for (const req of [{ path: '/api/movies' }, { method: 'POST', path: '/api/movies', headers: { 'Content-Type': 'application/json' }, body: '{"title":"x"}' }]) {
      const res = await rawRequest(gatewayUrl, req, 5000);
      assert.equal(res.status, 502);
      assert.equal((json(res) as { error: { code: string } }).error.code, 'bad_gateway');
    }
    await waitFor(async () => (await gatewaySaysUp(0)) === 0 && (await gatewaySaysUp(1)) === 0, { timeoutMs: 5000, description: 'both down' });
    const health = json(await rawRequest(gatewayUrl, { path: '/health' }, 5000)) as { checks: { inventory: { status: string } } };
    assert.equal(health.checks.inventory.status, 'down');
  });
});
