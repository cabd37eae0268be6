import { randomUUID } from 'node:crypto';
import type { Message, Options } from 'amqplib';
import { ServiceUnavailableError, settleWithin, withTimeout } from '@crud-master/common';
import {
  MESSAGE_REQUEST_ID_HEADER,
  ReconnectingSession,
  checkBillingTopology,
  describeError,
  ordersExchangeOf,
  type AmqpSession,
  type BrokerOptions,
} from '@crud-master/billing-contract';
import { DeadlineQueue, type Deadlined } from '../deadline-queue';
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

export interface PublisherOptions extends BrokerOptions {
  /** No confirm within this long: the order is refused with 503 (ms). */
  confirmTimeoutMs: number;
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

/** The publisher's side of one session. */
interface Publishing {
  session: AmqpSession;
  /** Message ids the broker returned as unroutable (the queue is gone), until their confirm. */
  returned: Set<string>;
}

/**
 * Owns the gateway's confirm channel to RabbitMQ (one ReconnectingSession: reconnects with
 * backoff). The gateway's RabbitMQ user may only publish to the orders exchange: it never
 * declares anything, it checks the topology the worker declares (passively) on every session.
 *
 * - `publish` answers only after the broker's confirm; it fails at once (503) while there is no
 *   channel, instead of holding orders in memory that a crash would lose.
 * - Backpressure: when the channel's write buffer is full (`publish` returned false) later orders
 *   wait for 'drain', within the same confirm deadline.
 */
export class BillingPublisher implements OrderPublisher {
  private readonly broker: ReconnectingSession<Publishing>;
  /** Set while the channel's buffer is full; resolves on 'drain' (or when the session is lost). */
  private drained: Promise<void> | undefined;
  /** Every order waiting for its confirm, and the one timer that refuses those it never comes for. */
  private readonly deadlines = new DeadlineQueue<PendingOrder>();
  private readonly exchange: string;
  private readonly timeoutDetail: string;

  constructor(private readonly options: PublisherOptions) {
    this.broker = new ReconnectingSession(options, 'api-gateway', (session) => this.setup(session));
    this.exchange = ordersExchangeOf(options.amqp.queue);
    this.timeoutDetail = `RabbitMQ did not confirm it within ${options.confirmTimeoutMs} ms`;
  }

  /** Starts connecting in the background; the gateway serves (and answers 503 for orders) meanwhile. */
  start(): void {
    this.broker.start();
  }

  /** For /health: resolves while a channel is open and the broker accepts publishes. */
  async health(): Promise<Record<string, unknown>> {
    const open = this.broker.current;
    if (!open) throw new Error(`not connected: ${this.broker.lastError ?? 'connecting'}`);
    if (open.session.blocked) throw new Error(`the broker blocks publishing: ${open.session.blocked}`);
    return { queue: this.options.amqp.queue };
  }

  publish(body: string, meta: PublishMeta = {}): Promise<string> {
    const deadline = Date.now() + this.options.confirmTimeoutMs;
    return this.drained ? this.publishAfterDrain(body, meta, deadline) : this.send(body, meta, deadline);
  }

  /** Stops reconnecting and closes the channel and the connection (after pending confirms). */
  async close(): Promise<void> {
    // Orders still waiting for their confirm get it (or their 503) before the channel goes.
    await this.broker.close(({ session }) => settleWithin(session.channel.waitForConfirms(), this.options.confirmTimeoutMs));
    this.deadlines.stop();
  }

  private async publishAfterDrain(body: string, meta: PublishMeta, deadline: number): Promise<string> {
    while (this.drained) await this.waitFor(this.drained, deadline, 'RabbitMQ is not reading fast enough');
    return this.send(body, meta, deadline);
  }

