import type { ChannelModel } from 'amqplib';
import { withTimeout } from '@crud-master/common';
import type { Registry } from 'prom-client';
import {
  DEFAULT_DELIVERY_LIMIT,
  ReconnectingSession,
  declareBillingTopology,
  deadLetterQueueOf,
  type AmqpSession,
  type BackoffOptions,
  type BrokerOptions,
} from '@crud-master/billing-contract';
import { batchCounts, createBillingMetrics, type BillingMetrics } from '../metrics';
import { DeliveryBatcher, type BatcherOptions } from './delivery-batcher';

export interface ConsumerOptions extends BrokerOptions, Pick<BatcherOptions, 'batchSize' | 'flushIntervalMs' | 'orders'> {
  /** Unacknowledged messages the broker may hand over at once (at least `batchSize`). */
  prefetch: number;
  /** Batches written at once, each in its own transaction; acknowledged in delivery order (default 2). */
  maxBatchesInFlight?: number;
  /** Delays between attempts to write a batch while the database fails. */
  retryBackoff?: BackoffOptions;
  /** How long stop() waits for the batch in hand to be written before giving it back (ms). */
  stopTimeoutMs?: number;
  /** Where the message metrics and the queue depth gauges are registered (GET /metrics); a private registry when absent. */
  registry?: Registry;
}

const DB_RETRY_BACKOFF: BackoffOptions = { initialMs: 100, maxMs: 3000, factor: 2, jitter: 0.5 };
/** A queue depth the broker does not report within this long is unknown (ms). */
const DEPTH_TIMEOUT_MS = 2000;

/**
 * Consumes `billing_queue` with manual acknowledgement, on one ReconnectingSession: a connection
 * or channel loss ends the session, its unacknowledged messages go back to the queue (the broker
 * redelivers them), and it reconnects with backoff until stop(). Each session's deliveries are
 * written in batches by a DeliveryBatcher.
 *
 * While the database fails the batch in hand is retried with backoff and nothing is acknowledged:
 * the prefetch limit stops the broker from handing over more, so consumption pauses by itself.
 */
export class BillingConsumer {
  private readonly metrics: BillingMetrics;
  private readonly broker: ReconnectingSession<DeliveryBatcher>;

  constructor(private readonly options: ConsumerOptions) {
    const { queue } = options.amqp;
    this.metrics = createBillingMetrics(options.registry, {
      queue: () => this.queueDepth(queue),
      deadLetterQueue: () => this.queueDepth(deadLetterQueueOf(queue)),
    });
    this.broker = new ReconnectingSession(options, 'billing-app', (session) => this.setup(session));
  }

  /** Starts connecting in the background; a broker that is not up yet is retried, never fatal. */
  start(): void {
    this.broker.start();
  }

  /**
   * Resolves with the error when the broker refused the topology in a way no retry fixes (the
   * queue exists with another type: QueueMismatchError); the consumer has stopped then.
   */
  get fatal(): Promise<Error> {
    return this.broker.fatal;
  }

  /** For /health: resolves with details while consuming, throws with the reason otherwise. */
  async health(): Promise<Record<string, unknown>> {
    const batcher = this.broker.current;
    if (!batcher?.consuming) throw new Error(`not consuming: ${this.broker.lastError ?? 'starting'}`);
    return {
      queue: this.options.amqp.queue,
      ...(await batchCounts(this.metrics)),
      ...(batcher.writeError ? { writeError: batcher.writeError } : {}),
    };
  }

  /** Messages ready in `queue`, asked of the broker now; rejects while there is no connection. */
  async queueDepth(queue: string): Promise<number> {
    const batcher = this.broker.current;
    if (!batcher) throw new Error(`not connected: ${this.broker.lastError ?? 'starting'}`);
    return withTimeout(checkQueue(batcher.session.connection, queue), DEPTH_TIMEOUT_MS, () => new Error(`no answer from the broker within ${DEPTH_TIMEOUT_MS} ms`));
  }

  /**
   * Graceful stop: cancel the consumer, write and acknowledge what is in hand (bounded by
   * `stopTimeoutMs`; what cannot be written goes back to the queue unacknowledged), then close
   * the channel and the connection.
   */
  async stop(): Promise<void> {
    await this.broker.close((batcher) => batcher.drain(this.options.stopTimeoutMs ?? 5000));
  }

  /** Runs on every new session: declare both queues and their exchanges, set the prefetch, start consuming. */
  private async setup(session: AmqpSession): Promise<DeliveryBatcher> {
    const { amqp: config, logger } = this.options;
    const batcher = new DeliveryBatcher(session, {
      queue: config.queue,
      batchSize: this.options.batchSize,
      flushIntervalMs: this.options.flushIntervalMs,
      maxBatchesInFlight: Math.max(1, this.options.maxBatchesInFlight ?? 2),
      orders: this.options.orders,
      logger,
      metrics: this.metrics,
      retryBackoff: this.options.retryBackoff ?? DB_RETRY_BACKOFF,
    });
    await declareBillingTopology(session.channel, config.queue, {
      type: config.queueType ?? 'classic',
      deliveryLimit: config.deliveryLimit ?? DEFAULT_DELIVERY_LIMIT,
    });
    await session.channel.prefetch(this.options.prefetch);
    await batcher.consume();
    logger.info({ queue: config.queue, prefetch: this.options.prefetch }, 'consuming');
    return batcher;
  }
}

/**
 * Messages ready in `queue`: a passive declare on a short-lived channel of the connection. Not
 * on the consuming channel: checking a queue that was deleted closes the channel (404), which
 * would hand every unacknowledged message back to the broker.
 */
async function checkQueue(connection: ChannelModel, queue: string): Promise<number> {
  const check = (async () => {
    const channel = await connection.createChannel();
    channel.on('error', () => undefined); // 404 for a missing queue: the check fails, nothing else
    try {
      return (await channel.checkQueue(queue)).messageCount;
    } finally {
      await channel.close().catch(() => undefined);
    }
  })();
  check.catch(() => undefined); // a late failure after the timeout is nobody's business
  return check;
}
