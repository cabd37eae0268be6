/**
 * The stack under test, on private instances: a PostgreSQL cluster and a RabbitMQ node started
 * by the test harness in a temporary directory, the services started from their compiled
 * `dist/main.js` exactly as PM2 starts them, everything on 127.0.0.1 and free ports. `destroy()`
 * stops all of it and removes the directory.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { PostgresInstance } from '../test/harness/postgres';
import { childPids, freePort, killAllProcessesSync, startService, type ServiceProcess } from '../test/harness/processes';
import { RabbitInstance } from '../test/harness/rabbitmq';
import { destroyAllInstances } from '../test/harness/registry';
import { createDatabase, findEnvFile, loadEnv, migrateAndGrant, type DatabaseSchema } from '@crud-master/common';
import { connectOptions, declareBillingTopology } from '@crud-master/billing-contract';
import * as amqp from 'amqplib';
import { inventorySchema } from '../srcs/inventory-app/src/db/schema';
import { billingSchema } from '../srcs/billing-app/src/db/schema';

/** The worker's prefetch as deployed (.env), so the bench measures the shipped setting. */
export const BILLING_PREFETCH = Number(loadEnv(findEnvFile(__dirname), {}).BILLING_PREFETCH ?? '100');

export const ROOT = path.resolve(__dirname, '..');

export interface DbAccess {
  host: string;
  port: number;
  database: string;
  user: string;
  password: string;
  /** The owner role (migrations, the ceilings' scratch tables). */
  owner: { user: string; password: string };
}

export interface Service {
  name: string;
  url: string;
  proc: ServiceProcess;
}

/**
 * Production-like durability for the measurements (the harness turns fsync off to make tests
 * fast; a benchmark of commits must not), and Debian's default shared_buffers.
 */
const BENCH_POSTGRES_SETTINGS = [
  '',
  '# benchmark settings: durable commits, as in production',
  'fsync = on',
  'synchronous_commit = on',
  'full_page_writes = on',
  'shared_buffers = 128MB',
  'max_wal_size = 2GB',
  '',
].join('\n');

export class Stack {
  readonly runDir: string;
  pg!: PostgresInstance;
  rabbit: RabbitInstance | undefined;
  /** Why RabbitMQ is not running, when it is not. */
  rabbitError: string | undefined;
  movies!: DbAccess;
  orders!: DbAccess;
  private readonly services: Service[] = [];
  private readonly cleanups: Array<() => Promise<void>> = [];
  /** When set, services started from now on write V8 CPU profiles under it (one folder per service). */
  profileDir: string | undefined;

