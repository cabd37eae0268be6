/**
 * The Postman collection (postman/) run by newman against the whole stack: inventory, gateway
 * and billing as real processes from their sources, on the harness's private PostgreSQL and
 * RabbitMQ. Any failed Postman assertion fails this suite, and so does any response that breaks
 * openapi.yaml (each one is checked, as in the other suites).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import newman, { type NewmanRunSummary } from 'newman';
import type { Knex } from '@crud-master/common';
import { freePort, sharedPostgres, sharedRabbit, waitFor } from '../harness/fixtures';
import type { ServiceProcess } from '../harness/processes';
import { contract, findViolation, type ContractViolation } from '../support/contract';
import { migratedDatabase } from '../support/databases';
import { inventorySchema } from '../../srcs/inventory-app/src/db/schema';
import { countOrders, newStackConfig, ordersDb, startBilling, startFromSources, wholeStackEnv, type StackConfig } from './billing-stack';

const ROOT = path.resolve(__dirname, '..', '..');
const COLLECTION = path.join(ROOT, 'postman', 'crud-master.postman_collection.json');
const LOCAL_ENV = path.join(ROOT, 'postman', 'environments', 'local.postman_environment.json');

interface Exchange {
  method: string;
  url: string;
  status: number;
}

/** Runs the collection; resolves with newman's summary, every exchange and every contract violation. */
function runCollection(gatewayUrl: string): Promise<{ summary: NewmanRunSummary; exchanges: Exchange[]; violations: ContractViolation[] }> {
  const exchanges: Exchange[] = [];
  const violations: ContractViolation[] = [];
  return new Promise((resolve, reject) => {
    newman
      .run(
        {
          collection: JSON.parse(fs.readFileSync(COLLECTION, 'utf8')),
          environment: JSON.parse(fs.readFileSync(LOCAL_ENV, 'utf8')),
          // The environment as users get it, pointed at this run's gateway.
          envVar: [{ key: 'gateway_url', value: gatewayUrl }],
          reporters: [],
          timeoutRequest: 15_000,
        },
        (err, summary) => (err ? reject(err) : resolve({ summary, exchanges, violations })),
      )
      .on('request', (err, args) => {
        if (err || !args.response) return;
        const url = args.request.url.getPathWithQuery();
        const headers: Record<string, string> = {};
        for (const header of args.response.headers.all()) {
          const name = header.key.toLowerCase();
          headers[name] = headers[name] === undefined ? header.value : `${headers[name]}, ${header.value}`;
        }
        exchanges.push({ method: args.request.method, url, status: args.response.code });
        const violation = findViolation({
          method: args.request.method,
          url,
          status: args.response.code,
          headers,
          body: args.response.stream ?? Buffer.alloc(0),
        });
        if (violation) violations.push(violation);
      });
  });
}

describe('Postman collection (newman) against inventory, gateway and billing as processes', function () {
  this.timeout(180_000);
  let stack: StackConfig;
  let services: ServiceProcess[] = [];
  let gatewayUrl: string;
  let orders: Knex;

  before(async () => {
    const [pg, rabbit] = await Promise.all([sharedPostgres(), sharedRabbit()]);
    stack = await newStackConfig(rabbit, pg);
    const inventoryPort = await freePort();
    const movies = (await migratedDatabase(inventorySchema, pg)).app;
    const env = wholeStackEnv(stack, movies, inventoryPort);
    const start = (name: string, dir: string, readyUrl: string) => startFromSources(name, dir, env, readyUrl);
    services.push(await start('inventory', 'inventory-app', `http://127.0.0.1:${inventoryPort}/health`));
    services.push(await startBilling(stack));
    gatewayUrl = `http://127.0.0.1:${stack.gatewayPort}`;
    services.push(await start('gateway', 'api-gateway', `${gatewayUrl}/health`));
    // The collection starts by asserting that every dependency is up: wait for the broker too.
    await waitFor(
      async () => {
        const res = await fetch(`${gatewayUrl}/health`, { signal: AbortSignal.timeout(3000) });
        return res.status === 200;
      },
      { timeoutMs: 30_000, description: 'the gateway to report every dependency up' },
    );
    orders = ordersDb(stack);
  });

  after(async () => {
    await orders?.destroy();
    for (const service of services.reverse()) await service.stop();
    services = [];
  });

  it('keeps the environment files in step with .env', async () => {
    const result = await new Promise<{ code: number; stderr: string }>((resolve) => {
      execFile(process.execPath, [path.join(ROOT, 'postman', 'make-environments.js'), '--check'], { cwd: ROOT }, (err, _out, stderr) =>
        resolve({ code: err ? 1 : 0, stderr }),
      );
    });
    assert.equal(result.code, 0, result.stderr);
  });

  it('passes every assertion of every request, each answer as openapi.yaml documents it', async () => {
    const { summary, exchanges, violations } = await runCollection(gatewayUrl);
    const failures = summary.run.failures
      .map((f) => `${f.source?.name ?? '?'}: ${f.error.name}: ${f.error.message}`)
      .join('\n');
    assert.equal(summary.run.failures.length, 0, `newman failures:\n${failures}`);
    assert.deepEqual(violations.map((v) => v.message), []);

    const stats = summary.run.stats;
    const requests = JSON.parse(fs.readFileSync(COLLECTION, 'utf8')) as { item: Array<{ item: unknown[] }> };
    const expected = requests.item.reduce((n, folder) => n + folder.item.length, 0);
    assert.equal(stats.requests.total, expected, 'every request of the collection ran');
    assert.ok((stats.assertions.total ?? 0) >= 2 * expected, `${stats.assertions.total} assertions`);
    assert.equal(stats.assertions.failed, 0);

    // The collection reaches every operation openapi.yaml documents.
    const routes = contract().operations();
    const missing = routes.filter((op) => {
      const pattern = new RegExp(`^${op.path.replace(/\{[^}]+\}/g, '[^/]+')}/?(\\?.*)?$`);
      return !exchanges.some((e) => e.method === op.method && pattern.test(e.url));
    });
    assert.deepEqual(missing.map((op) => `${op.method} ${op.path}`), [], 'operations the collection never calls');

    // The two orders it queued reached orders_db through RabbitMQ and the billing service.
    await waitFor(async () => (await countOrders(orders)) === 2, { timeoutMs: 20_000, description: 'the 2 orders in orders_db' });
  });
});
