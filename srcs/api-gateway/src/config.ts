import { z } from 'zod';
import { amqpConfigFrom, amqpEnvShape, type AmqpConfig } from '@crud-master/billing-contract';
import {
  ConfigError,
  envLogLevel,
  envPort,
  envPositiveInt,
  envString,
  parseEnv,
  serverLimitsEnvShape,
  serverLimitsFrom,
  type Env,
  type ServerLimits,
} from '@crud-master/common';
import type { LimiterOptions } from './shed';
import { inventoryUrlsFrom } from './upstream/addresses';

export type { AmqpConfig };

export interface GatewayConfig {
  listenHost: string;
  port: number;
  /** The internal listener: GET /metrics and the detailed GET /health, never on the public port. */
  admin: { host: string; port: number };
  logLevel: z.infer<typeof envLogLevel>;
  /** Base URL of the inventory app, e.g. http://192.168.56.11:8080 (the first of `inventoryUrls`). */
  inventoryUrl: string;
  /** Every inventory instance (INVENTORY_HOST, comma-separated); one in the classic set-up. */
  inventoryUrls: string[];
  /** With several instances, each one's GET /health this often (ms). */
  upstreamHealthIntervalMs: number;
  /** How long to wait for the inventory before answering 504. */
  upstreamTimeoutMs: number;
  /** How long to wait for RabbitMQ's publisher confirm before answering 503. */
  confirmTimeoutMs: number;
  amqp: AmqpConfig;
  /** Largest request body accepted (POST /api/billing, and forwarded to the inventory). */
  bodyLimit: string;
  /** The public server's timeouts and connection cap. */
  limits: ServerLimits;
  /** A request body must have arrived this long after its headers, else 408 (ms). */
  bodyTimeoutMs: number;
  /** Requests at the inventory at once (the agent's sockets), and how many may wait, how long. */
  upstream: LimiterOptions;
}

/**
 * The public server's defaults: a client gets 10 s for its headers and 10 s more for its body,
 * an idle keep-alive connection is held 5 s, a connection where nothing moves 30 s (a client that
 * stopped reading). Node's requestTimeout (30 s) only backs up the body deadline.
 */
export const GATEWAY_SERVER_LIMITS: ServerLimits = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  idleTimeoutMs: 30_000,
  maxConnections: 10_000,
};

export const GATEWAY_BODY_TIMEOUT_MS = 10_000;

/** The gateway closes a pooled inventory connection idle this long: well before the inventory's 65 s keep-alive, so never one the inventory is closing. */
export const UPSTREAM_IDLE_MS = 30_000;

/**
 * 256 requests at the inventory at once; the others wait at most 1 s each, then 503. The queue
 * is as long as the connection cap (one request per connection at a time), so the gateway reads
 * every request it is sent and sheds from its own queue: a request left unread in the kernel keeps
 * its socket ready, and with a thousand ready sockets every epoll wake-up is a thousand events long
 * while libuv accepts one new connection per wake-up, so new connections starve (README, "Load").
 */
export const GATEWAY_UPSTREAM: LimiterOptions = { max: 256, queue: 10_000, queueTimeoutMs: 1000 };

const schema = z.object({
  GATEWAY_LISTEN_HOST: envString.default('0.0.0.0'),
  GATEWAY_PORT: envPort,
  GATEWAY_ADMIN_HOST: envString.default('127.0.0.1'),
  GATEWAY_ADMIN_PORT: envPort.default(9100),
  LOG_LEVEL: envLogLevel,
  INVENTORY_HOST: envString,
  INVENTORY_PORT: envPort.default(8080),
  GATEWAY_UPSTREAM_TIMEOUT_MS: envPositiveInt.default(5000),
  GATEWAY_UPSTREAM_HEALTH_INTERVAL_MS: envPositiveInt.default(1000),
  GATEWAY_CONFIRM_TIMEOUT_MS: envPositiveInt.default(5000),
  ...serverLimitsEnvShape('GATEWAY', GATEWAY_SERVER_LIMITS),
  GATEWAY_BODY_TIMEOUT_MS: envPositiveInt.default(GATEWAY_BODY_TIMEOUT_MS),
  GATEWAY_UPSTREAM_MAX_SOCKETS: envPositiveInt.default(GATEWAY_UPSTREAM.max),
  GATEWAY_UPSTREAM_QUEUE: envPositiveInt.default(GATEWAY_UPSTREAM.queue),
  GATEWAY_UPSTREAM_QUEUE_TIMEOUT_MS: envPositiveInt.default(GATEWAY_UPSTREAM.queueTimeoutMs),
  ...amqpEnvShape('GATEWAY'),
});

/**
 * The idle cut is a socket timeout: it also runs while the gateway itself waits (for a slot, the
 * inventory or RabbitMQ's confirm), so it must outlast those waits or it would cut healthy requests.
 */
function checkIdleTimeout(vars: z.infer<typeof schema>): void {
  const idle = vars.GATEWAY_IDLE_TIMEOUT_MS;
  const longestWait = Math.max(vars.GATEWAY_UPSTREAM_QUEUE_TIMEOUT_MS + vars.GATEWAY_UPSTREAM_TIMEOUT_MS, vars.GATEWAY_CONFIRM_TIMEOUT_MS);
  if (idle !== 0 && idle <= longestWait + 1000) {
    throw new ConfigError([
      `GATEWAY_IDLE_TIMEOUT_MS: ${idle} must exceed the longest wait of a request by more than 1000 ms (${longestWait} ms: GATEWAY_UPSTREAM_QUEUE_TIMEOUT_MS + GATEWAY_UPSTREAM_TIMEOUT_MS, or GATEWAY_CONFIRM_TIMEOUT_MS), or be 0`,
    ]);
  }
}

export function readConfig(env: Env): GatewayConfig {
  const vars = parseEnv(schema, env);
  checkIdleTimeout(vars);
  const inventoryUrls = inventoryUrlsFrom(vars.INVENTORY_HOST, vars.INVENTORY_PORT);
  return {
    listenHost: vars.GATEWAY_LISTEN_HOST,
    port: vars.GATEWAY_PORT,
    admin: { host: vars.GATEWAY_ADMIN_HOST, port: vars.GATEWAY_ADMIN_PORT },
    logLevel: vars.LOG_LEVEL,
    inventoryUrl: inventoryUrls[0],
    inventoryUrls,
    upstreamHealthIntervalMs: vars.GATEWAY_UPSTREAM_HEALTH_INTERVAL_MS,
    upstreamTimeoutMs: vars.GATEWAY_UPSTREAM_TIMEOUT_MS,
    confirmTimeoutMs: vars.GATEWAY_CONFIRM_TIMEOUT_MS,
    amqp: amqpConfigFrom('GATEWAY', vars),
    bodyLimit: '16kb',
    limits: serverLimitsFrom('GATEWAY', vars),
    bodyTimeoutMs: vars.GATEWAY_BODY_TIMEOUT_MS,
    upstream: {
      max: vars.GATEWAY_UPSTREAM_MAX_SOCKETS,
      queue: vars.GATEWAY_UPSTREAM_QUEUE,
      queueTimeoutMs: vars.GATEWAY_UPSTREAM_QUEUE_TIMEOUT_MS,
    },
  };
}
