import { z } from 'zod';
import { envPort, envString } from '@crud-master/common';
import type { AmqpConfig } from './amqp';
import { envBrokerNodes, withPorts, type BrokerNodeEntry } from './broker-nodes';
import type { QueueType } from './queue-type';

/**
 * Which side reads the RABBITMQ_* variables. Each has its own RabbitMQ user with its own rights
 * (README, "Least privilege"): the gateway `RABBITMQ_GATEWAY_USER` (publish only), the worker
 * `RABBITMQ_BILLING_USER` (declare, consume, dead-letter).
 */
export type AmqpSide = 'GATEWAY' | 'BILLING';

/**
 * The RABBITMQ_* variables of `.env` one side reads: the broker's nodes (RABBITMQ_HOST, a
 * comma-separated list; see broker-nodes.ts), the queue, and that side's user.
 */
export function amqpEnvShape<S extends AmqpSide>(side: S) {
  return {
    RABBITMQ_HOST: envBrokerNodes,
    RABBITMQ_PORT: envPort.default(5672),
    RABBITMQ_VHOST: envString.default('/'),
    RABBITMQ_QUEUE: envString.default('billing_queue'),
    [`RABBITMQ_${side}_USER`]: envString,
    [`RABBITMQ_${side}_PASSWORD`]: envString,
  } as {
    RABBITMQ_HOST: typeof envBrokerNodes;
    RABBITMQ_PORT: z.ZodDefault<typeof envPort>;
    RABBITMQ_VHOST: z.ZodDefault<typeof envString>;
    RABBITMQ_QUEUE: z.ZodDefault<typeof envString>;
  } & Record<`RABBITMQ_${S}_USER` | `RABBITMQ_${S}_PASSWORD`, typeof envString>;
}

interface AmqpVars {
  RABBITMQ_HOST: BrokerNodeEntry[];
  RABBITMQ_PORT: number;
  RABBITMQ_VHOST: string;
  RABBITMQ_QUEUE: string;
  /** The worker's only (queueTypeEnvShape). */
  RABBITMQ_QUEUE_TYPE?: QueueType;
  RABBITMQ_DELIVERY_LIMIT?: number;
}

/** The side's AmqpConfig; throws ConfigError when RABBITMQ_HOST names a node twice. */
export function amqpConfigFrom(side: AmqpSide, vars: AmqpVars & Record<string, unknown>): AmqpConfig {
  const nodes = withPorts(vars.RABBITMQ_HOST, vars.RABBITMQ_PORT);
  const [first] = nodes;
  if (!first) throw new Error('RABBITMQ_HOST: no node'); // the schema refuses an empty list
  return {
    host: first.host,
    port: first.port,
    nodes,
    user: String(vars[`RABBITMQ_${side}_USER`]),
    password: String(vars[`RABBITMQ_${side}_PASSWORD`]),
    vhost: vars.RABBITMQ_VHOST,
    queue: vars.RABBITMQ_QUEUE,
    ...(vars.RABBITMQ_QUEUE_TYPE ? { queueType: vars.RABBITMQ_QUEUE_TYPE } : {}),
    ...(vars.RABBITMQ_DELIVERY_LIMIT !== undefined ? { deliveryLimit: vars.RABBITMQ_DELIVERY_LIMIT } : {}),
  };
}
