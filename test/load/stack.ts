/**
 * The stack as users run it (`npm start`): the three services under PM2 from the repository's
 * ecosystem.config.js and compiled builds, NODE_ENV=production, one access log line per request
 * in PM2's log files; but on a PostgreSQL cluster and a RabbitMQ node of the test's own (the
 * harness's, in the run directory), with a private PM2_HOME whose daemon is killed at the end.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort, PostgresInstance, RabbitInstance, runDir, uniqueName, waitFor } from '../harness/fixtures';
import { trackPid } from '../harness/processes';
import type { AppDatabase } from '../harness/postgres';
import { billingBroker, type BillingBroker } from '../support/billing-broker';
import { migratedDatabase } from '../support/databases';
import { inventorySchema } from '../../srcs/inventory-app/src/db/schema';
import { billingSchema } from '../../srcs/billing-app/src/db/schema';

const execFileAsync = promisify(execFile);
export const ROOT = path.resolve(__dirname, '..', '..');
const PM2 = path.join(ROOT, 'node_modules', '.bin', 'pm2');
export const APPS = ['inventory_app', 'billing_app', 'api_gateway'] as const;
export type AppName = (typeof APPS)[number];

interface Pm2Process {
  name: string;
  pid: number;
  pm2_env: { status: string; restart_time: number };
}

/** PM2 runs the compiled dist/main.js: the last build must be newer than every source file. */
function assertBuilt(service: string): void {
  const dir = path.join(ROOT, 'srcs', service);
  const buildInfo = path.join(dir, 'tsconfig.tsbuildinfo');
  if (!fs.existsSync(path.join(dir, 'dist', 'main.js')) || !fs.existsSync(buildInfo)) {
    throw new Error(`srcs/${service} is not built: build first (npx tsc -b; npm test does)`);
  }
  const built = fs.statSync(buildInfo).mtimeMs;
  const stale = (sub: string): boolean =>
    fs.readdirSync(sub, { withFileTypes: true }).some((e) => {
      const file = path.join(sub, e.name);
      return e.isDirectory() ? stale(file) : fs.statSync(file).mtimeMs > built;
    });
  if (stale(path.join(dir, 'src'))) throw new Error(`srcs/${service}/src changed after the last build: build first (npx tsc -b)`);
}

export interface ProcessSample {
  rssBytes: number;
  fds: number;
}

/** RSS and open file descriptors of a process, from /proc. */
export function sampleProcess(pid: number): ProcessSample | undefined {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 'NaN');
    return { rssBytes: rssKb * 1024, fds: fs.readdirSync(`/proc/${pid}/fd`).length };
  } catch {
    return undefined;
  }
}

export class LoadStack {
  pg!: PostgresInstance;
  rabbit!: RabbitInstance;
  moviesDb!: string;
  ordersDb!: string;
  /** Both databases' roles and the two RabbitMQ users: each service connects with its own. */
  private roles!: { movies: AppDatabase; orders: AppDatabase; broker: BillingBroker };
  private adminPort = 0;
  gatewayPort = 0;
  inventoryPort = 0;
  billingPort = 0;
  queue = '';
  pm2Home = '';
  private daemonStarted = false;

  /** Extra variables for the services (the short profile's shorter timeouts). */
  constructor(private readonly extraEnv: Record<string, string>) {}

  get gatewayUrl(): string {
    return `http://127.0.0.1:${this.gatewayPort}`;
  }

