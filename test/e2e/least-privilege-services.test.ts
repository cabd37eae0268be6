/*
 * Least privilege (issue 13), the services as processes: migrate.js as the owner (idempotent,
 * `migrations: N applied`), each service reading only its own env file (CM_ENV_FILE), a service
 * whose schema is not migrated stopping with what to run, the gateway's /metrics and detailed
 * /health only on its admin listener, and public /health bodies without addresses or error text
 * while a dependency is down.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { freePort, PostgresInstance, runDir, sharedPostgres, startService, uniqueName, waitFor } from '../harness/fixtures';
import type { ServiceProcess } from '../harness/processes';
import type { AppDatabase } from '../harness/postgres';
import { migratedDatabase } from '../support/databases';
import { inventorySchema } from '../../srcs/inventory-app/src/db/schema';

const ROOT = path.resolve(__dirname, '..', '..');

/** A service's own env file, as provisioning writes /etc/crud-master/<service>.env: mode 0400. */
function envFile(vars: Record<string, string>): string {
  const file = path.join(runDir(), `${uniqueName('service')}.env`);
  fs.writeFileSync(file, Object.entries(vars).map(([k, v]) => `${k}=${v}\n`).join(''), { mode: 0o400 });
  return file;
}

/** Runs an entry point from its sources with only CM_ENV_FILE (and PATH) in its environment. */
function run(script: string, env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', path.join(ROOT, script)], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...env }, timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const lastLine = (text: string): string => text.trim().split('\n').at(-1) ?? '';

function migrateEnv(prefix: 'INVENTORY' | 'BILLING', db: AppDatabase): Record<string, string> {
  return {
    [`${prefix}_DB_HOST`]: db.owner.host,
    [`${prefix}_DB_PORT`]: String(db.owner.port),
    [`${prefix}_DB_NAME`]: db.database,
    [`${prefix}_DB_OWNER`]: db.owner.user,
    [`${prefix}_DB_OWNER_PASSWORD`]: db.owner.password,
    [`${prefix}_DB_USER`]: db.app.user,
  };
}

describe('least privilege: migrate.js and CM_ENV_FILE (processes)', function () {
  this.timeout(120_000);

  for (const [app, prefix, count] of [['inventory-app', 'INVENTORY', inventorySchema.migrations.length], ['billing-app', 'BILLING', 2]] as const) {
    it(`${app}'s migrate.js migrates and grants as the owner from the file CM_ENV_FILE names, then applies nothing`, async () => {
      const db = await (await sharedPostgres()).createAppDatabase();
      const env = { CM_ENV_FILE: envFile(migrateEnv(prefix, db)) };
      const first = await run(`srcs/${app}/src/migrate.ts`, env);
      assert.equal(first.code, 0, first.stderr);
      assert.equal(lastLine(first.stdout), `migrations: ${count} applied`);
      assert.match(first.stdout, new RegExp(`${db.app.user} may .* nothing else`));
      const second = await run(`srcs/${app}/src/migrate.ts`, env);
      assert.equal(second.code, 0, second.stderr);
      assert.equal(lastLine(second.stdout), 'migrations: 0 applied');
    });
  }

  it('migrate.js exits 1 naming what is wrong: a relative CM_ENV_FILE, a missing variable, a wrong password', async () => {
    const relative = await run('srcs/billing-app/src/migrate.ts', { CM_ENV_FILE: 'billing.env' });
    assert.equal(relative.code, 1);
    assert.match(relative.stderr, /CM_ENV_FILE: must be an absolute path/);
    const db = await (await sharedPostgres()).createAppDatabase();
    const { BILLING_DB_OWNER: _owner, ...withoutOwner } = migrateEnv('BILLING', db);
    const missing = await run('srcs/billing-app/src/migrate.ts', { CM_ENV_FILE: envFile(withoutOwner) });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /BILLING_DB_OWNER: missing/);
    const wrong = await run('srcs/billing-app/src/migrate.ts', { CM_ENV_FILE: envFile({ ...migrateEnv('BILLING', db), BILLING_DB_OWNER_PASSWORD: 'wrong' }) });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /password authentication failed/);
    assert.doesNotMatch(wrong.stdout, /migrations:/);
  });

  for (const [app, prefix] of [['inventory-app', 'INVENTORY'], ['billing-app', 'BILLING']] as const) {
    it(`${app} started on a database that was not migrated exits 1 with a line saying what to run, no hang`, async () => {
      const db = await (await sharedPostgres()).createAppDatabase();
      const proc = await startService({
        name: `${app}-unmigrated`,
        script: path.join(ROOT, 'srcs', app, 'src', 'main.ts'),
        env: {
          CM_ENV_FILE: envFile({
            [`${prefix}_LISTEN_HOST`]: '127.0.0.1',
            [`${prefix}_PORT`]: String(await freePort()),
            [`${prefix}_DB_HOST`]: db.app.host,
            [`${prefix}_DB_PORT`]: String(db.app.port),
            [`${prefix}_DB_NAME`]: db.database,
            [`${prefix}_DB_USER`]: db.app.user,
            [`${prefix}_DB_PASSWORD`]: db.app.password,
            RABBITMQ_HOST: '127.0.0.1',
            RABBITMQ_PORT: String(await freePort()),
            RABBITMQ_BILLING_USER: 'nobody',
            RABBITMQ_BILLING_PASSWORD: 'nothing',
          }),
        },
        runDir: runDir(),
        cwd: ROOT,
      });
      const exit = await proc.waitExit(30_000);
      assert.equal(exit.code, 1);
      assert.match(proc.logs(), /is not migrated or not granted to this role.*run node srcs\/[a-z-]+\/dist\/migrate\.js/);
    });
  }
});

