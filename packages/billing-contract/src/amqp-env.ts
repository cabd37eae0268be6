import { z } from 'zod';
import { envPort, envString } from '@crud-master/common';
import type { AmqpConfig } from './amqp';

/** The RABBITMQ_* variables of `.env`, read the same way by the gateway and the worker. */
export const amqpEnvShape = {
  RABBITMQ_HOST: envString,
  RABBITMQ_PORT: envPort.default(5672),
  RABBITMQ_USER: envString,
  RABBITMQ_PASSWORD: envString,
  RABBITMQ_VHOST: envString.default('/'),
  RABBITMQ_QUEUE: envString.default('billing_queue'),
};

export type AmqpEnv = z.infer<z.ZodObject<typeof amqpEnvShape>>;

export function amqpConfigFrom(vars: AmqpEnv): AmqpConfig {
  return {
    host: vars.RABBITMQ_HOST,
    port: vars.RABBITMQ_PORT,
    user: vars.RABBITMQ_USER,
    password: vars.RABBITMQ_PASSWORD,
    vhost: vars.RABBITMQ_VHOST,
    queue: vars.RABBITMQ_QUEUE,
  };
}
