import { randomUUID } from 'node:crypto';
import * as amqp from 'amqplib';
import type { ChannelModel, ConfirmChannel, Message } from 'amqplib';
import { ServiceUnavailableError, type Logger } from '@crud-master/common';
import {
  RECONNECT_BACKOFF,
  backoffDelay,
  connectOptions,
  describeError,
  sleep,
  type AmqpConfig,
  type BackoffOptions,
} from '@crud-master/billing-contract';
import { MESSAGE_REQUEST_ID_HEADER, assertBillingQueue } from '@crud-master/billing-contract';
import type { RefusalReason } from './metrics';

/** What travels with an order besides its body. */
export interface PublishMeta {
  /** The HTTP request's id: sent in the `x-request-id` AMQP header, logged by the worker. */
  requestId?: string;
  /**
   * The message id to publish under (the client's `Idempotency-Key`); a random UUID when absent.
   * The worker stores each message id once, so the same id sent again is the same order.
   */
  messageId?: string;
}

/**
 * What the billing route needs: put a body on the queue, resolve with its message id once
 * confirmed, reject with an `OrderNotQueuedError` (503) otherwise.
 */
export interface OrderPublisher {
  publish(body: string, meta?: PublishMeta): Promise<string>;
}

export interface PublisherOptions {
  amqp: AmqpConfig;
  /** No confirm within this long: the order is refused with 503 (ms). */
  confirmTimeoutMs: number;
  logger: Logger;
  reconnectBackoff?: BackoffOptions;
}

/** The 503 of an order RabbitMQ did not confirm; `reason` labels gateway_orders_refused_total. */
export class OrderNotQueuedError extends ServiceUnavailableError {
  constructor(
    detail: string,
    readonly reason: RefusalReason,
    retryAfterSeconds = 1,
  ) {
    super(
      `The order was not taken: ${detail}. Send it again later.`,
      'order_not_queued',
      { 'Retry-After': String(retryAfterSeconds) },
    );
  }
}

export function orderNotQueued(detail: string, retryAfterSeconds?: number, reason: RefusalReason = 'unreachable'): OrderNotQueuedError {
  return new OrderNotQueuedError(detail, reason, retryAfterSeconds);
}

interface Link {
  connection: ChannelModel;
  channel: ConfirmChannel;
  /** Message ids the broker returned as unroutable (the queue is gone), until their confirm. */
  returned: Set<string>;
}

/**
 * Owns the gateway's connection and confirm channel to RabbitMQ.
 *
 * - `publish` answers only after the broker's confirm; it fails at once (503) while there is no
 *   channel, instead of holding orders in memory that a crash would lose.
 * - Connection or channel loss is never fatal: every 'error' and 'close' is listened to, and a
 *   background loop reconnects with bounded, jittered exponential backoff, re-declaring the queue.
 * - Backpressure: when the channel's write buffer is full (`publish` returned false) later orders
 *   wait for 'drain', within the same confirm deadline.
 */
export class BillingPublisher implements OrderPublisher {
  private link: Link | undefined;
  private loop: Promise<void> | undefined;
  private readonly closing = new AbortController();
  private lastError: string | undefined = 'not connected yet';
  private blocked: string | undefined;
  /** Set while the channel's buffer is full; resolves on 'drain' (or when the link is lost). */
  private drained: Promise<void> | undefined;

  constructor(private readonly options: PublisherOptions) {}

  /** Starts connecting in the background; the gateway serves (and answers 503 for orders) meanwhile. */
  start(): void {
    this.loop ??= this.run();
  }

  /** For /health: resolves while a channel is open and the broker accepts publishes. */
  async check(): Promise<Record<string, unknown>> {
    if (!this.link) throw new Error(`not connected: ${this.lastError ?? 'connecting'}`);
    if (this.blocked) throw new Error(`the broker blocks publishing: ${this.blocked}`);
    return { queue: this.options.amqp.queue };
  }

  async publish(body: string, meta: PublishMeta = {}): Promise<string> {
    const deadline = Date.now() + this.options.confirmTimeoutMs;
    while (this.drained) await this.waitFor(this.drained, deadline, 'RabbitMQ is not reading fast enough');
    const link = this.link;
    if (!link) throw orderNotQueued(`RabbitMQ is unreachable (${this.lastError ?? 'connecting'})`, 5, 'unreachable');
    if (this.blocked) throw orderNotQueued(`RabbitMQ refuses new messages for now (${this.blocked})`, 5, 'blocked');

    const messageId = meta.messageId ?? randomUUID();
    const confirmed = new Promise<void>((resolve, reject) => {
      try {
        const writable = link.channel.sendToQueue(
          this.options.amqp.queue,
          Buffer.from(body, 'utf8'),
          {
            persistent: true,
            // Unroutable (billing_queue deleted behind our back): the broker returns the message
            // before confirming it, instead of confirming a message it dropped.
            mandatory: true,
            messageId,
            contentType: 'application/json',
            timestamp: Math.floor(Date.now() / 1000),
            appId: 'api-gateway',
            // The request id goes in a header only, not in correlationId: that property means
            // "the request this is a reply to" in AMQP RPC, and the worker hashes it into the
            // derived id of messages published without a message id.
            ...(meta.requestId ? { headers: { [MESSAGE_REQUEST_ID_HEADER]: meta.requestId } } : {}),
          },
          (err: unknown) => {
            const unroutable = link.returned.delete(messageId);
            if (err) reject(orderNotQueued('RabbitMQ did not accept it', undefined, 'not_confirmed'));
            else if (unroutable) reject(orderNotQueued(`${this.options.amqp.queue} does not exist on RabbitMQ; it is being declared again`, 1, 'unroutable'));
            else resolve();
          },
        );
        if (!writable) this.awaitDrain(link);
      } catch (err) {
        // The channel closed between our check and the write.
        reject(orderNotQueued(`RabbitMQ is unreachable (${describeError(err)})`, 5, 'unreachable'));
      }
    });
    await this.waitFor(confirmed, deadline, `RabbitMQ did not confirm it within ${this.options.confirmTimeoutMs} ms`);
    return messageId;
  }

