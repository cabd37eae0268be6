/*
 * Scaling out on RabbitMQ (README, "Scaling out: RabbitMQ"), on the shared harness broker and
 * PostgreSQL with real gateway and billing processes: RABBITMQ_HOST as a list, billing_queue as
 * a quorum queue (delivery limit, broker dead-lettering), competing workers, and a queue of the
 * wrong type refused at start.
 */
import assert from 'node:assert/strict';
import * as amqp from 'amqplib';
import type { Knex } from '@crud-master/common';
import { QueueMismatchError, connectOptions, declareBillingTopology, deadLetterQueueOf, ordersExchangeOf, type QueueSettings } from '@crud-master/billing-contract';
import { freePort, sharedPostgres, sharedRabbit, waitFor } from '../harness/fixtures';
import type { ServiceProcess } from '../harness/processes';
import { sample, scrape } from '../support/prometheus';
import {
  amqpClient,
  billingUrl,
  confirmedIds,
  countOrders,
  metric,
  newStackConfig,
  ordersDb,
  postOrders,
  rowsByMessageId,
  startBilling,
  startGateway,
  type StackConfig,
} from './billing-stack';

const QUORUM = { RABBITMQ_QUEUE_TYPE: 'quorum', RABBITMQ_DELIVERY_LIMIT: '5' };

/** The stack's config with other variables (both services) and, for a second worker, its own /health port. */
const withEnv = (config: StackConfig, env: Record<string, string>, billingPort = config.billingPort): StackConfig => ({
  ...config,
  billingPort,
  extraEnv: { ...config.extraEnv, ...env },
});

