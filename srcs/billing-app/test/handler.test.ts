import assert from 'node:assert/strict';
import type { Message } from 'amqplib';
import { decodeMessage, handleBatch, isPermanentDataError, messageIdOf, type BatchResult } from '../src/messaging/handler';
import { DEAD_LETTER_QUEUE_HEADER, DEAD_LETTER_REASON_HEADER } from '@crud-master/billing-contract';
import type { OrderRecord, OrderStore } from '../src/orders/order';
import { silentLogger } from '../../../test/support/silent-logger';
import { FakeChannel, delivery } from './support/fake-channel';

/** An in-memory OrderStore with the unique-message-id rule of the real table. */
class MemoryStore implements OrderStore {
  readonly rows = new Map<string, OrderRecord>();
  calls: OrderRecord[][] = [];
  failWith: unknown;
  /** Orders for which the "database" refuses the data (SQLSTATE 22003, numeric overflow). */
  refuse = new Set<string>();

  async insertMany(orders: readonly OrderRecord[]): Promise<string[]> {
    this.calls.push([...orders]);
    if (this.failWith !== undefined) throw this.failWith;
    if (orders.some((o) => this.refuse.has(o.messageId))) {
      throw Object.assign(new Error('numeric field overflow'), { code: '22003' });
    }
    const inserted: string[] = [];
    for (const order of orders) {
      if (this.rows.has(order.messageId)) continue;
      this.rows.set(order.messageId, order);
      inserted.push(order.messageId);
    }
    return inserted;
  }

  /** The real table's comparison: same message id, another user, count or amount. */
  async recordConflicts(orders: readonly OrderRecord[]): Promise<number[]> {
    const positions: number[] = [];
    orders.forEach((o, i) => {
      const row = this.rows.get(o.messageId);
      if (row !== undefined && (row.userId !== o.userId || row.numberOfItems !== o.numberOfItems || Number(row.totalAmount) !== Number(o.totalAmount))) {
        positions.push(i);
        this.conflicts.push(o);
      }
    });
    return positions;
  }

  readonly conflicts: OrderRecord[] = [];
}

const order = (userId: number | string = '3') => ({ user_id: userId, number_of_items: '5', total_amount: '180' });

/** The counts of a batch result, without the per-message outcomes. */
const counts = ({ inserted, duplicates, deadLettered }: BatchResult) => ({ inserted, duplicates, deadLettered });
/** messageId:outcome of every message, in batch order. */
const outcomes = (result: BatchResult) => result.settled.map((s) => `${s.messageId}:${s.outcome}`);