  async start(): Promise<void> {
    for (const service of ['api-gateway', 'inventory-app', 'billing-app']) assertBuilt(service);
    const dir = runDir();
    // Dedicated instances: the fault case restarts them, which the shared ones must never see.
    const [pgInstance, rabbit] = await Promise.all([
      (async () => {
        const instance = await PostgresInstance.create({ runDir: dir, name: uniqueName('load_pg') });
        await instance.start();
        return instance;
      })(),
      (async () => {
        const instance = await RabbitInstance.create({ runDir: dir, name: uniqueName('load_rmq') });
        await instance.start();
        return instance;
      })(),
    ]);
    this.pg = pgInstance;
    this.rabbit = rabbit;
    // Migrated and granted as provisioning does (migrate.js), the topology declared as billing does.
    this.queue = 'billing_queue';
    this.roles = {
      movies: await migratedDatabase(inventorySchema, this.pg),
      orders: await migratedDatabase(billingSchema, this.pg),
      broker: await billingBroker(this.rabbit, { queue: this.queue }),
    };
    this.moviesDb = this.roles.movies.database;
    this.ordersDb = this.roles.orders.database;
    [this.gatewayPort, this.inventoryPort, this.billingPort, this.adminPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
    this.pm2Home = path.join(dir, uniqueName('pm2_home'));
    fs.mkdirSync(this.pm2Home, { recursive: true });
    this.daemonStarted = true;
    await this.pm2('start', path.join(ROOT, 'ecosystem.config.js'));
    await this.track();
    for (const [name, port] of [
      ['inventory', this.inventoryPort],
      ['billing', this.billingPort],
      ['gateway', this.gatewayPort],
    ] as const) {
      await waitFor(
        async () => (await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(3000) })).status === 200,
        { timeoutMs: 60_000, intervalMs: 250, description: `${name} healthy under PM2` },
      ).catch((err: unknown) => {
        throw new Error(`${err instanceof Error ? err.message : String(err)}\n${this.errorLogTails()}`);
      });
    }
  }

  /** The end of every app's PM2 error log, for a failed start. */
  errorLogTails(): string {
    const dir = path.join(this.pm2Home, 'logs');
    if (!fs.existsSync(dir)) return '';
    return fs
      .readdirSync(dir)
      .filter((f) => f.endsWith('-error.log'))
      .map((f) => `--- ${f}\n${fs.readFileSync(path.join(dir, f), 'utf8').slice(-1500)}`)
      .join('\n');
  }

  /** Every variable the services read: nothing comes from the repository's .env. */
  private env(): Record<string, string> {
    const movies = this.roles.movies.app;
    const orders = this.roles.orders.app;
    const mq = this.rabbit.connectionConfig();
    const { gateway, billing } = this.roles.broker;
    return {
      CM_ENV_FILE: '/dev/null',
      NODE_ENV: 'production',
      LOG_LEVEL: 'info',
      GATEWAY_LISTEN_HOST: '127.0.0.1',
      GATEWAY_PORT: String(this.gatewayPort),
      GATEWAY_ADMIN_HOST: '127.0.0.1',
      GATEWAY_ADMIN_PORT: String(this.adminPort),
      INVENTORY_HOST: '127.0.0.1',
      INVENTORY_LISTEN_HOST: '127.0.0.1',
      INVENTORY_PORT: String(this.inventoryPort),
      INVENTORY_DB_HOST: movies.host,
      INVENTORY_DB_PORT: String(movies.port),
      INVENTORY_DB_NAME: movies.database,
      INVENTORY_DB_USER: movies.user,
      INVENTORY_DB_PASSWORD: movies.password,
      BILLING_LISTEN_HOST: '127.0.0.1',
      BILLING_PORT: String(this.billingPort),
      BILLING_DB_HOST: orders.host,
      BILLING_DB_PORT: String(orders.port),
      BILLING_DB_NAME: orders.database,
      BILLING_DB_USER: orders.user,
      BILLING_DB_PASSWORD: orders.password,
      BILLING_PREFETCH: '1000',
      RABBITMQ_HOST: mq.host,
      RABBITMQ_PORT: String(mq.port),
      RABBITMQ_GATEWAY_USER: gateway.user,
      RABBITMQ_GATEWAY_PASSWORD: gateway.password,
      RABBITMQ_BILLING_USER: billing.user,
      RABBITMQ_BILLING_PASSWORD: billing.password,
      RABBITMQ_VHOST: mq.vhost,
      RABBITMQ_QUEUE: this.queue,
      ...this.extraEnv,
    };
  }

  async pm2(...args: string[]): Promise<string> {
    const { stdout } = await execFileAsync(PM2, args, {
      cwd: ROOT,
      env: { ...process.env, ...this.env(), PM2_HOME: this.pm2Home },
      timeout: 60_000,
      maxBuffer: 16 * 1024 * 1024,
    });
    return stdout;
  }

  async processes(): Promise<Pm2Process[]> {
    return JSON.parse(await this.pm2('jlist')) as Pm2Process[];
  }

  /** PM2's restart counter of each app. */
  async restarts(): Promise<Record<AppName, number>> {
    const list = await this.processes();
    const out = {} as Record<AppName, number>;
    for (const app of APPS) out[app] = list.find((p) => p.name === app)?.pm2_env.restart_time ?? -1;
    return out;
  }

  async pids(): Promise<Record<AppName, number>> {
    const list = await this.processes();
    const out = {} as Record<AppName, number>;
    for (const app of APPS) out[app] = list.find((p) => p.name === app)?.pid ?? 0;
    return out;
  }

  /** Records PM2's daemon and apps for scripts/test.sh's safety net, should `pm2 kill` never run. */
  async track(): Promise<void> {
    const daemon = Number(fs.readFileSync(path.join(this.pm2Home, 'pm2.pid'), 'utf8').trim());
    if (daemon > 0) trackPid(runDir(), daemon, 'pid', 'pm2_daemon');
    for (const p of await this.processes()) if (p.pid > 0) trackPid(runDir(), p.pid, 'pid', `pm2_${p.name}`);
  }

  /** PM2's log files (the access logs among them): their total size. */
  logBytes(): number {
    const dir = path.join(this.pm2Home, 'logs');
    if (!fs.existsSync(dir)) return 0;
    return fs.readdirSync(dir).reduce((sum, f) => sum + fs.statSync(path.join(dir, f)).size, 0);
  }

  /** A client on a database of the stack (as the harness's superuser). */
  async client(database: string): Promise<pg.Client> {
    const client = new pg.Client({ ...this.pg.connectionConfig(database), connectionTimeoutMillis: 5000 });
    client.on('error', () => undefined);
    await client.connect();
    return client;
  }

  /** Adds `count` movies with searchable titles; resolves with their ids. */
  async seedMovies(count: number): Promise<number[]> {
    const client = await this.client(this.moviesDb);
    try {
      const { rows } = await client.query<{ id: number }>(
        `INSERT INTO movies (title, description)
         SELECT 'Load movie ' || g || ' ' || (ARRAY['alpha','bravo','charlie','delta'])[1 + g % 4], 'A movie for the load test, number ' || g
         FROM generate_series(1, $1::int) AS g RETURNING id`,
        [count],
      );
      return rows.map((r) => r.id);
    } finally {
      await client.end();
    }
  }

  /** message_id -> rows in orders_db. */
  async storedOrders(): Promise<Map<string, number>> {
    const client = await this.client(this.ordersDb);
    try {
      const { rows } = await client.query<{ message_id: string; n: string }>('SELECT message_id, count(*) AS n FROM orders GROUP BY message_id');
      return new Map(rows.map((r) => [r.message_id, Number(r.n)]));
    } finally {
      await client.end();
    }
  }

  /** Messages still waiting in billing_queue, or undefined while RabbitMQ does not answer. */
  async queueDepth(): Promise<number | undefined> {
    try {
      const amqp = await import('amqplib');
      const connection = await amqp.connect(this.rabbit.url());
      connection.on('error', () => undefined);
      try {
        const channel = await connection.createChannel();
        channel.on('error', () => undefined);
        return (await channel.checkQueue(this.queue)).messageCount;
      } finally {
        await connection.close().catch(() => undefined);
      }
    } catch {
      return undefined;
    }
  }

  async destroy(): Promise<void> {
    if (this.daemonStarted) await this.pm2('kill').catch((err: unknown) => process.stderr.write(`pm2 kill: ${String(err)}\n`));
    await Promise.allSettled([this.pg?.destroy(), this.rabbit?.destroy()]);
  }
}