describe('least privilege: /metrics and /health of the services (processes)', function () {
  this.timeout(120_000);
  const started: ServiceProcess[] = [];
  after(async () => {
    for (const proc of started) if (proc.running) await proc.stop();
  });

  it('the gateway (its variables only in CM_ENV_FILE): /metrics 404 on the public port, on the admin port 200; public /health and 503s without address or error text', async () => {
    const [port, adminPort] = [await freePort(), await freePort()];
    const gateway = await startService({
      name: 'gateway-least-privilege',
      script: path.join(ROOT, 'srcs/api-gateway/src/main.ts'),
      env: {
        CM_ENV_FILE: envFile({
          GATEWAY_LISTEN_HOST: '127.0.0.1',
          GATEWAY_PORT: String(port),
          GATEWAY_ADMIN_HOST: '127.0.0.1',
          GATEWAY_ADMIN_PORT: String(adminPort),
          // Nothing listens at either: both dependencies are down.
          INVENTORY_HOST: '127.0.0.1',
          INVENTORY_PORT: String(await freePort()),
          RABBITMQ_HOST: '127.0.0.1',
          RABBITMQ_PORT: String(await freePort()),
          RABBITMQ_GATEWAY_USER: 'gateway_mq',
          RABBITMQ_GATEWAY_PASSWORD: 'secret_Mq_pw',
        }),
      },
      runDir: runDir(),
      cwd: ROOT,
      readyUrl: `http://127.0.0.1:${port}/openapi.yaml`,
    });
    started.push(gateway);
    const publicUrl = `http://127.0.0.1:${port}`;
    const metrics = await fetch(`${publicUrl}/metrics`);
    assert.equal(metrics.status, 404);
    assert.equal(((await metrics.json()) as { error: { code: string } }).error.code, 'not_found');
    const adminMetrics = await fetch(`http://127.0.0.1:${adminPort}/metrics`);
    assert.equal(adminMetrics.status, 200);
    assert.match(await adminMetrics.text(), /^process_cpu_seconds_total\{service="api-gateway"\} /m);

    const health = await fetch(`${publicUrl}/health`);
    const body = await health.text();
    assert.equal(health.status, 503);
    assert.deepEqual(JSON.parse(body), { status: 'unavailable', service: 'api-gateway', checks: { inventory: { status: 'down' }, broker: { status: 'down' } } });
    const order = await fetch(`${publicUrl}/api/billing`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"user_id":1,"number_of_items":1,"total_amount":1}' });
    const refusal = await order.text();
    assert.equal(order.status, 503);
    for (const text of [body, refusal]) assert.doesNotMatch(text, /127\.0\.0\.1|ECONNREFUSED|connect /, text);

    const detailed = (await (await fetch(`http://127.0.0.1:${adminPort}/health`)).json()) as { checks: Record<string, { error?: string }> };
    assert.match(String(detailed.checks.inventory?.error), /ECONNREFUSED/, 'the admin listener tells why');
    assert.match(gateway.logs(), /"msg":"health check down"/, 'and so does the log');
  });

  it('the inventory: /health 503 with the database down says so, with no address or error text', async function () {
    const pg = await PostgresInstance.create({ runDir: runDir() });
    try {
      await pg.start();
      const db = await migratedDatabase(inventorySchema, pg);
      const port = await freePort();
      const inventory = await startService({
        name: 'inventory-least-privilege',
        script: path.join(ROOT, 'srcs/inventory-app/src/main.ts'),
        env: {
          CM_ENV_FILE: envFile({
            INVENTORY_LISTEN_HOST: '127.0.0.1',
            INVENTORY_PORT: String(port),
            INVENTORY_DB_HOST: db.app.host,
            INVENTORY_DB_PORT: String(db.app.port),
            INVENTORY_DB_NAME: db.database,
            INVENTORY_DB_USER: db.app.user,
            INVENTORY_DB_PASSWORD: db.app.password,
          }),
        },
        runDir: runDir(),
        cwd: ROOT,
        readyUrl: `http://127.0.0.1:${port}/health`,
      });
      started.push(inventory);
      await pg.stop();
      const body = await waitFor(
        async () => {
          const res = await fetch(`http://127.0.0.1:${port}/health`);
          return res.status === 503 ? res.text() : undefined;
        },
        { timeoutMs: 20_000, description: 'the inventory /health to say the database is down' },
      );
      assert.deepEqual(JSON.parse(body), { status: 'unavailable', service: 'inventory-app', checks: { database: { status: 'down' } } });
      assert.doesNotMatch(body, new RegExp(`127\\.0\\.0\\.1|${db.app.port}|ECONNREFUSED`));
      await inventory.stop();
    } finally {
      await pg.destroy();
    }
  });
});
