/*
 * Connecting to RabbitMQ and retrying, for the gateway's publisher and the worker's consumer.
 */
import type { Options } from 'amqplib';
import type { BrokerNode } from './broker-nodes';
import type { QueueType } from './queue-type';

export interface AmqpConfig {
  /** The first node (RABBITMQ_HOST's first entry). */
  host: string;
  port: number;
  /** Every node, in the order they are tried (RABBITMQ_HOST); `host`/`port` alone when absent. */
  nodes?: readonly BrokerNode[];
  user: string;
  password: string;
  vhost: string;
  queue: string;
  /** How the worker declares its queues (RABBITMQ_QUEUE_TYPE); classic when absent. */
  queueType?: QueueType;
  /** A quorum queue's x-delivery-limit (RABBITMQ_DELIVERY_LIMIT). */
  deliveryLimit?: number;
}

/** The nodes to connect to, in order. */
export function brokerNodesOf(config: AmqpConfig): readonly BrokerNode[] {
  return config.nodes && config.nodes.length > 0 ? config.nodes : [{ host: config.host, port: config.port }];
}

/** Connection options for amqplib. The object form needs no URL-encoding of the vhost `/`. */
export function connectOptions(config: AmqpConfig, heartbeatSeconds = 10, node: BrokerNode = config): Options.Connect {
  return {
    protocol: 'amqp',
    hostname: node.host,
    port: node.port,
    username: config.user,
    password: config.password,
    vhost: config.vhost,
    // A broker that vanishes without closing the socket is noticed within two heartbeats.
    heartbeat: heartbeatSeconds,
  };
}

export interface BackoffOptions {
  /** Delay before the first retry (ms). */
  initialMs: number;
  /** No delay is ever longer than this (ms). */
  maxMs: number;
  /** Growth per attempt; 2 doubles. */
  factor?: number;
  /** Share of each delay that is random (0..1), so that many clients do not retry in step. */
  jitter?: number;
}

export const RECONNECT_BACKOFF: BackoffOptions = { initialMs: 100, maxMs: 5000, factor: 2, jitter: 0.5 };

/** Delay before retry number `attempt` (0-based): exponential, capped at `maxMs`, jittered below the cap. */
export function backoffDelay(attempt: number, options: BackoffOptions, random: () => number = Math.random): number {
  const factor = options.factor ?? 2;
  const jitter = Math.min(1, Math.max(0, options.jitter ?? 0.5));
  const base = Math.min(options.maxMs, options.initialMs * factor ** Math.min(attempt, 64));
  return Math.round(base * (1 - jitter) + base * jitter * random());
}

/** Resolves after `ms`, or at once when `signal` aborts; never rejects. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** A short description of an error for logs and health reports (never a stack). */
export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return code !== undefined && !err.message.includes(String(code)) ? `${err.message} (${String(code)})` : err.message;
  }
  return String(err);
}
