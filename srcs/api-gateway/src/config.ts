import { z } from 'zod';
import { amqpConfigFrom, amqpEnvShape, type AmqpConfig } from '@crud-master/billing-contract';
import { envLogLevel, envPort, envPositiveInt, envString, parseEnv, type Env } from '@crud-master/common';

export type { AmqpConfig };

export interface GatewayConfig {
  listenHost: string;
  port: number;
  logLevel: z.infer<typeof envLogLevel>;
  /** Base URL of the inventory app, e.g. http://192.168.56.11:8080 */
  inventoryUrl: string;
  /** How long to wait for the inventory before answering 504. */
  upstreamTimeoutMs: number;
  /** How long to wait for RabbitMQ's publisher confirm before answering 503. */
  confirmTimeoutMs: number;
  amqp: AmqpConfig;
  /** Largest JSON body accepted on POST /api/billing. */
  bodyLimit: string;
}

const schema = z.object({
  GATEWAY_LISTEN_HOST: envString.default('0.0.0.0'),
  GATEWAY_PORT: envPort,
  LOG_LEVEL: envLogLevel,
  INVENTORY_HOST: envString,
  INVENTORY_PORT: envPort.default(8080),
  GATEWAY_UPSTREAM_TIMEOUT_MS: envPositiveInt.default(5000),
  GATEWAY_CONFIRM_TIMEOUT_MS: envPositiveInt.default(5000),
  ...amqpEnvShape,
});

export function readConfig(env: Env): GatewayConfig {
  const vars = parseEnv(schema, env);
  const inventoryHost = vars.INVENTORY_HOST.includes(':') ? `[${vars.INVENTORY_HOST}]` : vars.INVENTORY_HOST;
  return {
    listenHost: vars.GATEWAY_LISTEN_HOST,
    port: vars.GATEWAY_PORT,
    logLevel: vars.LOG_LEVEL,
    inventoryUrl: `http://${inventoryHost}:${vars.INVENTORY_PORT}`,
    upstreamTimeoutMs: vars.GATEWAY_UPSTREAM_TIMEOUT_MS,
    confirmTimeoutMs: vars.GATEWAY_CONFIRM_TIMEOUT_MS,
    amqp: amqpConfigFrom(vars),
    bodyLimit: '16kb',
  };
}
