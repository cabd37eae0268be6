import assert from 'node:assert/strict';
import { createLimiter, OverloadedError } from '../src/shed';

const settle = <T>(p: Promise<T>) =>
  p.then(
    (value) => ({ ok: true as const, value }),
    (err: unknown) => ({ ok: false as const, err }),
  );

describe('api-gateway upstream limiter', () => {
  it('lets `max` through at once and queues the next ones in order', async () => {
    const limiter = createLimiter({ max: 2, queue: 10, queueTimeoutMs: 5000 });
    const a = await limiter.acquire();
    await limiter.acquire();
    const order: string[] = [];
    const c = limiter.acquire().then((r) => (order.push('c'), r));
    const d = limiter.acquire().then((r) => (order.push('d'), r));
    assert.equal(limiter.active, 2);
    assert.equal(limiter.waiting, 2);
    a();
    a(); // a second release of the same slot changes nothing
    await c;
    assert.deepEqual(order, ['c']);
    assert.equal(limiter.active, 2);
    assert.equal(limiter.waiting, 1);
    (await c)();
    (await d)();
    assert.deepEqual(order, ['c', 'd']);
    assert.equal(limiter.active, 1);
  });

  it('sheds at once when the queue is full, and after queueTimeoutMs when no slot came', async () => {
    const limiter = createLimiter({ max: 1, queue: 1, queueTimeoutMs: 50 });
    const held = await limiter.acquire();
    const waiting = settle(limiter.acquire());
    const full = await settle(limiter.acquire());
    assert.equal(full.ok, false);
    assert.ok(!full.ok && full.err instanceof OverloadedError);
    const late = await waiting;
    assert.ok(!late.ok && late.err instanceof OverloadedError, 'the waiter is shed after its time');
    assert.equal(limiter.waiting, 0);
    held();
    assert.equal(limiter.active, 0);
    const again = await limiter.acquire();
    again();
  });

  it('answers 503 overloaded with Retry-After', () => {
    const err = new OverloadedError();
    assert.equal(err.status, 503);
    assert.equal(err.code, 'overloaded');
    assert.deepEqual(err.headers, { 'Retry-After': '1' });
  });
});
