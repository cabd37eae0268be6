import assert from 'node:assert/strict';
import type { Knex } from '@crud-master/common';
import { sharedPostgres, sharedRabbit, waitFor } from '../harness/fixtures';
import { sample, scrape } from '../support/prometheus';
import type { ServiceProcess } from '../harness/processes';
import {
  amqpClient,
  billingUrl,
  checkStored,
  confirmedIds,
  countOrders,
  metric,
  newStackConfig,
  ordersDb,
  postOrder,
  postOrders,
  rowsByMessageId,
  sampleOrder,
  startBilling,
  startGateway,
  type StackConfig,
} from './billing-stack';

const DEAD_LETTER_REASON_HEADER = 'x-billing-dead-letter-reason';

describe('billing pipeline end to end (gateway and billing-app processes)', function () {
  this.timeout(120_000);
  let config: StackConfig;
  let gateway: ServiceProcess | undefined;
  let billing: ServiceProcess | undefined;
  let db: Knex;
  let mq: Awaited<ReturnType<typeof amqpClient>>;

  before(async () => {
    config = await newStackConfig(await sharedRabbit(), await sharedPostgres());
    [gateway, billing] = await Promise.all([startGateway(config), startBilling(config)]);
    db = ordersDb(config);
    mq = await amqpClient(config.rabbit);
  });
  beforeEach(async () => {
    // Start each test from an empty table and an empty queue.
    await waitFor(async () => (await mq.channel.checkQueue(config.queue)).messageCount === 0, { description: 'an empty queue' });
    await db('orders').truncate();
  });
  after(async () => {
    await Promise.all([gateway?.stop(), billing?.stop()]);
    await mq?.close();
    await db?.destroy();
  });

  it('stores an order posted to the gateway once, under the message id the gateway answered', async () => {
    const res = await postOrder(config, { user_id: '20', number_of_items: '99', total_amount: '250' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const row = await waitFor(() => db('orders').where({ message_id: res.body.message_id }).first(), { description: 'the row' });
    assert.deepEqual(
      { user_id: row.user_id, number_of_items: row.number_of_items, total_amount: row.total_amount },
      { user_id: 20, number_of_items: 99, total_amount: '250.00' },
    );
    assert.equal(await countOrders(db), 1);
  });

  it('sends poison messages to billing_queue.dead with the reason and processes the orders after them', async () => {
    const dead = `${config.queue}.dead`;
    await mq.channel.purgeQueue(dead).catch(() => undefined);
    const poison: Array<[string, string]> = [
      ['p-json', '{"user_id": 3, "number_of_items"'],
      ['p-type', '{"user_id":"three","number_of_items":"5","total_amount":"180"}'],
      ['p-missing', '{"user_id":"3"}'],
    ];
    for (const [id, body] of poison) {
      await new Promise<void>((resolve, reject) =>
        mq.channel.sendToQueue(config.queue, Buffer.from(body), { persistent: true, messageId: id }, (err) => (err ? reject(err) : resolve())),
      );
    }
    const responses = await postOrders(config, 30, 5);
    const confirmed = confirmedIds(responses);
    assert.equal(confirmed.length, 30);
    await waitFor(async () => (await countOrders(db)) === 30, { timeoutMs: 20_000, description: '30 rows' });
    const letters = await waitFor(async () => {
      const got = [];
      for (;;) {
        const m = await mq.channel.get(dead, { noAck: true });
        if (m === false) break;
        got.push(m);
      }
      return got.length > 0 ? got : undefined;
    });
    assert.deepEqual(letters.map((m) => m.properties.messageId).sort(), ['p-json', 'p-missing', 'p-type']);
    for (const m of letters) assert.equal(typeof m.properties.headers?.[DEAD_LETTER_REASON_HEADER], 'string');
    assert.equal(checkStored(await rowsByMessageId(db), confirmed), undefined);
  });

  async function streamWithFault(fault: (billing: ServiceProcess) => Promise<void>): Promise<void> {
    const total = 800;
    const posting = postOrders(config, total, 20);
    // Strike while orders are flowing in and being written.
    await waitFor(async () => (await countOrders(db)) >= 50, { timeoutMs: 30_000, description: 'the first 50 rows' });
    assert.ok(billing);
    await fault(billing);
    const stored = await countOrders(db);
    const responses = await posting;
    const confirmed = confirmedIds(responses);
    assert.equal(confirmed.length, total, 'the gateway confirmed every order, billing down or not');
    assert.ok(stored < total, `the fault came mid-stream (${stored} of ${total} stored)`);
    billing = await startBilling(config);
    await waitFor(async () => (await countOrders(db)) >= total, { timeoutMs: 60_000, description: `${total} rows` });
    // Every message, redeliveries included, has been handed to billing and settled.
    await waitFor(async () => (await mq.channel.checkQueue(config.queue)).messageCount === 0, { description: 'queue drained' });
    assert.equal(checkStored(await rowsByMessageId(db), confirmed), undefined);
    const duplicates = /^billing_orders_duplicate_total(?:\{[^}]*\})? (\d+)/m.exec(await (await fetch(`${billingUrl(config)}/metrics`)).text());
    metric('fault mid-stream', {
      storedBeforeFault: stored,
      total,
      redeliveredDuplicatesSkipped: duplicates?.[1] ?? '?',
    });
  }

  it('billing killed with SIGKILL mid-stream, restarted: every confirmed order is stored exactly once', async () => {
    await streamWithFault(async (b) => {
      const exit = await b.kill();
      assert.equal(exit.signal, 'SIGKILL');
    });
  });

  it('billing stopped with SIGTERM (pm2 stop) mid-stream exits 0; after a restart every order is stored exactly once', async () => {
    await streamWithFault(async (b) => {
      const exit = await b.stop('SIGTERM', 20_000);
      assert.deepEqual(exit, { code: 0, signal: null }, b.logs().slice(-3000));
    });
  });

  it('stores an order retried with the same Idempotency-Key once, and orders with other keys apart', async () => {
    const key = `retry-${Date.now()}`;
    const order = sampleOrder(7);
    const duplicates = async (): Promise<number> => sample(await scrape(billingUrl(config)), 'billing_orders_duplicate_total');
    const duplicatesBefore = await duplicates();
    const first = await postOrder(config, order, { 'Idempotency-Key': key });
    const again = await postOrder(config, order, { 'Idempotency-Key': key });
    const other = await postOrder(config, order, { 'Idempotency-Key': `${key}-other` });
    assert.deepEqual([first.status, again.status, other.status], [200, 200, 200]);
    assert.equal(first.body.message_id, key);
    assert.equal(again.body.message_id, key);
    // Both copies reach the worker (the queue does not dedupe): one is stored, one counted as a
    // duplicate; the other key is another order.
    await waitFor(async () => (await duplicates()) === duplicatesBefore + 1, { description: 'the retry counted as a duplicate' });
    await waitFor(async () => (await countOrders(db)) === 2, { description: 'two rows' });
    assert.deepEqual([...(await rowsByMessageId(db)).entries()].sort(), [[key, 1], [`${key}-other`, 1]]);
    const bad = await postOrder(config, order, { 'Idempotency-Key': 'not a key' });
    assert.equal(bad.status, 400);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(await countOrders(db), 2, 'a malformed key queues nothing');
  });

  it('keeps validation failures off the queue', async () => {
    const bad = [
      { user_id: '0', number_of_items: '1', total_amount: '1' },
      { ...sampleOrder(1), surprise: true },
      { user_id: '1', number_of_items: '1', total_amount: '1.234' },
    ];
    for (const body of bad) {
      const res = await postOrder(config, body);
      assert.equal(res.status, 400);
      assert.equal(res.body.error?.code, 'validation_error');
    }
    const ok = await postOrder(config, sampleOrder(2));
    assert.equal(ok.status, 200);
    await waitFor(async () => (await countOrders(db)) === 1, { description: 'the one valid order' });
    assert.deepEqual([...(await rowsByMessageId(db)).keys()], [ok.body.message_id]);
  });
});
