/*
 * migrate.js waits for a PostgreSQL that is slow to answer a new connection (provisioning right
 * after PostgreSQL started, on a slow or emulated VM): it must not give up after the services'
 * 3 s connection timeout. `npm run test:vagrant` failed there ("timeout expired") under software
 * emulation. A TCP relay of this test's own on loopback holds each new connection for 5 s before
 * passing it on to the harness's PostgreSQL.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { runDir, sharedPostgres, uniqueName } from '../harness/fixtures';

const ROOT = path.resolve(__dirname, '..', '..');
const HOLD_MS = 5000;

/** A relay on 127.0.0.1 that connects each client to host:port only after HOLD_MS. */
async function slowRelay(host: string, port: number): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const server = net.createServer((client) => {
    sockets.add(client);
    client.on('error', () => client.destroy());
    client.pause();
    const timer = setTimeout(() => {
      timers.delete(timer);
      const upstream = net.connect(port, host);
      sockets.add(upstream);
      upstream.on('error', () => client.destroy());
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
      client.pipe(upstream).pipe(client);
      client.resume();
    }, HOLD_MS);
    timers.add(timer);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const t of timers) clearTimeout(t);
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('migrate.js and a PostgreSQL slow to accept a connection', function () {
  this.timeout(120_000);

  it(`waits for a connection that takes ${HOLD_MS / 1000} s (longer than the services' 3 s) and migrates`, async () => {
    const db = await (await sharedPostgres()).createAppDatabase();
    const relay = await slowRelay(db.owner.host, db.owner.port);
    try {
      const file = path.join(runDir(), `${uniqueName('migrate')}.env`);
      const vars = {
        BILLING_DB_HOST: '127.0.0.1',
        BILLING_DB_PORT: String(relay.port),
        BILLING_DB_NAME: db.database,
        BILLING_DB_OWNER: db.owner.user,
        BILLING_DB_OWNER_PASSWORD: db.owner.password,
        BILLING_DB_USER: db.app.user,
      };
      fs.writeFileSync(file, Object.entries(vars).map(([k, v]) => `${k}=${v}\n`).join(''), { mode: 0o400 });
      const started = Date.now();
      const result = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(
          process.execPath,
          ['--import', 'tsx', path.join(ROOT, 'srcs/billing-app/src/migrate.ts')],
          { cwd: ROOT, env: { PATH: process.env.PATH ?? '', CM_ENV_FILE: file }, timeout: 100_000 },
          (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        );
      });
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /migrations: [1-9]\d* applied\s*$/);
      // (the relay did hold the connection: this is not a test that passes by going around it)
      assert.ok(Date.now() - started >= HOLD_MS, `migrate.js finished in ${Date.now() - started} ms`);
    } finally {
      await relay.close();
    }
  });
});