describe('billing: scaling out on RabbitMQ (node list, quorum queue, competing workers)', function () {
  this.timeout(120_000);
  const started: ServiceProcess[] = [];
  const dbs: Knex[] = [];
  const track = <T extends ServiceProcess>(proc: T): T => (started.push(proc), proc);
  const database = (config: StackConfig): Knex => {
    const db = ordersDb(config);
    dbs.push(db);
    return db;
  };

  afterEach(async () => {
    await Promise.all(started.splice(0).map((p) => (p.running ? p.stop() : undefined)));
    await Promise.all(dbs.splice(0).map((db) => db.destroy()));
  });

  it('a gateway whose RABBITMQ_HOST starts with a dead node publishes through the next one: 200s, and the orders arrive', async () => {
    const base = await newStackConfig(await sharedRabbit(), await sharedPostgres());
    const dead = await freePort(); // reserved and closed: nothing listens there
    const config = withEnv(base, { RABBITMQ_HOST: `127.0.0.1:${dead},${base.rabbit.host}:${base.rabbit.port}` });
    track(await startBilling(config));
    track(await startGateway(config));
    const responses = await postOrders(config, 50, 10);
    assert.deepEqual(responses.map((r) => r.status), new Array(50).fill(200), JSON.stringify(responses.find((r) => r.status !== 200)?.body));
    const db = database(config);
    await waitFor(async () => (await countOrders(db)) === 50, { timeoutMs: 20_000, description: '50 rows' });
    const rows = await rowsByMessageId(db);
    for (const id of confirmedIds(responses)) assert.equal(rows.get(id), 1, `order ${id} stored once`);
  });

  it('quorum: a message returned past RABBITMQ_DELIVERY_LIMIT is dead-lettered by the broker to billing_queue.dead', async () => {
    const config = await newStackConfig(await sharedRabbit(), await sharedPostgres(), { declare: false });
    const limit = 2;
    const worker = await amqp.connect(connectOptions(config.broker.billing));
    worker.on('error', () => undefined);
    try {
      // As billing declares it, with the worker's own RabbitMQ user (its permission patterns).
      const channel = await worker.createConfirmChannel();
      await declareBillingTopology(channel, config.queue, { type: 'quorum', deliveryLimit: limit });
      const gateway = await amqp.connect(connectOptions(config.broker.gateway));
      const publish = await gateway.createConfirmChannel();
      await new Promise<void>((resolve, reject) =>
        publish.publish(ordersExchangeOf(config.queue), config.queue, Buffer.from('{"user_id":1,"number_of_items":1,"total_amount":1}'), { persistent: true, mandatory: true, messageId: 'poison-1' }, (err) =>
          err ? reject(err) : resolve(),
        ),
      );
      await gateway.close();
      // A worker that never gets through this message: every delivery goes back (nack, requeue).
      let deliveries = 0;
      await channel.consume(config.queue, (message) => {
        if (!message) return;
        deliveries++;
        channel.nack(message, false, true);
      });
      const dead = deadLetterQueueOf(config.queue);
      await waitFor(async () => (await channel.checkQueue(dead)).messageCount === 1, { timeoutMs: 20_000, description: 'the message in the dead-letter queue' });
      assert.equal((await channel.checkQueue(config.queue)).messageCount, 0, 'nothing left in billing_queue');
      const letter = await channel.get(dead, { noAck: true });
      assert.ok(letter, 'a dead letter');
      assert.equal(letter.properties.messageId, 'poison-1');
      const death = (letter.properties.headers?.['x-death'] as Array<{ reason?: string; queue?: string }> | undefined)?.[0];
      assert.equal(death?.reason, 'delivery_limit', JSON.stringify(letter.properties.headers));
      assert.equal(death?.queue, config.queue);
      assert.ok(deliveries > limit && deliveries <= limit + 1, `delivered ${deliveries} times for a limit of ${limit}`);
      metric('quorum delivery limit', { limit, deliveries });
    } finally {
      await worker.close().catch(() => undefined);
    }
  });

  it('quorum: two workers share a backlog, one is killed midway, and every order is stored exactly once', async () => {
    const base = await newStackConfig(await sharedRabbit(), await sharedPostgres(), { declare: false });
    const config = withEnv(base, { ...QUORUM, BILLING_PREFETCH: '20' });
    const second = withEnv(config, {}, await freePort());
    // Both declare the quorum topology (the same arguments: no conflict), then the gateway checks it.
    const [a, b] = await Promise.all([startBilling(config), startBilling(second)]);
    track(a);
    const killed = a;
    track(b);
    track(await startGateway(config));
    const db = database(config);
    const posting = postOrders(config, 800, 50);
    // Both take deliveries of the same backlog before one of them dies.
    const inserted = async (c: StackConfig): Promise<number> => sample(await scrape(billingUrl(c)), 'billing_orders_inserted_total');
    await waitFor(async () => (await inserted(config)) > 0 && (await inserted(second)) > 0, { timeoutMs: 30_000, intervalMs: 20, description: 'both workers inserting' });
    const shareA = await inserted(config);
    await killed.kill();
    const responses = await posting;
    const confirmed = confirmedIds(responses);
    assert.equal(confirmed.length, 800, JSON.stringify(responses.find((r) => r.status !== 200)?.body));
    await waitFor(async () => (await countOrders(db)) >= 800, { timeoutMs: 60_000, description: '800 rows' });
    const rows = await rowsByMessageId(db);
    assert.equal(rows.size, 800, 'one row per distinct message id');
    assert.equal(await countOrders(db), 800, 'rows = distinct message ids');
    for (const id of confirmed) assert.equal(rows.get(id), 1, `order ${id} stored once`);
    const shareB = await inserted(second);
    assert.ok(shareA > 0 && shareB > 0, `both took a share: ${shareA} and ${shareB}`);
    metric('competing workers', { worker_a_before_kill: shareA, worker_b: shareB, rows: rows.size });
  });

  it('quorum: billing still dead-letters an invalid body itself, with the reason', async () => {
    const base = await newStackConfig(await sharedRabbit(), await sharedPostgres(), { declare: false });
    const config = withEnv(base, QUORUM);
    track(await startBilling(config));
    const mq = await amqpClient(config.rabbit);
    try {
      await new Promise<void>((resolve, reject) =>
        mq.channel.publish(ordersExchangeOf(config.queue), config.queue, Buffer.from('{"user_id":"x"}'), { persistent: true, messageId: 'invalid-1' }, (err) => (err ? reject(err) : resolve())),
      );
      const dead = deadLetterQueueOf(config.queue);
      const letter = await waitFor(async () => (await mq.channel.get(dead, { noAck: true })) || undefined, { timeoutMs: 20_000, description: 'the dead letter' });
      assert.equal(letter.properties.messageId, 'invalid-1');
      assert.match(String(letter.properties.headers?.['x-billing-dead-letter-reason']), /invalid order/);
    } finally {
      await mq.close();
    }
  });

  it('a billing_queue that exists as a classic queue stops billing with RABBITMQ_QUEUE_TYPE=quorum: exit 1, what to do', async () => {
    // newStackConfig declares the classic topology, as an older release (or the default) did.
    const base = await newStackConfig(await sharedRabbit(), await sharedPostgres());
    const billing = track(await startBilling(withEnv(base, QUORUM), false));
    const exit = await billing.waitExit(60_000);
    assert.equal(exit.code, 1, billing.logs().slice(-2000));
    const log = billing.logs();
    // billing_queue.dead is declared first (billing_queue names it): the first refusal names it.
    assert.match(log, new RegExp(`RabbitMQ queue \\\\?"${base.queue}(\\.dead)?\\\\?" already exists with another type`));
    assert.match(log, /RABBITMQ_QUEUE_TYPE=quorum/);
    assert.match(log, /Scaling out: RabbitMQ/);
    assert.match(log, /inequivalent arg 'x-queue-type'/);
    // The queue is untouched: still there, still classic (a classic declaration is accepted).
    const mq = await amqpClient(base.rabbit);
    try {
      await mq.channel.assertQueue(base.queue, { durable: true });
    } finally {
      await mq.close();
    }
  });

  it('declaring over a queue of the other type or another delivery limit is a QueueMismatchError, either way round', async () => {
    const config = await newStackConfig(await sharedRabbit(), await sharedPostgres(), { declare: false });
    const declareAs = async (settings: QueueSettings): Promise<void> => {
      const connection = await amqp.connect(connectOptions(config.broker.billing));
      connection.on('error', () => undefined);
      try {
        const channel = await connection.createChannel();
        channel.on('error', () => undefined);
        await declareBillingTopology(channel, config.queue, settings);
      } finally {
        await connection.close().catch(() => undefined);
      }
    };
    await declareAs({ type: 'quorum', deliveryLimit: 5 });
    await declareAs({ type: 'quorum', deliveryLimit: 5 }); // the same again: accepted
    const refused = async (settings: QueueSettings, kind: RegExp): Promise<void> => {
      await assert.rejects(declareAs(settings), (err: unknown) => err instanceof QueueMismatchError && kind.test(err.message) && /Scaling out: RabbitMQ/.test(err.message));
    };
    await refused({ type: 'quorum', deliveryLimit: 7 }, /already exists with other arguments: RABBITMQ_QUEUE_TYPE=quorum/);
    await refused({ type: 'classic', deliveryLimit: 5 }, /already exists with another type: RABBITMQ_QUEUE_TYPE=classic/);
  });
});
