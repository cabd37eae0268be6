/**
 * Helpers for the billing end-to-end suites (test/e2e/billing-*.test.ts): the gateway and
 * billing-app as real processes pointed at harness instances, orders posted over HTTP, rows
 * read from orders_db, queues inspected over AMQP.
 */
import path from 'node:path';
import * as amqp from 'amqplib';
import { createDatabase, type Knex } from '@crud-master/common';
import {
  freePort,
  runDir,
  startService,
  uniqueName,
  waitFor,
  type PostgresInstance,
  type RabbitInstance,
} from '../harness/fixtures';
import type { AppDatabase, PgConnectionConfig } from '../harness/postgres';
import type { ServiceProcess } from '../harness/processes';
import { billingBroker, type BillingBroker } from '../support/billing-broker';
import { migratedDatabase } from '../support/databases';
import { billingSchema } from '../../srcs/billing-app/src/db/schema';

export const ROOT = path.resolve(__dirname, '..', '..');

export interface StackConfig {
  rabbit: RabbitInstance;
  pg: PostgresInstance;
  database: string;
  /** orders_db's roles: billing connects as `orders.app`. */
  orders: AppDatabase;
  queue: string;
  /** The gateway's and the worker's RabbitMQ users for `queue`. */
  broker: BillingBroker;
  gatewayPort: number;
  /** The gateway's admin listener (/metrics, detailed /health). */
  adminPort: number;
  billingPort: number;
  /** Passed to both services, e.g. { BILLING_PREFETCH: '50' }. */
  extraEnv?: Record<string, string>;
}

/**
 * A fresh orders database (migrated and granted, as migrate.js does), a queue with its two
 * RabbitMQ users and its topology (declared as the worker's user, as billing's first start
 * does), and free ports, on the given instances. `declare: false` leaves the topology to billing.
 */
export async function newStackConfig(rabbit: RabbitInstance, pg: PostgresInstance, options: { declare?: boolean } = {}): Promise<StackConfig> {
  const orders = await migratedDatabase(billingSchema, pg);
  const broker = await billingBroker(rabbit, { queue: uniqueName('billing_queue'), ...options });
  return {
    rabbit,
    pg,
    database: orders.database,
    orders,
    queue: broker.queue,
    broker,
    gatewayPort: await freePort(),
    adminPort: await freePort(),
    billingPort: await freePort(),
  };
}

/**
 * Every variable the two services read, so that nothing comes from the repository's .env
 * (CM_ENV_FILE names an empty file) and everything points at the harness instances, each
 * service with its own credentials: billing as orders_db's app role and the worker's RabbitMQ
 * user, the gateway as the gateway's RabbitMQ user.
 */
export function serviceEnv(config: StackConfig, inventoryPort = 9): Record<string, string> {
  const mq = config.rabbit.connectionConfig();
  const db = config.orders.app;
  return {
    CM_ENV_FILE: '/dev/null',
    NODE_ENV: 'test',
    LOG_LEVEL: 'info',
    GATEWAY_LISTEN_HOST: '127.0.0.1',
    GATEWAY_PORT: String(config.gatewayPort),
    GATEWAY_ADMIN_HOST: '127.0.0.1',
    GATEWAY_ADMIN_PORT: String(config.adminPort),
    GATEWAY_UPSTREAM_TIMEOUT_MS: '2000',
    GATEWAY_CONFIRM_TIMEOUT_MS: '5000',
    // No inventory in these suites: the gateway's /health says so, /api/billing does not care.
    INVENTORY_HOST: '127.0.0.1',
    INVENTORY_PORT: String(inventoryPort),
    BILLING_LISTEN_HOST: '127.0.0.1',
    BILLING_PORT: String(config.billingPort),
    BILLING_DB_HOST: db.host,
    BILLING_DB_PORT: String(db.port),
    BILLING_DB_NAME: db.database,
    BILLING_DB_USER: db.user,
    BILLING_DB_PASSWORD: db.password,
    BILLING_PREFETCH: '100',
    RABBITMQ_HOST: mq.host,
    RABBITMQ_PORT: String(mq.port),
    RABBITMQ_GATEWAY_USER: config.broker.gateway.user,
    RABBITMQ_GATEWAY_PASSWORD: config.broker.gateway.password,
    RABBITMQ_BILLING_USER: config.broker.billing.user,
    RABBITMQ_BILLING_PASSWORD: config.broker.billing.password,
    RABBITMQ_VHOST: mq.vhost,
    RABBITMQ_QUEUE: config.queue,
    ...config.extraEnv,
  };
}

