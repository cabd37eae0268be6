import assert from 'node:assert/strict';
import { settleWithin, withTimeout } from '../src/timeout';

const later = <T>(ms: number, value: T): Promise<T> => new Promise((resolve) => setTimeout(() => resolve(value), ms));

describe('common: withTimeout and settleWithin', () => {
  it('settles like the promise when it is in time', async () => {
    assert.equal(await withTimeout(later(5, 'v'), 1000, () => new Error('late')), 'v');
    await assert.rejects(withTimeout(Promise.reject(new Error('own')), 1000, () => new Error('late')), /own/);
  });

  it('rejects with the given error once the time is up', async () => {
    await assert.rejects(withTimeout(new Promise(() => undefined), 10, () => new Error('no answer within 10 ms')), /no answer within 10 ms/);
  });

  it('settleWithin never rejects and returns at the deadline at the latest', async () => {
    await settleWithin(Promise.reject(new Error('ignored')), 1000);
    const started = Date.now();
    await settleWithin(new Promise(() => undefined), 20);
    assert.ok(Date.now() - started < 1000, 'returned at the deadline, not when the promise settled');
  });
});
