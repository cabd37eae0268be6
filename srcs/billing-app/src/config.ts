import { z } from 'zod';
import {
  envLogLevel,
  envNonNegativeInt,
  envPort,
  envPositiveInt,
  envString,
  parseEnv,
  type DatabaseConfig,
  type Env,
} from '@crud-master/common';
import { amqpConfigFrom, amqpEnvShape, queueTypeEnvShape, type AmqpConfig } from '@crud-master/billing-contract';

export interface BillingConfig {
  listenHost: string;
  port: number;
  logLevel: z.infer<typeof envLogLevel>;
  db: DatabaseConfig;
  amqp: AmqpConfig;
  /** Unacknowledged messages the broker may hand the worker at once. */
  prefetch: number;
  /** Largest insert batch: batchSizeFor(prefetch). */
  batchSize: number;
  /** Batches written at once, each in its own transaction. */
  batchesInFlight: number;
  /** A batch smaller than `batchSize` is written after waiting this long for more (ms). */
  flushIntervalMs: number;
}

const schema = z.object({
  BILLING_LISTEN_HOST: envString.default('0.0.0.0'),
  BILLING_PORT: envPort.default(8090),
  LOG_LEVEL: envLogLevel,
  BILLING_DB_HOST: envString,
  BILLING_DB_PORT: envPort.default(5432),
  BILLING_DB_NAME: envString,
  BILLING_DB_USER: envString,
  BILLING_DB_PASSWORD: envString,
  BILLING_PREFETCH: envPositiveInt.max(65535).default(100),
  BILLING_DB_STATEMENT_TIMEOUT_MS: envNonNegativeInt.default(10_000),
  ...amqpEnvShape('BILLING'),
  ...queueTypeEnvShape,
});

/** Batches the worker writes at once (DeliveryBatcher's maxBatchesInFlight). */
export const BATCHES_IN_FLIGHT = 2;

/**
 * The largest insert batch for a prefetch: a quarter of it. Two batches are being written while
 * the broker already hands over the next two, so PostgreSQL never waits for RabbitMQ to deliver
 * after an ack. With half the prefetch per batch, both batches in flight held every message the
 * broker may send; after each ack the worker waited while the broker delivered the next batch
 * (44 % idle in its profile while draining a backlog; README, "Benchmark").
 */
export function batchSizeFor(prefetch: number): number {
  return Math.max(1, Math.ceil(prefetch / (2 * BATCHES_IN_FLIGHT)));
}

export function readConfig(env: Env): BillingConfig {
  const vars = parseEnv(schema, env);
  return {
    listenHost: vars.BILLING_LISTEN_HOST,
    port: vars.BILLING_PORT,
    logLevel: vars.LOG_LEVEL,
    db: {
      host: vars.BILLING_DB_HOST,
      port: vars.BILLING_DB_PORT,
      database: vars.BILLING_DB_NAME,
      user: vars.BILLING_DB_USER,
      password: vars.BILLING_DB_PASSWORD,
      statementTimeoutMs: vars.BILLING_DB_STATEMENT_TIMEOUT_MS,
    },
    amqp: amqpConfigFrom('BILLING', vars),
    prefetch: vars.BILLING_PREFETCH,
    batchSize: batchSizeFor(vars.BILLING_PREFETCH),
    batchesInFlight: BATCHES_IN_FLIGHT,
    flushIntervalMs: 20,
  };
}