  /** Stops reconnecting and closes the channel and the connection (after pending confirms). */
  async close(): Promise<void> {
    this.closing.abort();
    const link = this.link;
    this.link = undefined;
    if (link) {
      // Orders still waiting for their confirm get it (or their 503) before the channel goes.
      const settled = new AbortController();
      await Promise.race([
        link.channel.waitForConfirms().catch(() => undefined),
        sleep(this.options.confirmTimeoutMs, settled.signal),
      ]);
      settled.abort();
      await link.channel.close().catch(() => undefined);
      await link.connection.close().catch(() => undefined);
    }
    await this.loop;
  }

  /** Waits for `promise` until `deadline`; past it, the order is refused. */
  private async waitFor(promise: Promise<void>, deadline: number, timeoutDetail: string): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(orderNotQueued(timeoutDetail, undefined, 'timeout')), Math.max(0, deadline - Date.now()));
    });
    try {
      await Promise.race([promise, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private awaitDrain(link: Link): void {
    if (this.drained) return;
    const drained: Promise<void> = new Promise<void>((resolve) => {
      const done = (): void => {
        link.channel.off('drain', done);
        link.channel.off('close', done);
        if (this.drained === drained) this.drained = undefined;
        resolve();
      };
      link.channel.on('drain', done);
      link.channel.on('close', done);
    });
    this.drained = drained;
  }

  private async run(): Promise<void> {
    const { logger } = this.options;
    let attempt = 0;
    while (!this.closing.signal.aborted) {
      try {
        const { link, lost } = await this.open();
        if (this.closing.signal.aborted) {
          await link.connection.close().catch(() => undefined);
          return;
        }
        attempt = 0;
        this.link = link;
        this.lastError = undefined;
        logger.info({ queue: this.options.amqp.queue }, 'connected to RabbitMQ');
        this.lastError = await lost;
        if (this.closing.signal.aborted) return;
        logger.warn({ reason: this.lastError }, 'lost RabbitMQ; orders get 503 until it is back');
      } catch (err) {
        this.lastError = describeError(err);
        logger.warn({ err: this.lastError, attempt }, 'cannot reach RabbitMQ');
      }
      await sleep(backoffDelay(attempt++, this.options.reconnectBackoff ?? RECONNECT_BACKOFF), this.closing.signal);
    }
  }

  /** Resolves with a reason once the link's channel or connection has closed. */
  private watch(link: Link): Promise<string> {
    return new Promise((resolve) => {
      const gone = (reason: string): void => {
        if (this.link === link) this.link = undefined;
        this.blocked = undefined;
        resolve(reason);
        // A channel closed by the broker (e.g. a failed declaration) leaves the connection open.
        void link.connection.close().catch(() => undefined);
      };
      link.channel.on('close', () => gone('channel closed'));
      link.connection.on('close', (err?: Error) => gone(err ? `connection closed: ${describeError(err)}` : 'connection closed'));
    });
  }

  private async open(): Promise<{ link: Link; lost: Promise<string> }> {
    const { logger } = this.options;
    const connection = await amqp.connect(connectOptions(this.options.amqp), {
      timeout: 5000,
      clientProperties: { connection_name: 'api-gateway' },
    });
    // Listeners first: an 'error' event without a listener would crash the gateway.
    connection.on('error', (err: Error) => logger.warn({ err: describeError(err) }, 'RabbitMQ connection error'));
    connection.on('blocked', (reason: string) => {
      this.blocked = reason || 'resource alarm';
      logger.warn({ reason }, 'RabbitMQ blocked publishing');
    });
    connection.on('unblocked', () => {
      this.blocked = undefined;
      logger.info('RabbitMQ unblocked publishing');
    });
    try {
      const channel = await connection.createConfirmChannel();
      channel.on('error', (err: Error) => logger.warn({ err: describeError(err) }, 'RabbitMQ channel error'));
      const link: Link = { connection, channel, returned: new Set() };
      const lost = this.watch(link);
      channel.on('return', (message: Message) => {
        link.returned.add(String(message.properties.messageId));
        logger.error({ queue: this.options.amqp.queue }, 'an order was returned as unroutable; declaring the queue again');
        assertBillingQueue(channel, this.options.amqp.queue).catch(() => undefined);
      });
      await assertBillingQueue(channel, this.options.amqp.queue);
      return { link, lost };
    } catch (err) {
      await connection.close().catch(() => undefined);
      throw err;
    }
  }
}
