import assert from 'node:assert/strict';
import request from 'supertest';
import { createHttpMetrics, type Knex } from '@crud-master/common';
import { createApp } from '../src/app';
import { billingSchema } from '../src/db/schema';
import { BillingConsumer } from '../src/messaging/consumer';
import { DEAD_LETTER_REASON_HEADER, MESSAGE_REQUEST_ID_HEADER, deadLetterQueueOf } from '@crud-master/billing-contract';
import type { OrderRecord, OrderStore } from '../src/orders/order';
import { OrdersRepository } from '../src/orders/repository';
import { sharedRabbit, uniqueName, waitFor, type RabbitInstance } from '../../../test/harness/fixtures';
import { freshDatabase } from '../../../test/support/databases';
import { silentLogger } from '../../../test/support/silent-logger';
import { captureLogger } from '../../../test/support/capture-logger';
import { sample } from '../../../test/support/prometheus';
import { BrokerClient } from './support/broker';
import { countOrders, listOrders } from './support/orders';

/** Writes to the real table, but only once `open()` was called: holds the worker mid-batch. */
class GatedStore implements OrderStore {
  private release!: () => void;
  private readonly gate = new Promise<void>((resolve) => {
    this.release = resolve;
  });
  constructor(private readonly inner: OrderStore) {}
  open(): void {
    this.release();
  }
  async insertMany(orders: readonly OrderRecord[]): Promise<string[]> {
    await this.gate;
    return this.inner.insertMany(orders);
  }
}

/** Holds the first batch it is given until released, then refuses it as if the database went away; writes every later batch at once. */
class FirstBatchFails implements OrderStore {
  calls = 0;
  private release!: () => void;
  private readonly gate = new Promise<void>((resolve) => {
    this.release = resolve;
  });
  constructor(private readonly inner: OrderStore) {}
  fail(): void {
    this.release();
  }
  async insertMany(orders: readonly OrderRecord[]): Promise<string[]> {
    if (++this.calls > 1) return this.inner.insertMany(orders);
    await this.gate;
    throw Object.assign(new Error('Connection terminated unexpectedly'), { code: 'ECONNRESET' });
  }
}

const order = (n: number) => ({ user_id: String(n), number_of_items: '1', total_amount: `${n}.50` });

