import assert from 'node:assert/strict';
import { ConfigError } from '@crud-master/common';
import { GATEWAY_SERVER_LIMITS, GATEWAY_UPSTREAM, readConfig } from '../src/config';
import { INVENTORY_SERVER_LIMITS, readConfig as readInventoryConfig } from '../../inventory-app/src/config';

const gatewayEnv = { GATEWAY_PORT: '3000', INVENTORY_HOST: '127.0.0.1', RABBITMQ_HOST: '127.0.0.1', RABBITMQ_GATEWAY_USER: 'u', RABBITMQ_GATEWAY_PASSWORD: 'p' };
const inventoryEnv = { INVENTORY_DB_HOST: '127.0.0.1', INVENTORY_DB_NAME: 'movies_db', INVENTORY_DB_USER: 'u', INVENTORY_DB_PASSWORD: 'p' };

describe('server limits from the environment', () => {
  it('gives the public gateway and the internal inventory their own defaults', () => {
    const gateway = readConfig(gatewayEnv);
    assert.deepEqual(gateway.limits, GATEWAY_SERVER_LIMITS);
    assert.deepEqual(gateway.upstream, GATEWAY_UPSTREAM);
    assert.equal(gateway.bodyTimeoutMs, 10_000);
    const inventory = readInventoryConfig(inventoryEnv);
    assert.deepEqual(inventory.limits, INVENTORY_SERVER_LIMITS);
    assert.ok(inventory.limits.keepAliveTimeoutMs > 30_000, "longer than the gateway agent's 30 s idle sockets");
  });

  it('takes every limit from the environment', () => {
    const gateway = readConfig({
      ...gatewayEnv,
      GATEWAY_HEADERS_TIMEOUT_MS: '1000',
      GATEWAY_REQUEST_TIMEOUT_MS: '2000',
      GATEWAY_KEEP_ALIVE_TIMEOUT_MS: '3000',
      GATEWAY_IDLE_TIMEOUT_MS: '0',
      GATEWAY_MAX_CONNECTIONS: '50',
      GATEWAY_BODY_TIMEOUT_MS: '700',
      GATEWAY_UPSTREAM_MAX_SOCKETS: '8',
      GATEWAY_UPSTREAM_QUEUE: '9',
      GATEWAY_UPSTREAM_QUEUE_TIMEOUT_MS: '10',
    });
    assert.deepEqual(gateway.limits, { headersTimeoutMs: 1000, requestTimeoutMs: 2000, keepAliveTimeoutMs: 3000, idleTimeoutMs: 0, maxConnections: 50 });
    assert.equal(gateway.bodyTimeoutMs, 700);
    assert.deepEqual(gateway.upstream, { max: 8, queue: 9, queueTimeoutMs: 10 });
    assert.equal(readInventoryConfig({ ...inventoryEnv, INVENTORY_KEEP_ALIVE_TIMEOUT_MS: '70000' }).limits.keepAliveTimeoutMs, 70_000);
  });

  it('refuses an idle cut that would fire while the gateway still waits for the inventory or RabbitMQ', () => {
    assert.throws(
      () => readConfig({ ...gatewayEnv, GATEWAY_IDLE_TIMEOUT_MS: '6000' }),
      (err: unknown) => err instanceof ConfigError && /GATEWAY_IDLE_TIMEOUT_MS/.test(err.message),
    );
    assert.throws(() => readConfig({ ...gatewayEnv, GATEWAY_MAX_CONNECTIONS: '0' }), /GATEWAY_MAX_CONNECTIONS/);
  });
});
