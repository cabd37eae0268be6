import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { addressOf, closeServer, createHttpMetrics, listen } from '@crud-master/common';
import { createApp } from '../src/app';
import { OrderNotQueuedError, limitBytes, type OrderPublisher, type PublishMeta } from '../src/billing';
import { captureLogger, type CapturedLogs } from '../../../test/support/capture-logger';
import { endToEndHeaders, rawRequest, type RawResponse } from '../../../test/support/http';
import { waitFor } from '../../../test/harness/processes';
import { sample } from '../../../test/support/prometheus';

/** Records what would go on the queue; an order of 666 is refused as the real publisher refuses one. */
class FakePublisher implements OrderPublisher {
  readonly bodies: string[] = [];
  async publish(body: string, meta: PublishMeta = {}): Promise<string> {
    if (body.includes('666')) throw new OrderNotQueuedError('RabbitMQ is unreachable', 'unreachable', 5);
    this.bodies.push(body);
    return meta.messageId ?? `id-${this.bodies.length}`;
  }
}

/** The same order through the front door (its common content type) and through Koa (a spelling only Koa reads). */
const WAYS = { door: 'application/json', koa: 'application/json; charset="utf-8"' } as const;

/** Bodies and keys whose answers must not depend on the way in: [what, body, Idempotency-Key]. */
const CASES: Array<[string, string | Buffer, string?]> = [
  ['a valid order of strings', '{"user_id":"3","number_of_items":"5","total_amount":"180"}'],
  ['a valid order with spaces and exact numbers', '{ "user_id": 3, "number_of_items": 5.0, "total_amount": 19.990 }'],
  ['a BOM before a valid order', '\uFEFF{"user_id":1,"number_of_items":1,"total_amount":"1.5"}'],
  ['an amount with a third decimal hidden from doubles', '{"user_id":1,"number_of_items":1,"total_amount":0.1000000000000000000001}'],
  ['a missing field', '{"user_id":"3","number_of_items":"5"}'],
  ['an unknown field', '{"user_id":"3","number_of_items":"5","total_amount":"1","admin":true}'],
  ['an array', '[]'],
  ['malformed JSON', '{"user_id": 3,'],
  ['a key given twice', '{"user_id":1,"user_id":2,"number_of_items":1,"total_amount":1}'],
  ['bytes that are not UTF-8', Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d])],
  ['an order the broker does not take', '{"user_id":"3","number_of_items":"5","total_amount":"666"}'],
  ['a bad Idempotency-Key', '{"user_id":1,"number_of_items":1,"total_amount":1}', 'a b'],
];

