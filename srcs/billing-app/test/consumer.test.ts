import assert from 'node:assert/strict';
import request from 'supertest';
import type { Knex } from '@crud-master/common';
import { createApp } from '../src/app';
import { migrations } from '../src/db/migrations';
import { BillingConsumer } from '../src/messaging/consumer';
import { DEAD_LETTER_REASON_HEADER, deadLetterQueueOf } from '@crud-master/billing-contract';
import { OrdersRepository } from '../src/orders/repository';
import { sharedRabbit, uniqueName, waitFor, type RabbitInstance } from '../../../test/harness/fixtures';
import { freshDatabase } from '../../../test/support/databases';
import { silentLogger } from '../../../test/support/silent-logger';
import { BrokerClient } from './support/broker';

const order = (n: number) => ({ user_id: String(n), number_of_items: '1', total_amount: `${n}.50` });

describe('billing-app consumer (real broker and database)', () => {
  let rabbit: RabbitInstance;
  let broker: BrokerClient;
  let db: Knex;
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
    ({ db } = await freshDatabase(migrations));
    orders = new OrdersRepository(db);
  });
  beforeEach(async () => {
    queue = uniqueName('billing');
    await db('orders').truncate();
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
    await waitFor(async () => (await orders.count()) === 150, { timeoutMs: 20_000, description: '150 rows' });
    await consumer?.stop();
    assert.equal(await broker.ready(queue), 0, 'nothing left (or requeued) in the queue');
    const rows = await orders.list();
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
    assert.equal(await orders.count(), 2);
  });

  it('dead-letters poison messages with the reason and goes on with the orders after them', async () => {
    startConsumer();
    await broker.publish(queue, order(1), { messageId: 'ok-1' });
    await broker.publish(queue, 'this is not json', { messageId: 'poison-1' });
    await broker.publish(queue, { user_id: 'three', number_of_items: '5', total_amount: '180' }, { messageId: 'poison-2' });
    await broker.publish(queue, { user_id: '3', number_of_items: '5' }, { messageId: 'poison-3' });
    await broker.publish(queue, order(2), { messageId: 'ok-2' });
    await waitFor(async () => (await orders.count()) === 2 && (await broker.ready(deadLetterQueueOf(queue))) === 3, {
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
    await waitFor(async () => (await orders.count()) === 1, { description: 'one row' });
    const [row] = await orders.list();
    assert.match(row?.messageId ?? '', /^sha256:[0-9a-f]{64}$/);
  });

  it('on stop, writes and acknowledges what it holds: rows plus what is left in the queue is exactly what was sent', async () => {
    const total = 400;
    for (let i = 1; i <= total; i++) await broker.publish(queue, order(i), { messageId: `s-${i}` });
    const c = startConsumer({ prefetch: 50 });
    await waitFor(async () => (await orders.count()) > 0, { description: 'the first rows' });
    await c.stop();
    const stored = await orders.count();
    const left = await broker.ready(queue);
    // An order written but not acknowledged would be counted twice (a row and back in the queue).
    assert.equal(stored + left, total, `${stored} rows + ${left} left in the queue`);
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

  it('keeps retrying, without crashing, while the broker is unreachable', async () => {
    const lonely = new BillingConsumer({
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
          await lonely.check();
          return false;
        } catch (err) {
          return /ECONNREFUSED/.test(String(err));
        }
      }, { description: 'check() to report the refused connection' });
    } finally {
      await lonely.stop();
    }
  });
});

describe('billing-app orders repository', () => {
  let db: Knex;
  before(async () => {
    ({ db } = await freshDatabase(migrations));
  });
  after(async () => db?.destroy());

  it('inserts a batch in one statement and skips message ids already stored, also within the batch', async () => {
    const repo = new OrdersRepository(db);
    const o = (messageId: string) => ({ messageId, userId: 1, numberOfItems: 2, totalAmount: '3.10' });
    assert.equal(await repo.insertMany([o('a'), o('b')]), 2);
    assert.equal(await repo.insertMany([o('b'), o('c'), o('c')]), 1);
    assert.deepEqual((await repo.list()).map((r) => r.messageId), ['a', 'b', 'c']);
    assert.equal((await repo.list())[0]?.totalAmount, '3.10');
  });

  it('rejects the whole batch when one row is refused (one transaction)', async () => {
    const repo = new OrdersRepository(db);
    await db('orders').truncate();
    const ok = { messageId: 'x1', userId: 1, numberOfItems: 1, totalAmount: '1' };
    const tooBig = { messageId: 'x2', userId: 1, numberOfItems: 1, totalAmount: '100000000000' };
    await assert.rejects(repo.insertMany([ok, tooBig]), (err: { code?: string }) => err.code === '22003');
    assert.equal(await repo.count(), 0);
  });
});