/**
 * serviceEnv plus the inventory's own variables, for the suites that run all three services:
 * the inventory listens on `inventoryPort` and keeps its movies in `movies`.
 */
export function wholeStackEnv(config: StackConfig, movies: PgConnectionConfig, inventoryPort: number): Record<string, string> {
  return {
    ...serviceEnv(config, inventoryPort),
    LOG_LEVEL: 'warn',
    INVENTORY_LISTEN_HOST: '127.0.0.1',
    INVENTORY_PORT: String(inventoryPort),
    INVENTORY_DB_HOST: movies.host,
    INVENTORY_DB_PORT: String(movies.port),
    INVENTORY_DB_NAME: movies.database,
    INVENTORY_DB_USER: movies.user,
    INVENTORY_DB_PASSWORD: movies.password,
    ...config.extraEnv,
  };
}

/** One service (`srcs/<dir>`) from its TypeScript sources; resolves once `readyUrl` answers. */
export function startFromSources(name: string, dir: string, env: Record<string, string>, readyUrl: string): Promise<ServiceProcess> {
  return startService({ name, script: path.join(ROOT, 'srcs', dir, 'src', 'main.ts'), env, runDir: runDir(), cwd: ROOT, readyUrl, readyTimeoutMs: 60_000 });
}

export const gatewayUrl = (config: StackConfig): string => `http://127.0.0.1:${config.gatewayPort}`;
export const billingUrl = (config: StackConfig): string => `http://127.0.0.1:${config.billingPort}`;
/** The gateway's admin listener: /metrics and the detailed /health. */
export const adminUrl = (config: StackConfig): string => `http://127.0.0.1:${config.adminPort}`;

/** billing-app from its TypeScript sources; waits for /health 200 unless `ready` is false. */
export function startBilling(config: StackConfig, ready = true): Promise<ServiceProcess> {
  return startService({
    name: 'billing',
    script: path.join(ROOT, 'srcs/billing-app/src/main.ts'),
    env: serviceEnv(config),
    runDir: runDir(),
    cwd: ROOT,
    ...(ready ? { readyUrl: `${billingUrl(config)}/health`, readyTimeoutMs: 30_000 } : {}),
  });
}

/** The gateway from its TypeScript sources; resolves once it listens (its /health is 503 without an inventory). */
export async function startGateway(config: StackConfig): Promise<ServiceProcess> {
  const proc = await startService({
    name: 'gateway',
    script: path.join(ROOT, 'srcs/api-gateway/src/main.ts'),
    env: serviceEnv(config),
    runDir: runDir(),
    cwd: ROOT,
  });
  await waitFor(
    async () => {
      if (!proc.running) throw new Error(`gateway exited: ${proc.logs().slice(-2000)}`);
      const res = await fetch(`${gatewayUrl(config)}/health`, { signal: AbortSignal.timeout(3000) });
      return res.status === 200 || res.status === 503;
    },
    { timeoutMs: 30_000, description: 'the gateway to listen' },
  );
  return proc;
}

/** GET /health of a service as JSON (any status), or undefined if it does not answer. */
export async function health(url: string): Promise<{ status: number; body: HealthBody } | undefined> {
  try {
    const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(3000) });
    return { status: res.status, body: (await res.json()) as HealthBody };
  } catch {
    return undefined;
  }
}

export interface HealthBody {
  status: string;
  /** Public /health: only `status`; the gateway's admin /health adds `error` and details. */
  checks: Record<string, { status: string; error?: string; [detail: string]: unknown }>;
}

export interface OrderResponse {
  status: number;
  body: { status?: string; message_id?: string; error?: { code: string; message: string } };
  /** The X-Request-Id the gateway answered with. */
  requestId?: string;
}

export const sampleOrder = (n: number) => ({
  user_id: String((n % 1000) + 1),
  number_of_items: String((n % 7) + 1),
  total_amount: `${n}.${String(n % 100).padStart(2, '0')}`,
});

