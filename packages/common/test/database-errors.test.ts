import assert from 'node:assert/strict';
import { isDatabaseUnavailable } from '../src/database-errors';

describe('isDatabaseUnavailable', () => {
  it('recognises connection failures and PostgreSQL shutdown codes', () => {
    assert.ok(isDatabaseUnavailable(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })));
    assert.ok(isDatabaseUnavailable(Object.assign(new Error('x'), { name: 'KnexTimeoutError' })));
    assert.ok(isDatabaseUnavailable(Object.assign(new Error('terminating connection'), { code: '57P01' })));
    assert.ok(isDatabaseUnavailable(Object.assign(new Error('x'), { code: '08006' })));
    assert.ok(isDatabaseUnavailable(new AggregateError([Object.assign(new Error('x'), { code: 'ECONNREFUSED' })])));
  });

  it('does not mistake query errors for an outage', () => {
    assert.ok(!isDatabaseUnavailable(Object.assign(new Error('duplicate key'), { code: '23505' })));
    assert.ok(!isDatabaseUnavailable(Object.assign(new Error('syntax error'), { code: '42601' })));
    assert.ok(!isDatabaseUnavailable(new Error('plain')));
    assert.ok(!isDatabaseUnavailable(undefined));
  });
});
