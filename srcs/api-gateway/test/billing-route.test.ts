import assert from 'node:assert/strict';
import http from 'node:http';
import { createApp } from '../src/app';
import { OrderNotQueuedError, type OrderPublisher, type PublishMeta } from '../src/billing';
import { silentLogger } from '../../../test/support/silent-logger';
import { contractRequest } from '../../../test/support/contract';

/** Records what would go on the queue; `fail` makes the next publishes refuse like the real one. */
class FakePublisher implements OrderPublisher {
  readonly bodies: string[] = [];
  readonly metas: PublishMeta[] = [];
  fail: Error | undefined;
  async publish(body: string, meta: PublishMeta = {}): Promise<string> {
    if (this.fail) throw this.fail;
    this.bodies.push(body);
    this.metas.push(meta);
    // Shaped like the real publisher's ids (the given one, else a UUID).
    return meta.messageId ?? `00000000-0000-4000-8000-${String(this.bodies.length).padStart(12, '0')}`;
  }
}

describe('api-gateway POST /api/billing (fake publisher)', () => {
  let publisher: FakePublisher;
  let agent: http.Agent;
  let app: ReturnType<typeof createApp>;

  beforeEach(() => {
    publisher = new FakePublisher();
    agent = new http.Agent();
    app = createApp({
      // Nothing listens on port 9: /api/billing must not depend on the inventory.
      config: { inventoryUrl: 'http://127.0.0.1:9', upstreamTimeoutMs: 1000 },
      logger: silentLogger(),
      inventoryAgent: agent,
      billing: { publisher, bodyLimit: '1kb' },
    });
  });
  afterEach(() => agent.destroy());

  it('answers 200 with the message id once published, and publishes the body as sent', async () => {
    const body = { user_id: '3', number_of_items: '5', total_amount: '180' };
    const res = await contractRequest(app.callback()).post('/api/billing').send(body).expect(200);
    assert.deepEqual(res.body, { status: 'queued', message_id: '00000000-0000-4000-8000-000000000001' });
    assert.match(String(res.headers['content-type']), /application\/json/);
    assert.deepEqual(publisher.bodies, [JSON.stringify(body)]);
  });

  it('publishes under the Idempotency-Key when one is sent, and answers it as the message id', async () => {
    const body = { user_id: '3', number_of_items: '5', total_amount: '180' };
    const key = 'order-2026-11-23:client@7';
    const res = await contractRequest(app.callback()).post('/api/billing').set('Idempotency-Key', key).send(body).expect(200);
    assert.deepEqual(res.body, { status: 'queued', message_id: key });
    assert.equal(publisher.metas[0]?.messageId, key);
    await contractRequest(app.callback()).post('/api/billing').send(body).expect(200);
    assert.equal(publisher.metas[1]?.messageId, undefined, 'no key: the publisher makes the id');
  });

  for (const [what, key] of [
    ['a space', 'my key'],
    ['129 characters', 'k'.repeat(129)],
    ['a slash', 'a/b'],
  ] as const) {
    it(`answers 400 and queues nothing for an Idempotency-Key with ${what}`, async () => {
      const body = { user_id: '3', number_of_items: '5', total_amount: '180' };
      const res = await contractRequest(app.callback()).post('/api/billing').set('Idempotency-Key', key).send(body).expect(400);
      assert.equal(res.body.error.code, 'validation_error');
      assert.match(res.body.error.message, /Idempotency-Key/);
      assert.deepEqual(publisher.bodies, []);
    });
  }

  it('accepts the trailing-slash path and numbers as well as strings', async () => {
    const body = { user_id: 20, number_of_items: 99, total_amount: 250.5 };
    await contractRequest(app.callback()).post('/api/billing/').send(body).expect(200);
    assert.deepEqual(publisher.bodies, ['{"user_id":20,"number_of_items":99,"total_amount":250.5}']);
  });

  const invalid: Array<[string, unknown, RegExp]> = [
    ['a missing field', { user_id: '3', number_of_items: '5' }, /total_amount: is required/],
    ['an unknown field', { user_id: '3', number_of_items: '5', total_amount: '1', admin: true }, /admin: unknown field/],
    ['a negative amount', { user_id: '3', number_of_items: '5', total_amount: '-4' }, /total_amount/],
    ['a non-integer count', { user_id: '3', number_of_items: '2.5', total_amount: '4' }, /number_of_items/],
    ['an array', [], /must be a JSON object/],
  ];
  for (const [what, body, message] of invalid) {
    it(`answers 400 and queues nothing for ${what}`, async () => {
      const res = await contractRequest(app.callback()).post('/api/billing').send(body as object).expect(400);
      assert.equal(res.body.error.code, 'validation_error');
      assert.match(res.body.error.message, message);
      assert.equal(publisher.bodies.length, 0);
    });
  }

  it('answers 400 invalid_json for a malformed body and 415 for another media type, queueing nothing', async () => {
    const bad = await contractRequest(app.callback())
      .post('/api/billing')
      .set('Content-Type', 'application/json')
      .send('{"user_id": 3,')
      .expect(400);
    // The code (invalid_json) comes from the shared error middleware; here: a JSON 400, not a 500.
    assert.equal(typeof bad.body.error.code, 'string');
    const text = await contractRequest(app.callback()).post('/api/billing').set('Content-Type', 'text/plain').send('user_id=3').expect(415);
    assert.equal(text.body.error.code, 'unsupported_media_type');
    assert.equal(publisher.bodies.length, 0);
  });

  it('answers 503 order_not_queued, as JSON, when the broker did not take the order', async () => {
    publisher.fail = new OrderNotQueuedError('RabbitMQ is unreachable (connect ECONNREFUSED)', 'unreachable', 5);
    const res = await contractRequest(app.callback())
      .post('/api/billing')
      .send({ user_id: '3', number_of_items: '5', total_amount: '180' })
      .expect(503);
    assert.equal(res.body.error.code, 'order_not_queued');
    assert.match(res.body.error.message, /not taken/);
    assert.equal(res.headers['retry-after'], '5');
  });

  it('answers 405 with Allow for other methods', async () => {
    const res = await contractRequest(app.callback()).get('/api/billing').expect(405);
    assert.match(String(res.headers.allow), /POST/);
    assert.equal(res.body.error.code, 'method_not_allowed');
  });
});
