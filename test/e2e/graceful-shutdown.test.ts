import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { freePort, runDir, sharedPostgres, startService } from '../harness/fixtures';
import type { ServiceProcess } from '../harness/processes';
import { jsonLines } from '../support/prometheus';
import { rawRequest } from '../support/http';
import { migratedDatabase } from '../support/databases';
import { inventorySchema } from '../../srcs/inventory-app/src/db/schema';
import { startInventoryProcess } from '../support/inventory-process';

const ROOT = path.resolve(__dirname, '..', '..');

/** Nothing from the repository's .env: every variable a service reads points at this test. */
function baseEnv(): Record<string, string> {
  return { CM_ENV_FILE: '/dev/null', NODE_ENV: 'test', LOG_LEVEL: 'info' };
}

describe('graceful shutdown on SIGTERM (what pm2 stop sends)', () => {
  const started: ServiceProcess[] = [];
  after(async () => {
    for (const proc of started) if (proc.running) await proc.kill();
  });

  it('the gateway finishes an in-flight request, then exits 0 and stops listening', async () => {
    // An upstream that answers after 1.5 s holds a request open across the SIGTERM.
    const upstream = http.createServer((_req, res) => {
      setTimeout(() => res.writeHead(200, { 'Content-Type': 'application/json' }).end('[]'), 1500);
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const upstreamPort = (upstream.address() as { port: number }).port;
    const port = await freePort();
    try {
      const gateway = await startService({
        name: 'gateway-shutdown',
        script: path.join(ROOT, 'srcs/api-gateway/src/main.ts'),
        env: {
          ...baseEnv(),
          GATEWAY_LISTEN_HOST: '127.0.0.1',
          GATEWAY_PORT: String(port),
          GATEWAY_ADMIN_PORT: String(await freePort()),
          INVENTORY_HOST: '127.0.0.1',
          INVENTORY_PORT: String(upstreamPort),
          RABBITMQ_HOST: '127.0.0.1',
          RABBITMQ_PORT: String(await freePort()), // no broker: orders would get 503, movies do not care
          RABBITMQ_GATEWAY_USER: 'nobody',
          RABBITMQ_GATEWAY_PASSWORD: 'nothing',
        },
        runDir: runDir(),
        cwd: ROOT,
        readyUrl: `http://127.0.0.1:${port}/openapi.yaml`,
        readyTimeoutMs: 30_000,
      });
      started.push(gateway);
      const inFlight = rawRequest(`http://127.0.0.1:${port}`, { path: '/api/movies' }, 10_000);
      await new Promise((resolve) => setTimeout(resolve, 300));
      const exited = gateway.stop('SIGTERM', 15_000);
      const res = await inFlight;
      assert.equal(res.status, 200, 'the request in flight was answered');
      assert.equal(res.body.toString(), '[]');
      assert.deepEqual(await exited, { code: 0, signal: null });
      await assert.rejects(rawRequest(`http://127.0.0.1:${port}`, { path: '/health' }, 2000), /ECONNREFUSED/);
      const steps = jsonLines(gateway.logs()).filter((l) => l.msg === 'closed').map((l) => l.step);
      assert.deepEqual(steps, ['http server', 'admin server', 'inventory connections', 'rabbitmq publisher']);
    } finally {
      upstream.closeAllConnections();
      await new Promise((resolve) => upstream.close(resolve));
    }
  });

  it('the inventory closes its server and then its database pool, and exits 0', async () => {
    const pg = await sharedPostgres();
    const db = (await migratedDatabase(inventorySchema, pg)).app;
    const port = await freePort();
    const inventory = await startInventoryProcess({ name: 'inventory-shutdown', db, port });
    started.push(inventory);
    assert.equal((await rawRequest(`http://127.0.0.1:${port}`, { path: '/api/movies' })).status, 200);
    assert.deepEqual(await inventory.stop('SIGTERM', 15_000), { code: 0, signal: null });
    const steps = jsonLines(inventory.logs()).filter((l) => l.msg === 'closed').map((l) => l.step);
    assert.deepEqual(steps, ['http server', 'database pool']);
  });

  it('a service with a missing variable stops at start, naming it', async () => {
    const inventory = await startService({
      name: 'inventory-misconfigured',
      script: path.join(ROOT, 'srcs/inventory-app/src/main.ts'),
      env: { ...baseEnv(), INVENTORY_DB_HOST: '127.0.0.1', INVENTORY_DB_NAME: 'x', INVENTORY_DB_USER: 'x' },
      runDir: runDir(),
      cwd: ROOT,
    });
    started.push(inventory);
    const exit = await inventory.waitExit(30_000);
    assert.equal(exit.code, 1);
    assert.match(inventory.logs(), /INVENTORY_DB_PASSWORD: missing/);
  });
});
