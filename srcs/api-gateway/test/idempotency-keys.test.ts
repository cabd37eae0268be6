import assert from 'node:assert/strict';
import { IdempotencyKeys, IdempotencyKeyReusedError } from '../src/billing/idempotency-keys';

describe('api-gateway IdempotencyKeys (the 422 of a reused key)', () => {
  it('lets the same order through again and refuses another order under the key', () => {
    const keys = new IdempotencyKeys();
    keys.claim('k1', '3|5|180.00');
    keys.claim('k1', '3|5|180.00');
    assert.throws(() => keys.claim('k1', '3|5|181.00'), IdempotencyKeyReusedError);
    keys.claim('k2', '3|5|181.00');
  });

  it('forgets a key after its time to live', () => {
    let now = 0;
    const keys = new IdempotencyKeys({ ttlMs: 1000, now: () => now });
    keys.claim('k', 'a');
    now = 999;
    assert.throws(() => keys.claim('k', 'b'), IdempotencyKeyReusedError);
    now = 1000;
    keys.claim('k', 'b');
  });

  it('holds at most maxEntries keys, dropping the oldest first', () => {
    const keys = new IdempotencyKeys({ maxEntries: 3 });
    for (const k of ['a', 'b', 'c', 'd']) keys.claim(k, k);
    assert.equal(keys.size, 3);
    keys.claim('a', 'other'); // 'a' was dropped: a fresh claim
    assert.throws(() => keys.claim('d', 'other'), IdempotencyKeyReusedError);
  });
});
