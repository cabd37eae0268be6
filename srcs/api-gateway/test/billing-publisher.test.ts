import assert from 'node:assert/strict';
import http from 'node:http';
import * as amqp from 'amqplib';
import { AppError } from '@crud-master/common';
import { createApp } from '../src/app';
import { BillingPublisher } from '../src/billing';
import { freePort, sharedRabbit, waitFor, type RabbitInstance } from '../../../test/harness/fixtures';
import { silentLogger } from '../../../test/support/silent-logger';
import { contractRequest } from '../../../test/support/contract';
import { billingBroker, declareTopologyAs, type BillingBroker } from '../../../test/support/billing-broker';

describe('api-gateway billing publisher (real broker)', () => {
  let rabbit: RabbitInstance;
  let client: amqp.ChannelModel;
  let channel: amqp.Channel;
  let queue: string;
  let broker: BillingBroker;
  let publisher: BillingPublisher | undefined;

  // As the gateway runs: its own RabbitMQ user, which may only publish to the orders exchange.
  const startPublisher = async (): Promise<BillingPublisher> => {
    const p = new BillingPublisher({ amqp: broker.gateway, confirmTimeoutMs: 5000, logger: silentLogger(), reconnectBackoff: { initialMs: 10, maxMs: 100 } });
    publisher = p;
    p.start();
    await waitFor(() => p.health().then(() => true), { description: 'publisher connected' });
    return p;
  };

  before(async () => {
    rabbit = await sharedRabbit();
    client = await amqp.connect(rabbit.url());
    channel = await client.createChannel();
  });
  beforeEach(async () => {
    broker = await billingBroker(rabbit);
    queue = broker.queue;
  });
  afterEach(async () => {
    await publisher?.close();
    publisher = undefined;
  });
  after(async () => {
    await client?.close();
  });

  it('publishes the body as is to the durable billing_queue, persistent, with a message id and a JSON content type', async () => {
    const p = await startPublisher();
    const body = '{"user_id":"3","number_of_items":"5","total_amount":"180"}';
    const id = await p.publish(body);
    const message = await channel.get(queue, { noAck: true });
    assert.ok(message, 'the message is on the queue once publish() resolved');
    assert.equal(message.content.toString('utf8'), body);
    assert.equal(message.properties.deliveryMode, 2, 'persistent');
    assert.equal(message.properties.messageId, id);
    assert.match(id, /^[0-9a-f-]{36}$/);
    assert.equal(message.properties.contentType, 'application/json');
    // Declaring it again as durable succeeds; as non-durable, the broker refuses (406): it is durable.
    await channel.assertQueue(queue, { durable: true });
    const probe = await client.createChannel();
    probe.on('error', () => undefined);
    await assert.rejects(probe.assertQueue(queue, { durable: false }), /PRECONDITION_FAILED/);
  });

  it('gives every order its own message id, also under a burst that fills the channel buffer', async () => {
    const p = await startPublisher();
    const filler = 'x'.repeat(8 * 1024);
    const count = 2000;
    const ids = await Promise.all(
      Array.from({ length: count }, (_, i) => p.publish(JSON.stringify({ user_id: i + 1, number_of_items: 1, total_amount: 1, filler }))),
    );
    assert.equal(new Set(ids).size, count);
    assert.equal((await channel.checkQueue(queue)).messageCount, count);
    await channel.purgeQueue(queue);
  });

  it('answers 503, not 200, for an order the broker could not route because the queue was deleted, and 200 once the worker declared it again', async () => {
    const p = await startPublisher();
    await channel.deleteQueue(queue);
    const err = await p.publish('{"n":1}').then(
      () => assert.fail('confirmed an order that no queue holds'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof AppError);
    assert.equal(err.code, 'order_not_queued');
    await assert.rejects(p.publish('{"n":2}'), /not bound/, 'the gateway does not declare it itself: it may not');
    await declareTopologyAs(broker.billing);
    const id = await waitFor(() => p.publish('{"n":3}').catch(() => undefined), { description: 'publishing again' });
    const message = await channel.get(queue, { noAck: true });
    assert.ok(message);
    assert.equal(message.properties.messageId, id);
  });

  it('waits (503) while the worker has not declared the topology, and publishes once it has', async () => {
    broker = await billingBroker(rabbit, { declare: false });
    queue = broker.queue;
    const p = new BillingPublisher({ amqp: broker.gateway, confirmTimeoutMs: 5000, logger: silentLogger(), reconnectBackoff: { initialMs: 10, maxMs: 100 } });
    publisher = p;
    p.start();
    await waitFor(() => p.health().then(() => false, (e: Error) => /NOT_FOUND/.test(e.message)), { description: 'the missing exchange in health()' });
    await assert.rejects(p.publish('{}'), (e: unknown) => e instanceof AppError && e.status === 503);
    await declareTopologyAs(broker.billing);
    await waitFor(() => p.health().then(() => true), { description: 'publisher connected' });
    const id = await p.publish('{"n":1}');
    const message = await channel.get(queue, { noAck: true });
    assert.equal(message && message.properties.messageId, id);
  });

  it('refuses at once with 503 order_not_queued, and reports the broker down, while it cannot connect', async () => {
    const p = new BillingPublisher({
      amqp: { ...broker.gateway, port: 9 },
      confirmTimeoutMs: 5000,
      logger: silentLogger(),
      reconnectBackoff: { initialMs: 10, maxMs: 50 },
    });
    publisher = p;
    p.start();
    await assert.rejects(p.health(), /not connected/);
    const err = await p.publish('{}').then(
      () => assert.fail('published without a broker'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof AppError);
    assert.equal(err.status, 503);
    assert.equal(err.code, 'order_not_queued');
    await waitFor(() => p.health().then(() => false, (e: Error) => /ECONNREFUSED/.test(e.message)), {
      description: 'the refused connection in health()',
    });
  });

  it('with a list of nodes none of which is up: 503 at once, and health names every node tried', async () => {
    const dead = [await freePort(), await freePort()];
    const p = new BillingPublisher({
      amqp: { ...broker.gateway, nodes: dead.map((port) => ({ host: '127.0.0.1', port })) },
      confirmTimeoutMs: 5000,
      logger: silentLogger(),
      reconnectBackoff: { initialMs: 10, maxMs: 50 },
    });
    publisher = p;
    p.start();
    await assert.rejects(p.publish('{}'), (e: unknown) => e instanceof AppError && e.status === 503 && e.code === 'order_not_queued');
    await waitFor(
      () => p.health().then(() => false, (e: Error) => dead.every((port) => e.message.includes(`127.0.0.1:${port}: `)) && /ECONNREFUSED/.test(e.message)),
      { description: 'both refused nodes in health()' },
    );
    await assert.rejects(p.publish('{}'), (e: unknown) => e instanceof AppError && e.status === 503);
  });

  describe('through the gateway app', () => {
    let agent: http.Agent;
    let app: ReturnType<typeof createApp>;
    beforeEach(async () => {
      const p = await startPublisher();
      agent = new http.Agent();
      app = createApp({
        config: { inventoryUrl: 'http://127.0.0.1:9', upstreamTimeoutMs: 1000 },
        logger: silentLogger(),
        inventoryAgent: agent,
        healthChecks: { broker: () => p.health() },
        billing: { publisher: p, bodyLimit: '16kb' },
      });
    });
    afterEach(() => agent.destroy());

    it('answers 200 with the message id of the message now on the queue', async () => {
      const res = await contractRequest(app.callback()).post('/api/billing/').send({ user_id: '20', number_of_items: '99', total_amount: '250' }).expect(200);
      assert.equal(res.body.status, 'queued');
      const message = await channel.get(queue, { noAck: true });
      assert.ok(message);
      assert.equal(message.properties.messageId, res.body.message_id);
      assert.equal(message.content.toString(), '{"user_id":"20","number_of_items":"99","total_amount":"250"}');
    });

    it('puts nothing on the queue for a request it answers 400', async () => {
      const bodies: unknown[] = [
        { user_id: '20', number_of_items: '0', total_amount: '250' },
        { user_id: '20', number_of_items: '1', total_amount: '250', extra: 1 },
        { user_id: '20', number_of_items: '1', total_amount: '2.505' },
        { user_id: '20' },
      ];
      for (const body of bodies) await contractRequest(app.callback()).post('/api/billing').send(body as object).expect(400);
      await contractRequest(app.callback()).post('/api/billing').set('Content-Type', 'application/json').send('{oops').expect(400);
      // A valid order afterwards is the first and only message: nothing before it was queued.
      const ok = await contractRequest(app.callback()).post('/api/billing').send({ user_id: 1, number_of_items: 1, total_amount: 1 }).expect(200);
      const first = await channel.get(queue, { noAck: true });
      assert.ok(first);
      assert.equal(first.properties.messageId, ok.body.message_id);
      assert.equal(await channel.get(queue, { noAck: true }), false);
    });

    it('reports the broker up on GET /health, without details', async () => {
      const res = await contractRequest(app.callback()).get('/health');
      assert.deepEqual(res.body.checks.broker, { status: 'up' });
    });
  });
});