describe('billing-app message handler (fake channel)', () => {
  let channel: FakeChannel;
  let store: MemoryStore;
  const run = (batch: Message[]) =>
    handleBatch(batch, { channel, orders: store, queue: 'billing_queue', logger: silentLogger() });

  beforeEach(() => {
    channel = new FakeChannel();
    store = new MemoryStore();
  });

  it('inserts a batch of valid orders in one call, then acks the last delivery with multiple=true', async () => {
    const batch = [delivery(order(1)), delivery(order(2)), delivery({ user_id: 3, number_of_items: 1, total_amount: 19.99 })];
    const result = await run(batch);
    assert.deepEqual(counts(result), { inserted: 3, duplicates: 0, deadLettered: 0 });
    assert.equal(store.calls.length, 1);
    assert.deepEqual(store.calls[0]?.[2], { messageId: batch[2]?.properties.messageId, userId: 3, numberOfItems: 1, totalAmount: '19.99' });
    assert.deepEqual(channel.acks, [{ deliveryTag: batch[2]?.fields.deliveryTag, allUpTo: true }]);
    assert.equal(channel.published.length, 0);
  });

  it('acks only once beforeAck resolves, after the insert; not at all when it throws', async () => {
    let release!: () => void;
    const earlier = new Promise<void>((resolve) => {
      release = resolve;
    });
    const batch = [delivery(order(1)), delivery(order(2))];
    const settled = handleBatch(batch, { channel, orders: store, queue: 'billing_queue', logger: silentLogger(), beforeAck: () => earlier });
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(store.rows.size, 2, 'inserted');
    assert.equal(channel.acks.length, 0, 'not acked while an earlier batch is unacknowledged');
    release();
    await settled;
    assert.deepEqual(channel.acks, [{ deliveryTag: batch[1]?.fields.deliveryTag, allUpTo: true }]);

    const refused = handleBatch([delivery(order(3))], {
      channel,
      orders: store,
      queue: 'billing_queue',
      logger: silentLogger(),
      beforeAck: () => Promise.reject(new Error('session ended')),
    });
    await assert.rejects(refused, /session ended/);
    assert.equal(channel.acks.length, 1, 'no second ack');
  });

  it('stores a redelivered message once and still acks it', async () => {
    const first = delivery(order());
    await run([first]);
    const again = { ...first, fields: { ...first.fields, deliveryTag: first.fields.deliveryTag + 1000, redelivered: true } };
    const result = await run([again]);
    assert.deepEqual(counts(result), { inserted: 0, duplicates: 1, deadLettered: 0 });
    assert.equal(store.rows.size, 1);
    assert.equal(channel.acks.length, 2);
  });

  it('tells a redelivery from another order under a stored message id (a reused Idempotency-Key): a conflict, recorded and acked', async () => {
    const first = delivery(order(), { messageId: 'key-1' });
    await run([first]);
    const redelivery = delivery({ user_id: 3, number_of_items: 5, total_amount: '180.00' }, { messageId: 'key-1' });
    const other = delivery({ user_id: 3, number_of_items: 5, total_amount: '181' }, { messageId: 'key-1' });
    const result = await run([redelivery, other]);
    assert.deepEqual(outcomes(result), ['key-1:duplicate', 'key-1:conflict']);
    assert.deepEqual([result.duplicates, result.conflicts], [1, 1]);
    assert.equal(store.rows.get('key-1')?.totalAmount, '180', 'the stored order is unchanged');
    assert.deepEqual(store.conflicts.map((o) => o.totalAmount), ['181']);
    assert.equal(channel.acks.length, 2);
  });

  it('dead-letters what is not JSON or not an order, with the reason, and still stores the valid ones', async () => {
    const notJson = delivery('{"user_id": 3,');
    const wrongType = delivery({ user_id: 'abc', number_of_items: '5', total_amount: '180' });
    const missing = delivery({ user_id: '3' });
    const valid = delivery(order());
    const batch = [notJson, wrongType, valid, missing];
    const result = await run(batch);

    assert.deepEqual(counts(result), { inserted: 1, duplicates: 0, deadLettered: 3 });
    assert.deepEqual([...store.rows.keys()], [valid.properties.messageId]);
    assert.equal(channel.published.length, 3);
    for (const p of channel.published) {
      assert.equal(p.exchange, 'billing_queue.dead', 'through the dead-letter exchange, not the default one');
      assert.equal(p.routingKey, 'billing_queue.dead');
      assert.equal(p.options.persistent, true);
      assert.equal(p.options.headers[DEAD_LETTER_QUEUE_HEADER], 'billing_queue');
    }
    const byId = new Map(channel.published.map((p) => [p.options.messageId, p]));
    assert.match(byId.get(notJson.properties.messageId)?.options.headers[DEAD_LETTER_REASON_HEADER], /not valid JSON/);
    assert.match(byId.get(wrongType.properties.messageId)?.options.headers[DEAD_LETTER_REASON_HEADER], /user_id: must be a positive integer/);
    assert.match(byId.get(missing.properties.messageId)?.options.headers[DEAD_LETTER_REASON_HEADER], /number_of_items: is required/);
    assert.ok(byId.get(notJson.properties.messageId)?.content.equals(notJson.content), 'the dead letter keeps the original body');
    assert.deepEqual(channel.acks, [{ deliveryTag: missing.fields.deliveryTag, allUpTo: true }]);
  });

  it('acks nothing and dead-letters nothing while the database fails, so the batch can be retried', async () => {
    store.failWith = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    const batch = [delivery(order()), delivery('not json')];
    await assert.rejects(run(batch), /ECONNREFUSED/);
    assert.equal(channel.acks.length, 0);
    assert.equal(channel.published.length, 0);

    store.failWith = undefined; // the database is back: the same batch goes through
    const result = await run(batch);
    assert.deepEqual(counts(result), { inserted: 1, duplicates: 0, deadLettered: 1 });
    assert.equal(channel.acks.length, 1);
  });

  it('does not ack when the broker refuses to confirm a dead letter', async () => {
    channel.refuseConfirms = true;
    await assert.rejects(run([delivery(order()), delivery('[]')]), /nacked/);
    assert.equal(channel.acks.length, 0);
  });

  it('finds the order PostgreSQL refuses for its data, dead-letters it, and stores the rest', async () => {
    const good1 = delivery(order(1));
    const bad = delivery(order(2));
    const good2 = delivery(order(3));
    store.refuse.add(String(bad.properties.messageId));
    const result = await run([good1, bad, good2]);
    assert.deepEqual(counts(result), { inserted: 2, duplicates: 0, deadLettered: 1 });
    assert.deepEqual([...store.rows.keys()].sort(), [good1.properties.messageId, good2.properties.messageId].sort());
    assert.equal(channel.published.length, 1);
    assert.match(channel.published[0]?.options.headers[DEAD_LETTER_REASON_HEADER], /database refused the order: numeric field overflow/);
    assert.equal(channel.acks.length, 1);
  });

  it('reports the outcome of every message in delivery order, with the reason of each dead letter', async () => {
    await run([delivery(order(), { messageId: 'old' })]);
    const batch = [
      delivery(order(1), { messageId: 'new' }),
      delivery('nope', { messageId: 'poison' }),
      delivery(order(), { messageId: 'old' }),
      delivery(order(2), { messageId: 'twice' }),
      delivery(order(2), { messageId: 'twice' }),
      delivery(order(4), { messageId: 'too-big' }),
    ];
    store.refuse.add('too-big');
    const result = await run(batch);
    assert.deepEqual(outcomes(result), [
      'new:inserted',
      'poison:dead_lettered',
      'old:duplicate',
      'twice:inserted',
      'twice:duplicate',
      'too-big:dead_lettered',
    ]);
    assert.deepEqual(counts(result), { inserted: 2, duplicates: 2, deadLettered: 2 });
    assert.match(result.settled[1]?.reason ?? '', /not valid JSON/);
    assert.match(result.settled[5]?.reason ?? '', /database refused the order/);
    assert.equal(result.settled[0]?.message, batch[0], 'each outcome names its delivery');
  });

  it('classifies PostgreSQL data errors as permanent and connection errors as retryable', () => {
    assert.equal(isPermanentDataError({ code: '22003' }), true);
    assert.equal(isPermanentDataError({ code: '23502' }), true);
    assert.equal(isPermanentDataError({ code: '57P01' }), false); // admin shutdown
    assert.equal(isPermanentDataError({ code: '08006' }), false); // connection failure
    assert.equal(isPermanentDataError({ code: 'ECONNREFUSED' }), false);
    assert.equal(isPermanentDataError(new Error('Knex: Timeout acquiring a connection')), false);
  });

  it('gives a message without a message id a stable id derived from its content and properties', () => {
    const a = delivery(order(), { messageId: undefined });
    const redelivered = { ...a, fields: { ...a.fields, deliveryTag: 99, redelivered: true } };
    const other = delivery(order(4), { messageId: undefined });
    const sameBodyLater = delivery(order(), { messageId: undefined, timestamp: 1_700_000_000 });
    assert.match(messageIdOf(a), /^sha256:[0-9a-f]{64}$/);
    assert.equal(messageIdOf(redelivered), messageIdOf(a));
    assert.notEqual(messageIdOf(other), messageIdOf(a));
    assert.notEqual(messageIdOf(sameBodyLater), messageIdOf(a));
    assert.equal(messageIdOf(delivery(order(), { messageId: 'abc' })), 'abc');
  });

  it('decodes numbers and numeric strings alike', () => {
    const fromStrings = decodeMessage(delivery({ user_id: '20', number_of_items: '99', total_amount: '250' }, { messageId: 'm' }));
    const fromNumbers = decodeMessage(delivery({ user_id: 20, number_of_items: 99, total_amount: 250 }, { messageId: 'm' }));
    assert.equal(fromStrings.kind, 'order');
    assert.equal(fromNumbers.kind, 'order');
    if (fromStrings.kind === 'order' && fromNumbers.kind === 'order') assert.deepEqual(fromStrings.order, fromNumbers.order);
  });
});