describe('api-gateway POST /api/billing before the Koa stack (billing/order-door.ts)', () => {
  let gateway: http.Server;
  let logs: CapturedLogs;
  let publisher: FakePublisher;
  let koaRequests = 0;
  const metrics = createHttpMetrics({ service: 'api-gateway' });
  const agent = new http.Agent({ keepAlive: true });
  let app: ReturnType<typeof createApp>;

  before(async () => {
    logs = captureLogger('api-gateway');
    publisher = new FakePublisher();
    app = createApp({
      config: { inventoryUrl: 'http://127.0.0.1:9', upstreamTimeoutMs: 1000, bodyTimeoutMs: 300 },
      logger: logs.logger,
      inventoryAgent: agent,
      metrics,
      billing: { publisher, bodyLimit: '1kb' },
    });
    // Counts the requests that reach the Koa stack at all.
    app.koa.middleware.unshift((_ctx, next) => {
      koaRequests++;
      return next();
    });
    gateway = await listen(app.callback(), { host: '127.0.0.1', port: 0 });
  });
  after(async () => {
    await closeServer(gateway, 200);
    await app.close();
    agent.destroy();
  });

  const post = (type: string, body: string | Buffer, requestId: string, key?: string, path = '/api/billing') =>
    rawRequest(addressOf(gateway), {
      method: 'POST',
      path,
      headers: { 'Content-Type': type, 'X-Request-Id': requestId, ...(key === undefined ? {} : { 'Idempotency-Key': key }) },
      body,
    });
  const accessLine = async (requestId: string) => {
    const line = await waitFor(() => logs.lines().find((l) => l.msg === 'request' && l.requestId === requestId), { timeoutMs: 2000 });
    const { time: _time, durationMs, pid: _pid, hostname: _hostname, ...rest } = line;
    assert.equal(typeof durationMs, 'number');
    return rest;
  };
  /** What a client and an operator see of one answer, with the request's id and the message id made comparable. */
  const seen = async (res: RawResponse, requestId: string) => ({
    status: res.status,
    headers: endToEndHeaders(res).map(([name, value]) => [name, value.replaceAll(requestId, '<id>')]),
    body: res.body.toString('utf8').replace(/id-[0-9]+/, '<message id>'),
    access: { ...(await accessLine(requestId)), requestId: '<id>' },
  });

  for (const [what, body, key] of CASES) {
    it(`answers ${what} exactly as the Koa stack does, without entering it`, async () => {
      const id = what.replace(/[^A-Za-z0-9]/g, '-');
      const before = koaRequests;
      const door = await post(WAYS.door, body, `door-${id}`, key);
      assert.equal(koaRequests, before, 'the door took it');
      const koa = await post(WAYS.koa, body, `koa-${id}`, key);
      assert.equal(koaRequests, before + 1, 'Koa took the other spelling');
      assert.ok(door.status < 500 || door.status === 503, `status ${door.status}`);
      assert.deepEqual(await seen(door, `door-${id}`), await seen(koa, `koa-${id}`));
    });
  }

  it('shares the Idempotency-Keys with the Koa route: same order, same answer; another order, 422', async () => {
    const order = '{"user_id":"3","number_of_items":"5","total_amount":"180"}';
    const first = await post(WAYS.door, order, 'key-1', 'shared-key-1');
    assert.equal(first.status, 200);
    assert.equal(JSON.parse(first.body.toString()).message_id, 'shared-key-1');
    const again = await post(WAYS.koa, '{"user_id":3,"number_of_items":5,"total_amount":180.00}', 'key-2', 'shared-key-1');
    assert.equal(again.status, 200, 'the same order written otherwise');
    const other = await post(WAYS.door, '{"user_id":"3","number_of_items":"5","total_amount":"181"}', 'key-3', 'shared-key-1');
    assert.equal(other.status, 422);
    assert.equal(JSON.parse(other.body.toString()).error.code, 'idempotency_key_reused');
  });

  it('counts its requests in the HTTP metrics under the route /api/billing, and logs the 503 with the request id', async () => {
    const labels = { method: 'POST', route: '/api/billing', status: '503' };
    const before = sample(await metrics.registry.metrics(), 'http_requests_total', labels);
    const res = await post(WAYS.door, '{"user_id":1,"number_of_items":1,"total_amount":666}', 'door-503');
    assert.equal(res.status, 503);
    assert.equal(res.headers['retry-after'], '5');
    await accessLine('door-503');
    assert.equal(sample(await metrics.registry.metrics(), 'http_requests_total', labels), before + 1);
    const warning = logs.lines().find((l) => l.msg === 'dependency unavailable' && l.requestId === 'door-503');
    assert.ok(warning, 'the refusal is logged with the request id');
  });

  it('cuts a body that does not arrive in time with 408 and its request id, and queues nothing', async () => {
    const queued = publisher.bodies.length;
    const port = (gateway.address() as net.AddressInfo).port;
    const text = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () =>
        socket.write('POST /api/billing HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Request-Id: door-slow\r\nContent-Length: 50\r\n\r\n{"user_id":'),
      );
      let answer = '';
      socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
      socket.on('close', () => resolve(answer));
      socket.on('error', reject);
      socket.setTimeout(5000, () => socket.destroy(new Error('no 408')));
    });
    assert.match(text, /^HTTP\/1\.1 408 /);
    assert.match(text, /X-Request-Id: door-slow\r\n/);
    assert.match(text, /"code":"request_timeout"/);
    assert.equal((await accessLine('door-slow')).status, 408);
    assert.equal(publisher.bodies.length, queued);
  });

  it('leaves every other form to Koa: a query string, another method, an encoding, an empty or too large body', async () => {
    const before = koaRequests;
    const order = '{"user_id":1,"number_of_items":1,"total_amount":1}';
    assert.equal((await post(WAYS.door, order, 'koa-q', undefined, '/api/billing?x=1')).status, 200);
    assert.equal((await rawRequest(addressOf(gateway), { method: 'GET', path: '/api/billing' })).status, 405);
    const gzip = await rawRequest(addressOf(gateway), { method: 'POST', path: '/api/billing', headers: { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' }, body: order });
    assert.equal(gzip.status, 415);
    assert.equal((await post(WAYS.door, '', 'koa-empty')).status, 400);
    assert.equal((await post(WAYS.door, 'x'.repeat(2000), 'koa-large')).status, 413);
    assert.equal(koaRequests, before + 5);
  });

  it('reads body limits as raw-body does, and no form it cannot read', () => {
    assert.equal(limitBytes('16kb'), 16 * 1024);
    assert.equal(limitBytes('1KB'), 1024);
    assert.equal(limitBytes('300'), 300);
    assert.equal(limitBytes('1.5mb'), 0);
  });
});