/** POST /api/billing/ once; a network failure is reported as status 0. */
export async function postOrder(config: StackConfig, body: unknown, headers: Record<string, string> = {}): Promise<OrderResponse> {
  try {
    const res = await fetch(`${gatewayUrl(config)}/api/billing/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(15_000),
    });
    const requestId = res.headers.get('x-request-id') ?? undefined;
    return { status: res.status, body: (await res.json()) as OrderResponse['body'], ...(requestId ? { requestId } : {}) };
  } catch (err) {
    return { status: 0, body: { error: { code: 'network', message: String(err) } } };
  }
}

/** Posts `count` orders, `concurrency` at a time; resolves with every response in order. */
export async function postOrders(config: StackConfig, count: number, concurrency = 25, first = 0): Promise<OrderResponse[]> {
  const responses: OrderResponse[] = new Array(count);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      responses[i] = await postOrder(config, sampleOrder(first + i));
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return responses;
}

/** Message ids of the 200 responses; throws if a 200 has no message id. */
export function confirmedIds(responses: OrderResponse[]): string[] {
  return responses
    .filter((r) => r.status === 200)
    .map((r) => {
      if (typeof r.body.message_id !== 'string') throw new Error(`a 200 without message_id: ${JSON.stringify(r.body)}`);
      return r.body.message_id;
    });
}

/** A knex pool on the stack's orders_db (for the test's own reads). */
export function ordersDb(config: StackConfig): Knex {
  return createDatabase(config.pg.connectionConfig(config.database), { poolMax: 2, acquireTimeoutMs: 3000 });
}

export async function countOrders(db: Knex): Promise<number> {
  try {
    const [row] = await db('orders').count<{ count: string }[]>({ count: '*' });
    return Number(row?.count ?? 0);
  } catch (err) {
    // Before billing has migrated there is no table yet.
    if ((err as { code?: string }).code === '42P01') return 0;
    throw err;
  }
}

/** message_id -> how many rows carry it. */
export async function rowsByMessageId(db: Knex): Promise<Map<string, number>> {
  const rows = await db('orders').select('message_id').count<{ message_id: string; count: string }[]>({ count: '*' }).groupBy('message_id');
  return new Map(rows.map((r) => [r.message_id, Number(r.count)]));
}

/**
 * The pipeline's promise on a finished stream: every confirmed (200) order is stored exactly
 * once, and nothing else is stored except, at most, orders that got 503 (`maxUnconfirmed`): a
 * 503 can mean the confirm was lost while the message was kept. Returns the first violation.
 */
export function checkStored(rows: Map<string, number>, confirmed: string[], maxUnconfirmed = 0): string | undefined {
  for (const id of confirmed) {
    const n = rows.get(id) ?? 0;
    if (n !== 1) return `confirmed order ${id} is stored ${n} times`;
  }
  for (const [id, n] of rows) if (n !== 1) return `order ${id} is stored ${n} times`;
  const extra = rows.size - confirmed.length;
  if (extra < 0 || extra > maxUnconfirmed) {
    return `${rows.size} orders stored for ${confirmed.length} confirmed (at most ${maxUnconfirmed} more allowed)`;
  }
  return undefined;
}

/** total_amount -> how many rows carry it (sampleOrder gives every order its own amount). */
export async function rowsByAmount(db: Knex): Promise<Map<string, number>> {
  const rows = await db('orders').select('total_amount').count<{ total_amount: string; count: string }[]>({ count: '*' }).groupBy('total_amount');
  return new Map(rows.map((r) => [r.total_amount, Number(r.count)]));
}

/** A test's own AMQP connection to look at queues. */
export async function amqpClient(rabbit: RabbitInstance): Promise<{ channel: amqp.ConfirmChannel; close(): Promise<void> }> {
  const connection = await amqp.connect(rabbit.url());
  connection.on('error', () => undefined);
  const channel = await connection.createConfirmChannel();
  channel.on('error', () => undefined);
  return { channel, close: () => connection.close().catch(() => undefined) };
}

/** One line of measurement in the test output (drain rates, counts under faults). */
export function metric(what: string, values: Record<string, number | string>): void {
  const parts = Object.entries(values).map(([k, v]) => `${k}=${v}`);
  process.stdout.write(`      [billing metric] ${what}: ${parts.join(' ')}\n`);
}
