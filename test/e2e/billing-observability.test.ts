import assert from 'node:assert/strict';
import { freePort, sharedPostgres, sharedRabbit, waitFor } from '../harness/fixtures';
import type { ServiceProcess } from '../harness/processes';
import { jsonLines, sample, scrape } from '../support/prometheus';
import {
  adminUrl,
  amqpClient,
  billingUrl,
  health,
  newStackConfig,
  postOrder,
  sampleOrder,
  startBilling,
  startGateway,
  type StackConfig,
} from './billing-stack';

const REQUEST_ID_HEADER = 'x-request-id';

/*
 * The gateway and billing-app as real processes (shared broker and database server): a request
 * id followed from the HTTP request through the queue into billing's JSON log, and the metrics
 * of both services while orders flow. Health turning 503 when a dependency stops is proved in
 * billing-broker-outage.test.ts, billing-postgres-outage.test.ts and srcs/billing-app/test/consumer.test.ts.
 */
describe('billing observability end to end: request ids through the queue, metrics (processes)', function () {
  this.timeout(120_000);
  let config: StackConfig;
  let gateway: ServiceProcess | undefined;
  let billing: ServiceProcess | undefined;
  let mq: Awaited<ReturnType<typeof amqpClient>>;

  before(async () => {
    config = await newStackConfig(await sharedRabbit(), await sharedPostgres());
    [gateway, billing] = await Promise.all([startGateway(config), startBilling(config)]);
    mq = await amqpClient(config.rabbit);
  });
  after(async () => {
    await Promise.all([gateway?.stop(), billing?.stop()]);
    await mq?.close();
  });

  /** billing's per-message log lines so far. */
  const messageLines = () => jsonLines(billing?.logs() ?? '').filter((l) => l.msg === 'message');

  it('carries the X-Request-Id of an order from the gateway, through the queue, into billing\'s log line for the message', async () => {
    const requestId = `e2e-${Date.now()}`;
    const res = await postOrder(config, sampleOrder(1), { 'X-Request-Id': requestId });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.requestId, requestId, 'the gateway answers with the request id');
    const line = await waitFor(() => messageLines().find((l) => l.requestId === requestId), {
      timeoutMs: 15_000,
      description: `billing's log line for ${requestId}`,
    });
    assert.equal(line.messageId, res.body.message_id);
    assert.equal(line.outcome, 'inserted');
    assert.equal(line.level, 30, 'info');
    assert.equal(typeof line.durationMs, 'number');
    assert.equal(line.name, 'billing-app');
    // The gateway writes its access line as the response finishes: on a loaded machine it can
    // reach the log file after the client has the answer, so wait for it as for billing's.
    const gatewayRequestIdLines = () => jsonLines(gateway?.logs() ?? '').filter((l) => l.requestId === requestId);
    await waitFor(() => gatewayRequestIdLines().some((l) => l.msg === 'request'), {
      timeoutMs: 15_000,
      description: `the gateway's access line for ${requestId}`,
    }).catch(() => undefined); // the assertion below reports it
    const gatewayLines = gatewayRequestIdLines();
    assert.ok(gatewayLines.some((l) => l.msg === 'request' && l.status === 200), 'the gateway logged the request');
    assert.ok(gatewayLines.some((l) => l.msg === 'order queued' && l.messageId === res.body.message_id), 'the gateway logged the message id');
    const logged = JSON.stringify([...messageLines(), ...gatewayLines]);
    // Neither the body's fields nor its amount as a JSON string; a bare 1.01 may be part of a
    // duration (durationMs 11.013) and says nothing.
    assert.ok(!/total_amount|number_of_items/.test(logged) && !logged.includes(JSON.stringify(sampleOrder(1).total_amount)), 'no order body in the logs');
  });

  it('gives an order without X-Request-Id a fresh id that billing logs too', async () => {
    const res = await postOrder(config, sampleOrder(2));
    assert.equal(res.status, 200);
    assert.match(res.requestId ?? '', /^[0-9a-f-]{36}$/);
    const line = await waitFor(() => messageLines().find((l) => l.messageId === res.body.message_id), { timeoutMs: 15_000 });
    assert.equal(line.requestId, res.requestId);
  });

  it('moves the order counters on the gateway and the message metrics on billing as messages flow', async () => {
    const before = { gateway: await scrape(adminUrl(config)), billing: await scrape(billingUrl(config)) };
    const delta = (service: 'gateway' | 'billing', text: string, name: string, labels: Record<string, string> = {}) =>
      sample(text, name, labels) - sample(before[service], name, labels);

    const posted = [];
    for (let i = 0; i < 3; i++) posted.push(await postOrder(config, sampleOrder(10 + i)));
    assert.deepEqual(posted.map((r) => r.status), [200, 200, 200]);
    assert.equal((await postOrder(config, { user_id: 'x' })).status, 400);
    // A redelivery (same message id) and a poison message, published as a third party would.
    const send = (body: string, messageId: string, requestId: string) =>
      new Promise<void>((resolve, reject) =>
        mq.channel.sendToQueue(config.queue, Buffer.from(body), { persistent: true, messageId, headers: { [REQUEST_ID_HEADER]: requestId } }, (err) =>
          err ? reject(err) : resolve(),
        ),
      );
    await send(JSON.stringify(sampleOrder(10)), String(posted[0]?.body.message_id), 'e2e-redelivery');
    await send('not json', `poison-${Date.now()}`, 'e2e-poison');

    const billingText = await waitFor(
      async () => {
        const text = await scrape(billingUrl(config));
        return delta('billing', text, 'billing_messages_consumed_total') >= 5 && delta('billing', text, 'billing_messages_dead_lettered_total') >= 1
          ? text
          : undefined;
      },
      { timeoutMs: 15_000, description: 'billing to count 5 messages' },
    );
    assert.deepEqual(
      {
        consumed: delta('billing', billingText, 'billing_messages_consumed_total'),
        inserted: delta('billing', billingText, 'billing_orders_inserted_total'),
        duplicate: delta('billing', billingText, 'billing_orders_duplicate_total'),
        deadLettered: delta('billing', billingText, 'billing_messages_dead_lettered_total'),
        queueDepth: sample(billingText, 'billing_queue_depth'),
        deadLetterQueueDepth: sample(billingText, 'billing_dead_letter_queue_depth'),
      },
      { consumed: 5, inserted: 3, duplicate: 1, deadLettered: 1, queueDepth: 0, deadLetterQueueDepth: 1 },
    );
    assert.ok(delta('billing', billingText, 'billing_batches_total') >= 1);
    assert.ok(delta('billing', billingText, 'billing_batch_duration_seconds_count') >= 1);
    assert.match(billingText, /^process_cpu_seconds_total\{service="billing-app"\} /m, 'process metrics');
    const outcomes = Object.fromEntries(messageLines().map((l) => [l.requestId, l.outcome]));
    assert.equal(outcomes['e2e-redelivery'], 'duplicate');
    assert.equal(outcomes['e2e-poison'], 'dead_lettered');

    const gatewayText = await scrape(adminUrl(config));
    assert.deepEqual(
      {
        published: delta('gateway', gatewayText, 'gateway_orders_published_total'),
        confirmed: delta('gateway', gatewayText, 'gateway_orders_confirmed_total'),
        refused: delta('gateway', gatewayText, 'gateway_orders_refused_total', { reason: 'unreachable' }),
        posted: delta('gateway', gatewayText, 'http_requests_total', { method: 'POST', route: '/api/billing', status: '200' }),
        invalid: delta('gateway', gatewayText, 'http_requests_total', { method: 'POST', route: '/api/billing', status: '400' }),
      },
      { published: 3, confirmed: 3, refused: 0, posted: 3, invalid: 1 },
    );
    assert.match(gatewayText, /^process_cpu_seconds_total\{service="api-gateway"\} /m, 'process metrics');
    const dead = await mq.channel.purgeQueue(`${config.queue}.dead`);
    assert.equal(dead.messageCount, 1);
  });

  it('answers /health and /metrics on billing, and counts those requests', async () => {
    const h = await health(billingUrl(config));
    assert.equal(h?.status, 200);
    assert.equal(h?.body.checks.broker?.status, 'up');
    assert.equal(h?.body.checks.database?.status, 'up');
    const res = await fetch(`${billingUrl(config)}/health`, { headers: { 'X-Request-Id': 'health-probe' } });
    assert.equal(res.headers.get('x-request-id'), 'health-probe');
    const text = await scrape(billingUrl(config));
    assert.ok(sample(text, 'http_requests_total', { method: 'GET', route: '/health', status: '200' }) >= 2);
    const line = await waitFor(() => jsonLines(billing?.logs() ?? '').find((l) => l.msg === 'request' && l.requestId === 'health-probe'), {
      timeoutMs: 5000,
    });
    assert.equal(line.route, '/health');
  });

  it('counts orders refused because RabbitMQ is unreachable', async () => {
    // A second gateway whose broker address has nothing listening.
    const lonely: StackConfig = { ...config, gatewayPort: await freePort(), adminPort: await freePort(), extraEnv: { RABBITMQ_PORT: String(await freePort()) } };
    const proc = await startGateway(lonely);
    try {
      const res = await postOrder(lonely, sampleOrder(99));
      assert.equal(res.status, 503);
      assert.equal(res.body.error?.code, 'order_not_queued');
      const text = await scrape(adminUrl(lonely));
      assert.equal(sample(text, 'gateway_orders_published_total'), 1);
      assert.equal(sample(text, 'gateway_orders_confirmed_total'), 0);
      assert.equal(sample(text, 'gateway_orders_refused_total', { reason: 'unreachable' }), 1);
    } finally {
      await proc.stop();
    }
  });
});
