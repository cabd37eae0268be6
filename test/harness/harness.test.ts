/**
 * Self-tests of the test harness: if these fail, no other integration test can be trusted.
 * Each server-level test uses a dedicated instance because it stops and kills it.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as amqp from 'amqplib';
import pg from 'pg';
import { runDir, sharedPostgres, sharedRabbit } from './fixtures';
import { PostgresInstance } from './postgres';
import {
  freePort,
  groupAlive,
  pidAlive,
  startService,
  uniqueName,
  waitFor,
} from './processes';
import { RabbitInstance } from './rabbitmq';

function pidRecords(): string[] {
  return fs.readdirSync(path.join(runDir(), 'pids'));
}

async function pgConnect(config: pg.ClientConfig): Promise<pg.Client> {
  const client = new pg.Client({ connectionTimeoutMillis: 5_000, ...config });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

async function rejectsWithCode(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (err: NodeJS.ErrnoException) => {
    assert.equal(err.code, code, `expected ${code}, got ${err.code}: ${err.message}`);
    return true;
  });
}

describe('harness', function () {
  describe('processes', function () {
    it('uniqueName gives distinct identifier-safe names', function () {
      const names = new Set(Array.from({ length: 200 }, () => uniqueName('My-Suite')));
      assert.equal(names.size, 200);
      for (const n of names) assert.match(n, /^my_suite_[a-z0-9]+$/);
    });

    it('freePort gives distinct free ports, never a default one', async function () {
      const ports = await Promise.all(Array.from({ length: 20 }, () => freePort()));
      assert.equal(new Set(ports).size, 20);
      for (const p of ports) {
        assert.ok(p > 1024 && p < 65536);
        assert.ok(![4369, 5432, 5672, 8080, 15672, 25672].includes(p));
      }
      const server = net.createServer();
      await new Promise<void>((resolve) => server.listen(ports[0], '127.0.0.1', resolve));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });

    it('waitFor resolves with the first truthy value and is bounded', async function () {
      let n = 0;
      assert.equal(await waitFor(() => (++n >= 3 ? n : false), { intervalMs: 1 }), 3);
      const started = Date.now();
      await assert.rejects(
        waitFor(
          () => {
            throw new Error('still broken');
          },
          { timeoutMs: 200, intervalMs: 20, description: 'never' },
        ),
        /waitFor\(never\) timed out after 200 ms; last error: still broken/,
      );
      assert.ok(Date.now() - started < 2_000);
      // An attempt that never settles is cut off at the deadline too.
      const hangStart = Date.now();
      await assert.rejects(waitFor(() => new Promise<boolean>(() => undefined), { timeoutMs: 150 }), /timed out/);
      assert.ok(Date.now() - hangStart < 2_000);
    });

    describe('startService', function () {
      let script: string;
      before(function () {
        script = path.join(runDir(), `${uniqueName('svc')}.js`);
        fs.writeFileSync(
          script,
          [
            "const http = require('node:http');",
            "if (process.env.EXIT_EARLY) process.exit(3);",
            "const server = http.createServer((req, res) => res.end('hello ' + process.env.GREETING));",
            'server.listen(Number(process.env.PORT), "127.0.0.1", () => console.log("listening"));',
            "process.on('SIGTERM', () => { console.log('got SIGTERM'); server.close(() => process.exit(0)); });",
          ].join('\n'),
        );
      });

      it('starts, waits for readiness, records the pid, stops gracefully', async function () {
        const port = await freePort();
        const svc = await startService({
          name: 'greeter',
          script,
          env: { PORT: String(port), GREETING: 'tests' },
          runDir: runDir(),
          readyUrl: `http://127.0.0.1:${port}/`,
        });
        assert.ok(pidRecords().includes(String(svc.pid)));
        const res = await fetch(`http://127.0.0.1:${port}/`);
        assert.equal(await res.text(), 'hello tests');
        const exit = await svc.stop();
        assert.deepEqual(exit, { code: 0, signal: null });
        assert.match(svc.logs(), /listening[\s\S]*got SIGTERM/);
        assert.ok(!pidRecords().includes(String(svc.pid)));
        assert.ok(!groupAlive(svc.pid));
      });

      it('kill() SIGKILLs the service', async function () {
        const port = await freePort();
        const svc = await startService({
          name: 'victim',
          script,
          env: { PORT: String(port) },
          runDir: runDir(),
          readyUrl: `http://127.0.0.1:${port}/`,
        });
        const exit = await svc.kill();
        assert.equal(exit.signal, 'SIGKILL');
        assert.ok(!pidAlive(svc.pid));
        await rejectsWithCode(fetch(`http://127.0.0.1:${port}/`).catch((e: { cause?: unknown }) => Promise.reject(e.cause)), 'ECONNREFUSED');
      });

      it('fails fast, with the log, when the service dies before it is ready', async function () {
        const port = await freePort();
        const started = Date.now();
        await assert.rejects(
          startService({
            name: 'crasher',
            script,
            env: { PORT: String(port), EXIT_EARLY: '1' },
            runDir: runDir(),
            readyUrl: `http://127.0.0.1:${port}/`,
          }),
          /crasher exited \(\{"code":3,"signal":null\}\)/,
        );
        assert.ok(Date.now() - started < 5_000);
      });
    });
  });

  describe('PostgresInstance', function () {
    this.timeout(60_000);
    let db: PostgresInstance;

    before(async function () {
      db = await PostgresInstance.create({ runDir: runDir() });
      await db.start();
    });

    after(async function () {
      const dir = db.dir;
      await db.destroy();
      assert.ok(!fs.existsSync(dir) || process.env.TEST_KEEP_RUN_DIR === '1');
    });

    it('listens on its own port on 127.0.0.1 only, never the default', function () {
      assert.notEqual(db.port, 5432);
      assert.equal(db.connectionConfig().host, '127.0.0.1');
      assert.match(fs.readFileSync(path.join(db.dataDir, 'postgresql.conf'), 'utf8'), /listen_addresses = '127\.0\.0\.1'/);
    });

    it('accepts the superuser with its password, via config and via url', async function () {
      for (const config of [db.connectionConfig('postgres'), { connectionString: db.url('postgres') }]) {
        const client = await pgConnect(config);
        const { rows } = await client.query<{ user: string; ssl: boolean }>('SELECT current_user AS user');
        assert.equal(rows[0]?.user, db.user);
        await client.end();
      }
    });

    it('rejects a wrong password (no trust authentication)', async function () {
      await rejectsWithCode(pgConnect({ ...db.connectionConfig(), password: 'wrong' }), '28P01');
      await rejectsWithCode(pgConnect({ ...db.connectionConfig(), password: db.password.slice(1) }), '28P01');
      await rejectsWithCode(pgConnect({ ...db.connectionConfig(), user: 'postgres', password: db.password }), '28P01');
    });

    it('createDatabase and createRole give a database an app role can use', async function () {
      const role = uniqueName('app');
      await db.createRole(role, 'app secret');
      const name = await db.createDatabase(undefined, role);
      assert.match(name, /^db_/);
      assert.notEqual(await db.createDatabase(), name);
      const named = await db.createDatabase(uniqueName('Movies'));
      assert.match(named, /^movies_/);
      const client = await pgConnect({ ...db.connectionConfig(name), user: role, password: 'app secret' });
      await client.query('CREATE TABLE t (id serial PRIMARY KEY, v text)');
      await client.query("INSERT INTO t (v) VALUES ('x')");
      assert.equal((await client.query('SELECT count(*)::int AS n FROM t')).rows[0].n, 1);
      await client.end();
      await rejectsWithCode(pgConnect({ ...db.connectionConfig(name), user: role, password: 'nope' }), '28P01');
    });

    it('stop() refuses connections, start() serves the same data again', async function () {
      const name = await db.createDatabase();
      await db.query('CREATE TABLE kept (v text)', [], name);
      await db.query("INSERT INTO kept VALUES ('survives')", [], name);
      const pidBefore = pidRecords();
      await db.stop();
      assert.equal(db.isRunning(), false);
      assert.equal(pidRecords().length, pidBefore.length - 1);
      await rejectsWithCode(db.query('SELECT 1'), 'ECONNREFUSED');
      await db.start();
      assert.equal(db.isRunning(), true);
      const rows = await db.query<{ v: string }>('SELECT v FROM kept', [], name);
      assert.deepEqual(rows, [{ v: 'survives' }]);
    });

    it('kill() crashes it (connections refused) and start() recovers', async function () {
      const client = await pgConnect(db.connectionConfig());
      await db.kill();
      assert.equal(db.isRunning(), false);
      await assert.rejects(client.query('SELECT 1'));
      await rejectsWithCode(db.query('SELECT 1'), 'ECONNREFUSED');
      await db.start();
      assert.deepEqual(await db.query('SELECT 1 AS one'), [{ one: 1 }]);
    });

    it('restart() keeps working', async function () {
      await db.restart();
      assert.deepEqual(await db.query('SELECT 2 AS two'), [{ two: 2 }]);
    });
  });

  describe('RabbitInstance', function () {
    this.timeout(120_000);
    let rabbit: RabbitInstance;

    before(async function () {
      rabbit = await RabbitInstance.create({ runDir: runDir() });
      await rabbit.start();
    });

    after(async function () {
      const dir = rabbit.dir;
      await rabbit.destroy();
      assert.ok(!fs.existsSync(dir) || process.env.TEST_KEEP_RUN_DIR === '1');
    });

    it('uses private ports and random credentials', function () {
      const cfg = rabbit.connectionConfig();
      assert.equal(cfg.host, '127.0.0.1');
      assert.notEqual(cfg.port, 5672);
      assert.notEqual(rabbit.epmdPort, 4369);
      assert.notEqual(cfg.user, 'guest');
      assert.ok(cfg.password.length >= 32);
      assert.equal(cfg.vhost, '/');
      assert.equal(rabbit.url(), `amqp://${cfg.user}:${cfg.password}@127.0.0.1:${cfg.port}/%2F`);
    });

    it('accepts its credentials and refuses wrong ones and guest', async function () {
      const conn = await amqp.connect(rabbit.url());
      await conn.close();
      const { host, port, user } = rabbit.connectionConfig();
      await assert.rejects(amqp.connect({ hostname: host, port, username: user, password: 'wrong' }), /ACCESS_REFUSED|403/);
      await assert.rejects(amqp.connect({ hostname: host, port, username: 'guest', password: 'guest' }), /ACCESS_REFUSED|403/);
    });

    it('keeps a durable queue and a persistent message across stop/start', async function () {
      const queue = uniqueName('durable_q');
      let conn = await amqp.connect(rabbit.url());
      const ch = await conn.createConfirmChannel();
      await ch.assertQueue(queue, { durable: true });
      ch.sendToQueue(queue, Buffer.from('{"user_id":"3"}'), { persistent: true });
      await ch.waitForConfirms();
      await conn.close();

      await rabbit.stop();
      assert.equal(rabbit.isRunning(), false);
      await assert.rejects(amqp.connect(rabbit.url()), /ECONNREFUSED/);
      await rabbit.start();

      conn = await amqp.connect(rabbit.url());
      const ch2 = await conn.createChannel();
      const q = await ch2.checkQueue(queue);
      assert.equal(q.messageCount, 1);
      const msg = await ch2.get(queue, { noAck: true });
      assert.ok(msg !== false, 'message lost across restart');
      assert.equal(msg.content.toString(), '{"user_id":"3"}');
      await conn.close();
    });

    it('kill() takes the whole node down at once; start() brings it back', async function () {
      const conn = await amqp.connect(rabbit.url());
      const closed = new Promise<void>((resolve) => conn.once('close', () => resolve()));
      conn.on('error', () => undefined);
      const started = Date.now();
      await rabbit.kill();
      assert.ok(Date.now() - started < 5_000, 'kill should not wait for a graceful shutdown');
      assert.equal(rabbit.isRunning(), false);
      await closed;
      await assert.rejects(amqp.connect(rabbit.url()), /ECONNREFUSED/);
      await rabbit.start();
      const again = await amqp.connect(rabbit.url());
      await again.close();
    });

    it('runs no epmd of its own in the default mode', async function () {
      if (process.env.TEST_RABBIT_EPMD === 'private') this.skip();
      const reachable = await new Promise<boolean>((resolve) => {
        const s = net.connect({ host: '127.0.0.1', port: rabbit.epmdPort });
        s.once('connect', () => {
          s.destroy();
          resolve(true);
        });
        s.once('error', () => resolve(false));
      });
      assert.equal(reachable, false);
    });
  });

  describe('shared instances', function () {
    this.timeout(120_000);

    it('sharedPostgres starts once and is reused', async function () {
      const [a, b] = await Promise.all([sharedPostgres(), sharedPostgres()]);
      assert.equal(a, b);
      assert.equal(await sharedPostgres(), a);
      assert.ok(a.isRunning());
      assert.deepEqual(await a.query('SELECT 1 AS one'), [{ one: 1 }]);
    });

    it('sharedRabbit starts once and is reused', async function () {
      const [a, b] = await Promise.all([sharedRabbit(), sharedRabbit()]);
      assert.equal(a, b);
      assert.ok(a.isRunning());
      const conn = await amqp.connect(a.url());
      await conn.close();
    });
  });
});