  /** Resolves with the message id once the broker confirmed the message; rejects with the 503 otherwise. */
  private send(body: string, meta: PublishMeta, deadline: number): Promise<string> {
    const open = this.broker.current;
    // The client learns what happened, not the broker's address or error text: those are in the
    // log (the session's 'cannot reach RabbitMQ' lines) and on the admin listener's /health.
    if (!open) return Promise.reject(new OrderNotQueuedError('RabbitMQ is unreachable', 'unreachable', 5));
    if (open.session.blocked) return Promise.reject(new OrderNotQueuedError('RabbitMQ refuses new messages for now', 'blocked', 5));
    const messageId = meta.messageId ?? randomUUID();
    return new Promise<string>((resolve, reject) => {
      const order = new PendingOrder(resolve, reject, messageId, deadline, open.returned, this.deadlines, this.timeoutDetail);
      try {
        const { session } = open;
        const content = Buffer.from(body, 'utf8');
        const writable = session.channel.publish(this.exchange, this.options.amqp.queue, content, messageProperties(messageId, meta.requestId), order.confirmed);
        this.deadlines.add(order);
        if (!writable) this.awaitDrain(session);
      } catch (err) {
        // The channel closed between our check and the write.
        this.options.logger.warn({ err: describeError(err) }, 'publishing an order failed: the channel closed');
        reject(new OrderNotQueuedError('RabbitMQ is unreachable', 'unreachable', 5));
      }
    });
  }

  /** Waits for `promise` until `deadline`; past it, the order is refused. */
  private waitFor(promise: Promise<void>, deadline: number, timeoutDetail: string): Promise<void> {
    return withTimeout(promise, deadline - Date.now(), () => new OrderNotQueuedError(timeoutDetail, 'timeout'));
  }

  private awaitDrain(session: AmqpSession): void {
    if (this.drained) return;
    const drained: Promise<void> = new Promise<void>((resolve) => {
      const done = (): void => {
        session.channel.off('drain', done);
        session.ended.removeEventListener('abort', done);
        if (this.drained === drained) this.drained = undefined;
        resolve();
      };
      session.channel.on('drain', done);
      session.ended.addEventListener('abort', done);
    });
    this.drained = drained;
  }

  /**
   * Runs on every new session: checks that the worker's topology exists (a missing exchange or
   * queue fails the session, which is retried with backoff; orders get 503 meanwhile), and
   * counts returned (unroutable) messages, which are answered 503, never 200.
   */
  private async setup(session: AmqpSession): Promise<Publishing> {
    const { logger, amqp: config } = this.options;
    const returned = new Set<string>();
    session.channel.on('return', (message: Message) => {
      returned.add(String(message.properties.messageId));
      logger.error({ queue: config.queue }, 'an order was returned as unroutable: no queue is bound to the orders exchange');
    });
    await checkBillingTopology(session.channel, config.queue);
    return { session, returned };
  }
}

function messageProperties(messageId: string, requestId: string | undefined): Options.Publish {
  const properties: Options.Publish = {
    persistent: true,
    // Unroutable (billing_queue deleted or unbound behind our back): the broker returns the
    // message before confirming it, instead of confirming a message it dropped.
    mandatory: true,
    messageId,
    contentType: 'application/json',
    timestamp: Math.floor(Date.now() / 1000),
    appId: 'api-gateway',
  };
  // The request id goes in a header only, not in correlationId: that property means "the
  // request this is a reply to" in AMQP RPC, and the worker hashes it into the derived id of
  // messages published without a message id.
  if (requestId) properties.headers = { [MESSAGE_REQUEST_ID_HEADER]: requestId };
  return properties;
}

/** One order between its publish and its confirm (or its deadline): the only object it costs. */
class PendingOrder implements Deadlined {
  settled = false;

  constructor(
    private readonly resolve: (messageId: string) => void,
    private readonly reject: (err: Error) => void,
    readonly messageId: string,
    readonly deadline: number,
    private readonly returned: Set<string>,
    private readonly deadlines: DeadlineQueue<PendingOrder>,
    private readonly timeoutDetail: string,
  ) {}

  /** amqplib's confirm callback: the broker's ack (null) or nack (an error). */
  readonly confirmed = (err: unknown): void => {
    const unroutable = this.returned.delete(this.messageId);
    if (this.settled) return; // refused at its deadline already
    this.settled = true;
    if (err) this.reject(new OrderNotQueuedError('RabbitMQ did not accept it', 'not_confirmed'));
    else if (unroutable) this.reject(new OrderNotQueuedError('the billing queue is not bound on RabbitMQ (billing declares it when it starts)', 'unroutable', 5));
    else this.resolve(this.messageId);
    this.deadlines.settle();
  };

  expire(): void {
    if (this.settled) return;
    this.settled = true;
    this.reject(new OrderNotQueuedError(this.timeoutDetail, 'timeout'));
  }
}
