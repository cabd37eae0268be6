import assert from 'node:assert/strict';
import { freePort, sharedPostgres } from '../harness/fixtures';
import { startInventoryProcess } from '../support/inventory-process';
import { migratedDatabase } from '../support/databases';
import { inventorySchema } from '../../srcs/inventory-app/src/db/schema';
import type { ServiceProcess } from '../harness/processes';
import { jsonLines } from '../support/prometheus';

/*
 * Access lines are written asynchronously (packages/common/src/logger.ts): a burst of requests
 * leaves lines queued in the process when SIGTERM comes. A clean stop must still write every one.
 */
describe('access log on a clean stop (SIGTERM, what pm2 stop sends)', () => {
  let inventory: ServiceProcess | undefined;
  after(async () => {
    if (inventory?.running) await inventory.kill();
  });

  it('writes one access line for every request answered before the stop, none lost', async function () {
    this.timeout(90_000);
    const pg = await sharedPostgres();
    const db = (await migratedDatabase(inventorySchema, pg)).app;
    const port = await freePort();
    inventory = await startInventoryProcess({ name: 'inventory-access-log', db, port });

    // 20 clients, 1,000 requests in all, each for its own path so that every line is told apart.
    const total = 1000;
    let next = 0;
    const statuses: number[] = [];
    await Promise.all(
      Array.from({ length: 20 }, async () => {
        while (next < total) {
          const id = ++next;
          const res = await fetch(`http://127.0.0.1:${port}/api/movies/${id}`, { signal: AbortSignal.timeout(10_000) });
          await res.arrayBuffer();
          statuses.push(res.status);
        }
      }),
    );
    assert.equal(statuses.length, total);
    assert.ok(statuses.every((s) => s === 404), 'every movie is missing: each request ran its query');
    assert.deepEqual(await inventory.stop('SIGTERM', 15_000), { code: 0, signal: null });

    const lines = jsonLines(inventory.logs());
    const paths = lines.filter((l) => l.msg === 'request' && String(l.path).startsWith('/api/movies/')).map((l) => l.path);
    assert.equal(paths.length, total, 'one access line per request');
    assert.equal(new Set(paths).size, total, 'no line twice');
    const steps = lines.filter((l) => l.msg === 'closed').map((l) => l.step);
    assert.deepEqual(steps, ['http server', 'database pool'], 'the shutdown lines come last, complete');
  });
});
