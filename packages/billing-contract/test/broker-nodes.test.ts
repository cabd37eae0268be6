import assert from 'node:assert/strict';
import { z } from 'zod';
import { ConfigError, parseEnv } from '@crud-master/common';
import { amqpConfigFrom, amqpEnvShape } from '../src/amqp-env';
import { parseBrokerNode, rotation } from '../src/broker-nodes';
import { queueTypeEnvShape } from '../src/queue-type';
import { readConfig as billingConfig } from '../../../srcs/billing-app/src/config';

const gatewaySchema = z.object(amqpEnvShape('GATEWAY'));
const base = { RABBITMQ_GATEWAY_USER: 'u', RABBITMQ_GATEWAY_PASSWORD: 'p' };
const gatewayAmqp = (env: Record<string, string>) => amqpConfigFrom('GATEWAY', parseEnv(gatewaySchema, { ...base, ...env }));

describe('billing-contract: RABBITMQ_HOST as a list of nodes', () => {
  it('takes one host as before: host and port, one node', () => {
    const config = gatewayAmqp({ RABBITMQ_HOST: '192.168.56.12', RABBITMQ_PORT: '5673' });
    assert.equal(config.host, '192.168.56.12');
    assert.equal(config.port, 5673);
    assert.deepEqual(config.nodes, [{ host: '192.168.56.12', port: 5673 }]);
  });

  it('takes a comma-separated list, each entry host or host:port, the others on RABBITMQ_PORT', () => {
    const config = gatewayAmqp({ RABBITMQ_HOST: ' 10.0.0.1 , mq-2.example:5673,[::1]:5674,[fe80::1]' });
    assert.deepEqual(config.nodes, [
      { host: '10.0.0.1', port: 5672 },
      { host: 'mq-2.example', port: 5673 },
      { host: '::1', port: 5674 },
      { host: 'fe80::1', port: 5672 },
    ]);
    assert.equal(config.host, '10.0.0.1', 'host/port are the first node');
  });

  for (const [value, problem] of [
    ['', /RABBITMQ_HOST: must not be empty/],
    ['a,,b', /RABBITMQ_HOST: entry 2 is empty/],
    ['a,b:0', /RABBITMQ_HOST: entry 2 "b:0": port must be 1 to 65535/],
    ['a:70000', /port must be 1 to 65535/],
    ['a:x', /port must be 1 to 65535/],
    ['::1', /an IPv6 address needs brackets/],
    ['bad host', /not a host name or address/],
    ['[zz]:1', /not an IPv6 address in brackets/],
  ] as const) {
    it(`refuses ${JSON.stringify(value)} naming the variable and the entry`, () => {
      assert.throws(() => gatewayAmqp({ RABBITMQ_HOST: value }), (err: unknown) => err instanceof ConfigError && problem.test(err.message));
    });
  }

  it('refuses a node listed twice (the default port counts)', () => {
    assert.throws(() => gatewayAmqp({ RABBITMQ_HOST: 'a,a:5672' }), /RABBITMQ_HOST: a:5672 is listed twice/);
  });

  it('parses one entry without the list', () => {
    assert.deepEqual(parseBrokerNode('h:1'), { host: 'h', port: 1 });
    assert.deepEqual(parseBrokerNode('h'), { host: 'h' });
  });

  it('tries the nodes in order from the start index, wrapping around', () => {
    assert.deepEqual(rotation(3, 0), [0, 1, 2]);
    assert.deepEqual(rotation(3, 2), [2, 0, 1]);
    assert.deepEqual(rotation(1, 0), [0]);
  });
});

describe('billing-contract: RABBITMQ_QUEUE_TYPE and RABBITMQ_DELIVERY_LIMIT (billing only)', () => {
  const env = {
    BILLING_DB_HOST: 'h', BILLING_DB_NAME: 'd', BILLING_DB_USER: 'u', BILLING_DB_PASSWORD: 'p',
    RABBITMQ_HOST: 'mq', RABBITMQ_BILLING_USER: 'b', RABBITMQ_BILLING_PASSWORD: 'p',
  };

  it('defaults to a classic queue, and a quorum queue gets a delivery limit of 5 unless set', () => {
    assert.equal(billingConfig(env).amqp.queueType, 'classic');
    const quorum = billingConfig({ ...env, RABBITMQ_QUEUE_TYPE: 'quorum' }).amqp;
    assert.deepEqual([quorum.queueType, quorum.deliveryLimit], ['quorum', 5]);
    assert.equal(billingConfig({ ...env, RABBITMQ_QUEUE_TYPE: 'quorum', RABBITMQ_DELIVERY_LIMIT: '20' }).amqp.deliveryLimit, 20);
  });

  it('refuses another type or a limit below 1', () => {
    assert.throws(() => billingConfig({ ...env, RABBITMQ_QUEUE_TYPE: 'stream' }), /RABBITMQ_QUEUE_TYPE: must be classic or quorum/);
    assert.throws(() => billingConfig({ ...env, RABBITMQ_DELIVERY_LIMIT: '0' }), /RABBITMQ_DELIVERY_LIMIT/);
    assert.ok(queueTypeEnvShape.RABBITMQ_QUEUE_TYPE);
  });
});
