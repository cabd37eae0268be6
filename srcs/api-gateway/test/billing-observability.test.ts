import assert from 'node:assert/strict';
import http from 'node:http';
import * as amqp from 'amqplib';
import request from 'supertest';
import { createHttpMetrics, type HttpMetrics } from '@crud-master/common';
import { MESSAGE_REQUEST_ID_HEADER } from '@crud-master/billing-contract';
import { createApp } from '../src/app';
import {
  BillingPublisher,
  REFUSAL_REASONS,
  createOrderMetrics,
  OrderNotQueuedError,
  type OrderPublisher,
  type PublishMeta,
} from '../src/billing';
import { sharedRabbit, uniqueName, waitFor, type RabbitInstance } from '../../../test/harness/fixtures';
import { silentLogger } from '../../../test/support/silent-logger';
import { billingBroker } from '../../../test/support/billing-broker';
import { captureLogger } from '../../../test/support/capture-logger';
import { sample } from '../../../test/support/prometheus';

const ORDER = { user_id: '3', number_of_items: '5', total_amount: '180' };

/** The gateway's order counters as numbers. */
async function orderCounters(metrics: HttpMetrics): Promise<Record<string, number>> {
  const text = await metrics.registry.metrics();
  const counters: Record<string, number> = {
    published: sample(text, 'gateway_orders_published_total'),
    confirmed: sample(text, 'gateway_orders_confirmed_total'),
  };
  for (const reason of REFUSAL_REASONS) counters[reason] = sample(text, 'gateway_orders_refused_total', { reason });
  return counters;
}

const zero = { published: 0, confirmed: 0, unreachable: 0, not_confirmed: 0, timeout: 0, unroutable: 0, blocked: 0 };

describe('api-gateway billing: request id in the message, order counters', () => {
  let agent: http.Agent;
  let metrics: HttpMetrics;
  const gatewayWith = (publisher: OrderPublisher, logger = silentLogger()) =>
    createApp({
      config: { inventoryUrl: 'http://127.0.0.1:9', upstreamTimeoutMs: 1000 },
      logger,
      inventoryAgent: agent,
      metrics,
      billing: { publisher, bodyLimit: '1kb', metrics: createOrderMetrics(metrics.registry) },
    }).callback();

  beforeEach(() => {
    agent = new http.Agent();
    metrics = createHttpMetrics({ service: 'api-gateway' });
  });
  afterEach(() => agent.destroy());

  it('counts each refusal under its reason, and a 400 not at all', async () => {
    let failWith: Error | undefined;
    const publisher: OrderPublisher = {
      async publish() {
        if (failWith) throw failWith;
        return '00000000-0000-4000-8000-000000000001';
      },
    };
    const app = gatewayWith(publisher);
    assert.deepEqual(await orderCounters(metrics), zero, 'every reason is exported at 0 from the start');
    await request(app).post('/api/billing').send({ user_id: '0' }).expect(400);
    assert.deepEqual(await orderCounters(metrics), zero);
    await request(app).post('/api/billing').send(ORDER).expect(200);
    for (const reason of REFUSAL_REASONS) {
      failWith = new OrderNotQueuedError(`test ${reason}`, reason);
      await request(app).post('/api/billing').send(ORDER).expect(503);
    }
    failWith = new Error('something unexpected');
    await request(app).post('/api/billing').send(ORDER).expect(500);
    assert.deepEqual(await orderCounters(metrics), {
      published: 7,
      confirmed: 1,
      unreachable: 1,
      not_confirmed: 2,
      timeout: 1,
      unroutable: 1,
      blocked: 1,
    });
  });

  it('hands the request id of the HTTP request to the publisher', async () => {
    const seen: PublishMeta[] = [];
    const app = gatewayWith({
      async publish(_body, meta) {
        seen.push(meta ?? {});
        return '00000000-0000-4000-8000-000000000002';
      },
    });
    await request(app).post('/api/billing').set('X-Request-Id', 'order-abc').send(ORDER).expect(200);
    const res = await request(app).post('/api/billing').send(ORDER).expect(200);
    assert.deepEqual(seen, [{ requestId: 'order-abc' }, { requestId: res.headers['x-request-id'] }]);
  });

  it('counts a refusal as unreachable when there is no broker', async () => {
    const rabbit = await sharedRabbit();
    const publisher = new BillingPublisher({
      amqp: { ...rabbit.connectionConfig(), port: 9, queue: uniqueName('billing') },
      confirmTimeoutMs: 1000,
      logger: silentLogger(),
      reconnectBackoff: { initialMs: 10, maxMs: 50 },
    });
    publisher.start();
    try {
      const res = await request(gatewayWith(publisher)).post('/api/billing').send(ORDER).expect(503);
      assert.equal(res.body.error.code, 'order_not_queued');
      assert.deepEqual(await orderCounters(metrics), { ...zero, published: 1, unreachable: 1 });
    } finally {
      await publisher.close();
    }
  });

  describe('with a real broker', () => {
    let rabbit: RabbitInstance;
    let client: amqp.ChannelModel;
    let channel: amqp.Channel;
    let queue: string;
    let publisher: BillingPublisher;

    before(async () => {
      rabbit = await sharedRabbit();
      client = await amqp.connect(rabbit.url());
      channel = await client.createChannel();
    });
    beforeEach(async () => {
      const broker = await billingBroker(rabbit);
      queue = broker.queue;
      publisher = new BillingPublisher({ amqp: broker.gateway, confirmTimeoutMs: 5000, logger: silentLogger() });
      publisher.start();
      await waitFor(() => publisher.health().then(() => true), { description: 'publisher connected' });
    });
    afterEach(async () => {
      await publisher.close();
      await channel.deleteQueue(queue).catch(() => undefined);
    });
    after(async () => client?.close());

    it('puts the request id in the x-request-id header of the message, and logs it with the message id', async () => {
      const logs = captureLogger('api-gateway');
      const app = gatewayWith(publisher, logs.logger);
      const res = await request(app).post('/api/billing/').set('X-Request-Id', 'trace-me-42').send(ORDER).expect(200);
      assert.equal(res.headers['x-request-id'], 'trace-me-42');
      const message = await channel.get(queue, { noAck: true });
      assert.ok(message, 'the order is on the queue');
      assert.equal(message.properties.headers?.[MESSAGE_REQUEST_ID_HEADER], 'trace-me-42');
      assert.equal(message.properties.messageId, res.body.message_id);
      assert.equal(message.properties.correlationId, undefined, 'the request id is not passed off as an RPC correlation id');
      assert.equal(message.content.toString(), JSON.stringify(ORDER), 'the body is unchanged');
      const line = logs.lines().find((l) => l.msg === 'order queued');
      assert.deepEqual(line && { requestId: line.requestId, messageId: line.messageId }, { requestId: 'trace-me-42', messageId: res.body.message_id });
      assert.deepEqual(await orderCounters(metrics), { ...zero, published: 1, confirmed: 1 });
    });

    it('counts an order the broker could not route (queue deleted) as unroutable', async () => {
      const app = gatewayWith(publisher);
      await channel.deleteQueue(queue);
      await request(app).post('/api/billing').send(ORDER).expect(503);
      assert.deepEqual(await orderCounters(metrics), { ...zero, published: 1, unroutable: 1 });
    });
  });
});