  constructor(readonly log: (line: string) => void) {
    this.runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'crud-master-bench.'));
    // PostgreSQL runs as the postgres user and must reach its directory.
    fs.chmodSync(this.runDir, 0o711);
    fs.mkdirSync(path.join(this.runDir, 'pids'));
    fs.mkdirSync(path.join(this.runDir, 'logs'));
  }

  /** Starts PostgreSQL (and RabbitMQ unless `withRabbit` is false) and creates the two databases. */
  async start(withRabbit: boolean): Promise<void> {
    const pgReady = (async () => {
      this.pg = await PostgresInstance.create({ runDir: this.runDir, name: 'bench_pg' });
      fs.appendFileSync(path.join(this.pg.dataDir, 'postgresql.conf'), BENCH_POSTGRES_SETTINGS);
      await this.pg.start();
    })();
    // Without a broker the movie figures still mean something: billing's become n/a.
    const rabbitReady = withRabbit
      ? (async () => {
          try {
            const rabbit = await RabbitInstance.create({ runDir: this.runDir, name: 'bench_rmq' });
            await rabbit.start();
            this.rabbit = rabbit;
          } catch (err) {
            this.rabbitError = err instanceof Error ? err.message.split('\n')[0] : String(err);
            this.log(`RabbitMQ did not start: ${this.rabbitError}`);
          }
        })()
      : Promise.resolve();
    await Promise.all([pgReady, rabbitReady]);
    // Least privilege, as provisioning does: an owner role migrates (migrate.js), the app role
    // gets only its DML; the topology is declared as billing does at its first start.
    this.movies = await this.database('inventory_bench', 'movies_db', inventorySchema);
    this.orders = await this.database('billing_bench', 'orders_db', billingSchema);
    if (this.rabbit) {
      const connection = await amqp.connect(connectOptions({ ...this.rabbit.connectionConfig(), queue: 'billing_queue' }));
      await declareBillingTopology(await connection.createChannel(), 'billing_queue');
      await connection.close();
    }
  }

  private async database(user: string, name: string, schema: DatabaseSchema): Promise<DbAccess> {
    const password = randomBytes(12).toString('hex');
    const ownerPassword = randomBytes(12).toString('hex');
    await this.pg.createRole(user, password);
    await this.pg.createRole(`${user}_owner`, ownerPassword);
    await this.pg.createDatabase(name, `${user}_owner`);
    const at = { host: this.pg.host, port: this.pg.port, database: name };
    const owner = createDatabase({ ...at, user: `${user}_owner`, password: ownerPassword }, { poolMax: 1 });
    try {
      await migrateAndGrant(owner, schema, user);
    } finally {
      await owner.destroy();
    }
    return { ...at, user, password, owner: { user: `${user}_owner`, password: ownerPassword } };
  }

  /** Settings every service reads from its environment (the repository's .env is not read). */
  env(extra: Record<string, string>): Record<string, string> {
    const envFile = path.join(this.runDir, 'empty.env');
    if (!fs.existsSync(envFile)) fs.writeFileSync(envFile, '');
    const rabbit = this.rabbit;
    return {
      CM_ENV_FILE: envFile,
      NODE_ENV: 'production',
      // As in production (.env): one log line per request, to a file as PM2 does.
      LOG_LEVEL: 'info',
      INVENTORY_DB_HOST: this.movies.host,
      INVENTORY_DB_PORT: String(this.movies.port),
      INVENTORY_DB_NAME: this.movies.database,
      INVENTORY_DB_USER: this.movies.user,
      INVENTORY_DB_PASSWORD: this.movies.password,
      // For `npm run seed` (bench/movies.ts), which loads as the owner; the apps ignore them.
      INVENTORY_DB_OWNER: this.movies.owner.user,
      INVENTORY_DB_OWNER_PASSWORD: this.movies.owner.password,
      BILLING_DB_HOST: this.orders.host,
      BILLING_DB_PORT: String(this.orders.port),
      BILLING_DB_NAME: this.orders.database,
      BILLING_DB_USER: this.orders.user,
      BILLING_DB_PASSWORD: this.orders.password,
      BILLING_PREFETCH: String(BILLING_PREFETCH),
      RABBITMQ_HOST: '127.0.0.1',
      RABBITMQ_PORT: String(rabbit?.port ?? 1),
      // The harness's administrator for both sides: the bench measures speed, the tests rights.
      RABBITMQ_GATEWAY_USER: rabbit?.user ?? 'none',
      RABBITMQ_GATEWAY_PASSWORD: rabbit?.password ?? 'none',
      RABBITMQ_BILLING_USER: rabbit?.user ?? 'none',
      RABBITMQ_BILLING_PASSWORD: rabbit?.password ?? 'none',
      // Each gateway gets its own admin port (startGateway, pm2.ts): two may run side by side.
      GATEWAY_ADMIN_HOST: '127.0.0.1',
      RABBITMQ_VHOST: '/',
      RABBITMQ_QUEUE: 'billing_queue',
      ...extra,
    };
  }

  /** The postmaster and its children (backends, workers) right now. */
  postgresPids(): number[] {
    try {
      const postmaster = Number(fs.readFileSync(path.join(this.pg.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      return [postmaster, ...childPids(postmaster)];
    } catch {
      return [];
    }
  }

  /** RabbitMQ's processes (the node and its helpers): every process whose command line names its directory. */
  rabbitPids(): number[] {
    const dir = this.rabbit?.dir;
    if (!dir) return [];
    const pids: number[] = [];
    for (const entry of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        if (fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(dir)) pids.push(Number(entry));
      } catch {
        // gone meanwhile
      }
    }
    return pids;
  }

  amqpUrl(): string {
    if (!this.rabbit) throw new Error('RabbitMQ is not running');
    return this.rabbit.url();
  }

  /** Starts `script` (relative to the repository) as a tracked child process; waits for `readyPath`. */
  async startService(name: string, script: string, env: Record<string, string>, port: number, readyPath = '/health'): Promise<Service> {
    const url = `http://127.0.0.1:${port}`;
    const profileDir = this.profileDir ? path.join(this.profileDir, name) : undefined;
    const proc = await startService({
      name,
      script: path.join(ROOT, script),
      env: this.env(env),
      runDir: this.runDir,
      readyUrl: `${url}${readyPath}`,
      readyTimeoutMs: 60_000,
      cwd: ROOT,
      ...(profileDir ? { nodeArgs: ['--cpu-prof', '--cpu-prof-dir', profileDir] } : {}),
    });
    const service = { name, url, proc };
    this.services.push(service);
    return service;
  }

  async startInventory(): Promise<Service> {
    const port = await freePort();
    return this.startService('inventory', 'srcs/inventory-app/dist/main.js', { INVENTORY_LISTEN_HOST: '127.0.0.1', INVENTORY_PORT: String(port) }, port);
  }

  async startGateway(inventory: Service): Promise<Service> {
    const port = await freePort();
    const adminPort = await freePort();
    return this.startService(
      'gateway',
      'srcs/api-gateway/dist/main.js',
      {
        GATEWAY_LISTEN_HOST: '127.0.0.1',
        GATEWAY_PORT: String(port),
        GATEWAY_ADMIN_PORT: String(adminPort),
        INVENTORY_HOST: '127.0.0.1',
        INVENTORY_PORT: new URL(inventory.url).port,
      },
      port,
      // The gateway's /health is 503 without a broker; any answer below 500 from a movie path
      // means it is up.
      '/api/movies/1',
    );
  }

  async startBilling(): Promise<Service> {
    const port = await freePort();
    return this.startService('billing', 'srcs/billing-app/dist/main.js', { BILLING_LISTEN_HOST: '127.0.0.1', BILLING_PORT: String(port) }, port);
  }

  /** The ceiling for GET /api/movies/:id (bench/minimal-server.ts), on movies_db as the inventory's role. */
  async startMinimal(): Promise<Service> {
    const port = await freePort();
    const db = this.movies;
    return this.startService(
      'minimal',
      'bench/minimal-server.ts',
      { PORT: String(port), PGHOST: db.host, PGPORT: String(db.port), PGDATABASE: db.database, PGUSER: db.user, PGPASSWORD: db.password },
      port,
      '/api/movies/1',
    );
  }

  /** A proxy ceiling (bench/naive-proxy.ts) in front of `target`. */
  async startProxy(variant: 'naive' | 'raw-hpm' | 'undici', target: Service): Promise<Service> {
    const port = await freePort();
    return this.startService(`proxy-${variant}`, 'bench/naive-proxy.ts', { PORT: String(port), TARGET: target.url, PROXY_VARIANT: variant }, port, '/api/movies/1');
  }

  /** Runs `fn` when the stack is destroyed (before the instances stop), e.g. to end a PM2 daemon. */
  onDestroy(fn: () => Promise<void>): void {
    this.cleanups.push(fn);
  }

  async stopService(service: Service): Promise<void> {
    await service.proc.stop('SIGTERM', 15_000);
    const i = this.services.indexOf(service);
    if (i >= 0) this.services.splice(i, 1);
  }

  /** A superuser-free connection as the app's own role. */
  async client(db: DbAccess): Promise<pg.Client> {
    const client = new pg.Client({ ...db, connectionTimeoutMillis: 5000 });
    client.on('error', () => undefined);
    await client.connect();
    return client;
  }

  /** Stops every service and instance and removes the run directory (unless `keep`). */
  async destroy(keep = false): Promise<void> {
    for (const fn of this.cleanups.splice(0)) await fn().catch((err: unknown) => this.log(`cleanup: ${String(err)}`));
    for (const service of this.services.splice(0)) {
      await service.proc.stop('SIGTERM', 10_000).catch(() => undefined);
    }
    const errors = await destroyAllInstances();
    killAllProcessesSync();
    for (const err of errors) this.log(`cleanup: ${err.message}`);
    if (!keep) fs.rmSync(this.runDir, { recursive: true, force: true });
  }
}
