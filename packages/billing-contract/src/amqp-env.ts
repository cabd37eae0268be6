import { z } from 'zod';
import { envPort, envString } from '@crud-master/common';
import type { AmqpConfig } from './amqp';

/**
 * Which side reads the RABBITMQ_* variables. Each has its own RabbitMQ user with its own rights
 * (README, "Least privilege"): the gateway `RABBITMQ_GATEWAY_USER` (publish only), the worker
 * `RABBITMQ_BILLING_USER` (declare, consume, dead-letter).
 */
export type AmqpSide = 'GATEWAY' | 'BILLING';

/** The RABBITMQ_* variables of `.env` one side reads: the broker, the queue, and that side's user. */
export function amqpEnvShape<S extends AmqpSide>(side: S) {
  return {
    RABBITMQ_HOST: envString,
    RABBITMQ_PORT: envPort.default(5672),
    RABBITMQ_VHOST: envString.default('/'),
    RABBITMQ_QUEUE: envString.default('billing_queue'),
    [`RABBITMQ_${side}_USER`]: envString,
    [`RABBITMQ_${side}_PASSWORD`]: envString,
  } as {
    RABBITMQ_HOST: typeof envString;
    RABBITMQ_PORT: z.ZodDefault<typeof envPort>;
    RABBITMQ_VHOST: z.ZodDefault<typeof envString>;
    RABBITMQ_QUEUE: z.ZodDefault<typeof envString>;
  } & Record<`RABBITMQ_${S}_USER` | `RABBITMQ_${S}_PASSWORD`, typeof envString>;
}

interface AmqpVars {
  RABBITMQ_HOST: string;
  RABBITMQ_PORT: number;
  RABBITMQ_VHOST: string;
  RABBITMQ_QUEUE: string;
}

export function amqpConfigFrom(side: AmqpSide, vars: AmqpVars & Record<string, unknown>): AmqpConfig {
  return {
    host: vars.RABBITMQ_HOST,
    port: vars.RABBITMQ_PORT,
    user: String(vars[`RABBITMQ_${side}_USER`]),
    password: String(vars[`RABBITMQ_${side}_PASSWORD`]),
    vhost: vars.RABBITMQ_VHOST,
    queue: vars.RABBITMQ_QUEUE,
  };
}
