import assert from 'node:assert/strict';
import { BATCHES_IN_FLIGHT, batchSizeFor, readConfig } from '../src/config';

/** The variables readConfig requires, as .env names them; the rest take their defaults. */
const REQUIRED = {
  LOG_LEVEL: 'info',
  BILLING_DB_HOST: '127.0.0.1',
  BILLING_DB_NAME: 'orders_db',
  BILLING_DB_USER: 'billing_user',
  BILLING_DB_PASSWORD: 'secret',
  RABBITMQ_HOST: '127.0.0.1',
  RABBITMQ_BILLING_USER: 'billing_mq',
  RABBITMQ_BILLING_PASSWORD: 'secret',
};

describe('billing-app config: batches and prefetch', () => {
  it('writes batches of a quarter of the prefetch, two at a time, so two more can arrive meanwhile', () => {
    const config = readConfig({ ...REQUIRED, BILLING_PREFETCH: '2000' });
    assert.equal(config.prefetch, 2000);
    assert.equal(config.batchSize, 500);
    assert.equal(config.batchesInFlight, 2);
    // The batches being written plus as many arriving fit in the prefetch.
    assert.ok(2 * config.batchesInFlight * config.batchSize <= config.prefetch);
  });

  it('never makes a batch of nothing, and rounds a prefetch that does not divide up', () => {
    assert.equal(batchSizeFor(1), 1);
    assert.equal(batchSizeFor(3), 1);
    assert.equal(batchSizeFor(10), 3);
    assert.equal(BATCHES_IN_FLIGHT, readConfig({ ...REQUIRED, BILLING_PREFETCH: '10' }).batchesInFlight);
  });
});