describe('billing-app consumer (real broker and database)', () => {
  let rabbit: RabbitInstance;
  let broker: BrokerClient;
  let db: Knex;
  let truncate: (table: string) => Promise<void>;
  let orders: OrdersRepository;
  let queue: string;
  let consumer: BillingConsumer | undefined;

  const startConsumer = (options: { prefetch?: number } = {}): BillingConsumer => {
    const prefetch = options.prefetch ?? 20;
    consumer = new BillingConsumer({
      amqp: { ...rabbit.connectionConfig(), queue },
      prefetch,
      batchSize: Math.ceil(prefetch / 2),
      flushIntervalMs: 20,
      orders,
      logger: silentLogger(),
    });
    consumer.start();
    return consumer;
  };

  before(async () => {
    rabbit = await sharedRabbit();
    broker = await BrokerClient.open(rabbit.url());
    ({ db, truncate } = await freshDatabase(billingSchema));
    orders = new OrdersRepository(db);
  });
  beforeEach(async () => {
    queue = uniqueName('billing');
    await truncate('orders');
  });
  afterEach(async () => {
    await consumer?.stop();
    consumer = undefined;
  });
  after(async () => {
    await broker?.close();
    await db?.destroy();
  });

  it('processes every order already waiting when it starts, then the queue is empty', async () => {
    for (let i = 1; i <= 150; i++) await broker.publish(queue, order(i), { messageId: `m-${i}` });
    startConsumer();
    await waitFor(async () => (await countOrders(db)) === 150, { timeoutMs: 20_000, description: '150 rows' });
    await consumer?.stop();
    assert.equal(await broker.ready(queue), 0, 'nothing left (or requeued) in the queue');
    const rows = await listOrders(db);
    assert.deepEqual(
      rows.map((r) => r.messageId).sort(),
      Array.from({ length: 150 }, (_, i) => `m-${i + 1}`).sort(),
    );
    const first = rows.find((r) => r.messageId === 'm-7');
    assert.deepEqual(first && { ...first, id: 0, createdAt: null }, {
      id: 0,
      createdAt: null,
      messageId: 'm-7',
      userId: 7,
      numberOfItems: 1,
      totalAmount: '7.50',
    });
  });

  it('stores a message delivered twice (same message id) once', async () => {
    startConsumer();
    await broker.publish(queue, order(1), { messageId: 'dup' });
    await broker.publish(queue, order(1), { messageId: 'dup' });
    await broker.publish(queue, order(2), { messageId: 'after' });
    await waitFor(async () => (await db('orders').where({ message_id: 'after' }).first()) !== undefined, {
      description: 'the order after the duplicate',
    });
    await consumer?.stop();
    assert.equal(await broker.ready(queue), 0);
    assert.equal(await countOrders(db), 2);
  });

  it('dead-letters poison messages with the reason and goes on with the orders after them', async () => {
    startConsumer();
    await broker.publish(queue, order(1), { messageId: 'ok-1' });
    await broker.publish(queue, 'this is not json', { messageId: 'poison-1' });
    await broker.publish(queue, { user_id: 'three', number_of_items: '5', total_amount: '180' }, { messageId: 'poison-2' });
    await broker.publish(queue, { user_id: '3', number_of_items: '5' }, { messageId: 'poison-3' });
    await broker.publish(queue, order(2), { messageId: 'ok-2' });
    await waitFor(async () => (await countOrders(db)) === 2 && (await broker.ready(deadLetterQueueOf(queue))) === 3, {
      description: '2 rows and 3 dead letters',
    });
    const dead = await broker.drain(deadLetterQueueOf(queue));
    const reasons = Object.fromEntries(dead.map((m) => [m.properties.messageId, String(m.properties.headers?.[DEAD_LETTER_REASON_HEADER])]));
    assert.match(reasons['poison-1'] ?? '', /not valid JSON/);
    assert.match(reasons['poison-2'] ?? '', /user_id: must be a positive integer/);
    assert.match(reasons['poison-3'] ?? '', /total_amount: is required/);
    assert.equal(dead.find((m) => m.properties.messageId === 'poison-1')?.content.toString(), 'this is not json');
    await consumer?.stop();
    assert.equal(await broker.ready(queue), 0, 'poison messages were acknowledged, not requeued');
  });

  it('stores a message published without a message id under a stable derived id', async () => {
    startConsumer();
    await broker.publish(queue, order(5));
    await waitFor(async () => (await countOrders(db)) === 1, { description: 'one row' });
    const [row] = await listOrders(db);
    assert.match(row?.messageId ?? '', /^sha256:[0-9a-f]{64}$/);
  });

  it('on stop, writes and acknowledges what it holds: rows plus what is left in the queue is exactly what was sent', async () => {
    const total = 400;
    for (let i = 1; i <= total; i++) await broker.publish(queue, order(i), { messageId: `s-${i}` });
    const c = startConsumer({ prefetch: 50 });
    await waitFor(async () => (await countOrders(db)) > 0, { description: 'the first rows' });
    await c.stop();
    const stored = await countOrders(db);
    const left = await broker.ready(queue);
    // An order written but not acknowledged would be counted twice (a row and back in the queue).
    assert.equal(stored + left, total, `${stored} rows + ${left} left in the queue`);
  });

  it('with two batches in flight, acknowledges a batch committed first only after the earlier one: nothing is lost', async () => {
    for (let i = 1; i <= 10; i++) await broker.publish(queue, order(i), { messageId: `p-${i}` });
    const store = new FirstBatchFails(orders);
    const first = new BillingConsumer({
      amqp: { ...rabbit.connectionConfig(), queue },
      prefetch: 10,
      batchSize: 5,
      flushIntervalMs: 20,
      maxBatchesInFlight: 2,
      orders: store,
      logger: silentLogger(),
      stopTimeoutMs: 200,
    });
    first.start();
    // The second batch (p-6 .. p-10) is committed while the first is still being written.
    await waitFor(async () => (await countOrders(db)) === 5, { description: 'the second batch committed' });
    assert.deepEqual((await listOrders(db)).map((r) => r.messageId).sort(), ['p-10', 'p-6', 'p-7', 'p-8', 'p-9']);
    // Its ack (multiple: every delivery up to p-10) would also acknowledge p-1 .. p-5, which are
    // not stored: it must wait. Stop while the first batch is held, then let it fail.
    await first.stop();
    store.fail();
    assert.equal(await broker.ready(queue), 10, 'every message back in the queue: none acknowledged');
    // A fresh worker stores all ten, the five already stored once.
    startConsumer();
    await waitFor(async () => (await countOrders(db)) === 10, { description: '10 rows' });
    await waitFor(async () => (await broker.ready(queue)) === 0, { description: 'the queue empty' });
    assert.deepEqual(
      (await listOrders(db)).map((r) => r.messageId).sort(),
      Array.from({ length: 10 }, (_, i) => `p-${i + 1}`).sort(),
    );
  });

  it('reports broker and database on GET /health: 200 while consuming, 503 naming the broker otherwise', async () => {
    const c = startConsumer();
    const app = createApp({ db, broker: c, logger: silentLogger() });
    await waitFor(async () => (await request(app.callback()).get('/health')).status === 200, { description: 'health 200' });
    const up = await request(app.callback()).get('/health').expect(200);
    assert.equal(up.body.checks.broker.status, 'up');
    assert.equal(up.body.checks.database.status, 'up');
    await c.stop();
    const down = await request(app.callback()).get('/health').expect(503);
    assert.equal(down.body.checks.broker.status, 'down');
    assert.equal(down.body.checks.database.status, 'up');
  });

  it('counts and logs every message, reports the queue depths, and serves them on GET /metrics', async () => {
    const logs = captureLogger('billing-app');
    const httpMetrics = createHttpMetrics({ service: 'billing-app' });
    const store = new GatedStore(orders);
    const c = new BillingConsumer({
      amqp: { ...rabbit.connectionConfig(), queue },
      prefetch: 2,
      batchSize: 1,
      flushIntervalMs: 5,
      orders: store,
      logger: logs.logger,
      registry: httpMetrics.registry,
    });
    consumer = c;
    const app = createApp({ db, broker: c, logger: logs.logger, metrics: httpMetrics }).callback();
    const scrape = async (): Promise<string> => {
      const res = await request(app).get('/metrics').expect(200);
      assert.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/);
      return res.text;
    };
    const value = async (name: string): Promise<number> => sample(await scrape(), name, { service: 'billing-app' });

    assert.ok(Number.isNaN(await value('billing_queue_depth')), 'NaN before the consumer is connected');
    await broker.publish(queue, order(1), { messageId: 'r-1', headers: { [MESSAGE_REQUEST_ID_HEADER]: 'req-1' } });
    for (let i = 1; i <= 7; i++) await broker.publish(queue, order(100 + i), { messageId: `f-${i}` });
    await broker.publish(queue, order(1), { messageId: 'r-1', headers: { [MESSAGE_REQUEST_ID_HEADER]: 'req-1-again' } });
    await broker.publish(queue, '{"user_id": "secret-user"', { messageId: 'p-1', headers: { [MESSAGE_REQUEST_ID_HEADER]: 'req-p' } });
    c.start();
    // The first delivery waits at the gate: two in hand (prefetch 2), eight ready.
    await waitFor(async () => (await value('billing_queue_depth')) === 8, { description: 'queue depth 8' });
    assert.equal(await value('billing_messages_consumed_total'), 2);
    assert.equal(await value('billing_orders_inserted_total'), 0);

    store.open();
    await waitFor(async () => (await value('billing_messages_dead_lettered_total')) === 1, { description: 'the poison message settled' });
    const text = await scrape();
    const v = (name: string) => sample(text, name, { service: 'billing-app' });
    assert.deepEqual(
      {
        consumed: v('billing_messages_consumed_total'),
        inserted: v('billing_orders_inserted_total'),
        duplicate: v('billing_orders_duplicate_total'),
        deadLettered: v('billing_messages_dead_lettered_total'),
        batches: v('billing_batches_total'),
        batchTimings: v('billing_batch_duration_seconds_count'),
        queueDepth: v('billing_queue_depth'),
        deadLetterQueueDepth: v('billing_dead_letter_queue_depth'),
      },
      { consumed: 10, inserted: 8, duplicate: 1, deadLettered: 1, batches: 10, batchTimings: 10, queueDepth: 0, deadLetterQueueDepth: 1 },
    );
    assert.match(text, /# TYPE billing_batch_duration_seconds histogram/);
    assert.match(text, /# TYPE http_requests_total counter/);

    const lines = logs.lines().filter((l) => l.msg === 'message');
    assert.equal(lines.length, 10, 'one line per message');
    const line = (requestId: string) => lines.find((l) => l.requestId === requestId);
    assert.deepEqual(
      ['req-1', 'req-1-again', 'req-p'].map((id) => [line(id)?.messageId, line(id)?.outcome, line(id)?.level]),
      [
        ['r-1', 'inserted', 30],
        ['r-1', 'duplicate', 30],
        ['p-1', 'dead_lettered', 40],
      ],
    );
    assert.match(String(line('req-p')?.reason), /not valid JSON/);
    for (const l of lines) assert.equal(typeof l.durationMs, 'number', JSON.stringify(l));
    assert.ok(Number(line('req-1')?.durationMs) > 0);
    assert.equal(lines.filter((l) => l.requestId === undefined).length, 7, 'no request id invented for messages without one');
    const everything = JSON.stringify(logs.lines());
    assert.ok(!everything.includes('secret-user') && !everything.includes('107.50'), 'an order body reached the logs');

    await c.stop();
    assert.ok(Number.isNaN(await value('billing_queue_depth')), 'NaN once disconnected');
    assert.ok(Number.isNaN(await value('billing_dead_letter_queue_depth')));
    await broker.drain(deadLetterQueueOf(queue));
  });

  it('keeps reporting metrics when the dead-letter queue is deleted behind its back', async () => {
    const httpMetrics = createHttpMetrics({ service: 'billing-app' });
    const c = new BillingConsumer({
      amqp: { ...rabbit.connectionConfig(), queue },
      prefetch: 10,
      batchSize: 5,
      flushIntervalMs: 20,
      orders,
      logger: silentLogger(),
      registry: httpMetrics.registry,
    });
    consumer = c;
    c.start();
    await waitFor(() => c.health().then(() => true), { description: 'consuming' });
    const value = async (name: string) => sample(await httpMetrics.registry.metrics(), name, { service: 'billing-app' });
    assert.equal(await value('billing_dead_letter_queue_depth'), 0);
    await broker.channel.deleteQueue(deadLetterQueueOf(queue));
    assert.ok(Number.isNaN(await value('billing_dead_letter_queue_depth')), 'a missing queue is NaN');
    assert.equal(await value('billing_queue_depth'), 0, 'the other queue is still reported');
    // The failed passive check did not touch the consuming channel.
    await broker.publish(queue, order(9), { messageId: 'after-404' });
    await waitFor(async () => (await db('orders').where({ message_id: 'after-404' }).first()) !== undefined, { description: 'the order' });
    await c.health();
  });

  it('keeps retrying, without crashing, while the broker is unreachable', async () => {
    const httpMetrics = createHttpMetrics({ service: 'billing-app' });
    const lonely = new BillingConsumer({
      registry: httpMetrics.registry,
      amqp: { ...rabbit.connectionConfig(), port: 9, queue },
      prefetch: 10,
      batchSize: 5,
      flushIntervalMs: 20,
      orders,
      logger: silentLogger(),
      reconnectBackoff: { initialMs: 10, maxMs: 50 },
    });
    lonely.start();
    try {
      await waitFor(async () => {
        try {
          await lonely.health();
          return false;
        } catch (err) {
          return /ECONNREFUSED/.test(String(err));
        }
      }, { description: 'health() to report the refused connection' });
      const text = await httpMetrics.registry.metrics();
      assert.ok(Number.isNaN(sample(text, 'billing_queue_depth')), 'queue depth is NaN, and scraping does not fail');
    } finally {
      await lonely.stop();
    }
  });
});

describe('billing-app orders repository', () => {
  let db: Knex;
  let truncate: (table: string) => Promise<void>;
  before(async () => {
    ({ db, truncate } = await freshDatabase(billingSchema));
  });
  after(async () => db?.destroy());

  it('inserts a batch in one statement and skips message ids already stored, also within the batch', async () => {
    const repo = new OrdersRepository(db);
    const o = (messageId: string) => ({ messageId, userId: 1, numberOfItems: 2, totalAmount: '3.10' });
    assert.deepEqual((await repo.insertMany([o('a'), o('b')])).sort(), ['a', 'b']);
    assert.deepEqual(await repo.insertMany([o('b'), o('c'), o('c')]), ['c'], 'the message ids of the new rows only, each once');
    assert.deepEqual(await repo.insertMany([o('a')]), []);
    assert.deepEqual((await listOrders(db)).map((r) => r.messageId), ['a', 'b', 'c']);
    assert.equal((await listOrders(db))[0]?.totalAmount, '3.10');
  });

  it('rejects the whole batch when one row is refused (one transaction)', async () => {
    const repo = new OrdersRepository(db);
    await truncate('orders');
    const ok = { messageId: 'x1', userId: 1, numberOfItems: 1, totalAmount: '1' };
    const tooBig = { messageId: 'x2', userId: 1, numberOfItems: 1, totalAmount: '100000000000' };
    await assert.rejects(repo.insertMany([ok, tooBig]), (err: { code?: string }) => err.code === '22003');
    assert.equal(await countOrders(db), 0);
  });
});
