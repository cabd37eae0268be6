import assert from 'node:assert/strict';
import type { Knex } from '@crud-master/common';
import { sharedPostgres, sharedRabbit, waitFor } from '../harness/fixtures';
import type { ServiceProcess } from '../harness/processes';
import { jsonLines, sample, scrape } from '../support/prometheus';
import {
  amqpClient,
  billingUrl,
  countOrders,
  newStackConfig,
  ordersDb,
  postOrder,
  startBilling,
  startGateway,
  type StackConfig,
} from './billing-stack';

/*
 * An Idempotency-Key reused with a different order (issue 11): never answered 200 and silently
 * dropped. The gateway that queued the first order refuses the second with 422; an order it
 * cannot know about (sent to another gateway, or after a restart: here published straight to the
 * queue under the used message id) reaches billing, which keeps the first order and records the
 * other one in order_conflicts, counts it and logs it.
 */
describe('billing: an Idempotency-Key reused with another order (processes)', function () {
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
  after(async () => {
    await Promise.all([gateway?.stop(), billing?.stop()]);
    await mq?.close();
    await db?.destroy();
  });

  const conflicts = async (): Promise<number> => sample(await scrape(billingUrl(config)), 'billing_order_conflicts_total');

  it('answers 422 at the gateway and queues nothing when the key was used for another order; the same order again is a 200', async () => {
    const key = `conflict-${Date.now()}`;
    const first = await postOrder(config, { user_id: '3', number_of_items: '5', total_amount: '180' }, { 'Idempotency-Key': key });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    // The same order written differently is the same order: a retry.
    const retry = await postOrder(config, { user_id: 3, number_of_items: 5, total_amount: 180.0 }, { 'Idempotency-Key': key });
    assert.equal(retry.status, 200, JSON.stringify(retry.body));
    const other = await postOrder(config, { user_id: '3', number_of_items: '5', total_amount: '181' }, { 'Idempotency-Key': key });
    assert.equal(other.status, 422);
    assert.equal(other.body.error?.code, 'idempotency_key_reused');
    await waitFor(async () => (await countOrders(db)) === 1, { description: 'the first order stored' });
    const [row] = (await db('orders').select('message_id', 'total_amount')) as Array<{ message_id: string; total_amount: string }>;
    assert.deepEqual(row, { message_id: key, total_amount: '180.00' });
    assert.equal(await conflicts(), 0, 'the gateway refused it: nothing reached billing');
  });

  it('records a conflicting order that reaches billing under a stored message id, once, and keeps the stored order', async () => {
    const key = `conflict-late-${Date.now()}`;
    const first = await postOrder(config, { user_id: '7', number_of_items: '1', total_amount: '10' }, { 'Idempotency-Key': key });
    assert.equal(first.status, 200);
    await waitFor(async () => (await db('orders').where({ message_id: key })).length === 1, { description: 'the first order stored' });
    const before = await conflicts();
    // What another gateway (or this one after a restart) would publish for the same key.
    for (let i = 0; i < 2; i++) {
      await new Promise<void>((resolve, reject) =>
        mq.channel.sendToQueue(config.queue, Buffer.from('{"user_id":"7","number_of_items":"2","total_amount":"99.5"}'), { persistent: true, messageId: key, headers: { 'x-request-id': `late-${i}` } }, (err) =>
          err ? reject(err) : resolve(),
        ),
      );
    }
    await waitFor(async () => (await conflicts()) === before + 2, { description: 'both copies counted as conflicts' });
    const stored = (await db('orders').where({ message_id: key }).select('user_id', 'number_of_items', 'total_amount')) as unknown[];
    assert.deepEqual(stored, [{ user_id: 7, number_of_items: 1, total_amount: '10.00' }], 'the stored order is unchanged');
    const recorded = (await db('order_conflicts').where({ message_id: key }).select('user_id', 'number_of_items', 'total_amount', 'request_id')) as unknown[];
    assert.deepEqual(recorded, [{ user_id: 7, number_of_items: 2, total_amount: '99.50', request_id: 'late-0' }], 'recorded once');
    // Log lines are buffered (up to 100 ms) before they are written: wait for them.
    const conflictLines = () => jsonLines(billing?.logs() ?? '').filter((l) => l.msg === 'message' && l.messageId === key && l.outcome === 'conflict');
    await waitFor(() => conflictLines().length >= 2, { description: 'the two conflict warnings in the log' });
    const lines = conflictLines();
    assert.equal(lines.length, 2, 'one warning per copy');
    assert.equal(lines[0]?.level, 40, 'a warning');
  });
});
