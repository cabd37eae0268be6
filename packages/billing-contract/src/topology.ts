/*
 * RabbitMQ topology of the billing pipeline. The worker declares it (its RabbitMQ user has the
 * configure right on these names); the gateway only checks it passively, which needs no right,
 * and publishes.
 *
 * Each queue has a durable direct exchange of the same name bound to it (exchanges and queues
 * are separate namespaces): the gateway publishes orders to the exchange `billing_queue`, the
 * worker its dead letters to the exchange `billing_queue.dead`. So a user's write permission
 * names exactly the one exchange it may publish to (`^billing_queue$` for the gateway), where
 * the default exchange (`amq.default`) would let it publish to any queue of the vhost, dead
 * letters included. README, "Least privilege", lists the permission patterns.
 *
 * The worker dead-letters what can never be an order by publishing it itself, with the reason in
 * a header, and acks the original only once the broker has confirmed the dead letter. As a classic
 * queue (the default) `billing_queue` carries no arguments, which also matches one an operator (or
 * an older release) declared by hand as a plain durable queue. As a quorum queue (queue-type.ts)
 * it also gets a delivery limit, past which the broker dead-letters a message to the same route.
 */
import type { Channel, Options } from 'amqplib';
import { isSaneRequestId } from '@crud-master/common';
import { QueueMismatchError, brokerReason, deadLetterQueueOptions, isInequivalentDeclaration, ordersQueueOptions, type QueueSettings } from './queue-type';

/** The options a classic `billing_queue` is declared with. */
export const BILLING_QUEUE_OPTIONS: Readonly<Options.AssertQueue> = Object.freeze({ durable: true });

const CLASSIC: QueueSettings = { type: 'classic', deliveryLimit: 0 };

/** Messages that can never become an order, kept for a human to look at. */
export function deadLetterQueueOf(queue: string): string {
  return `${queue}.dead`;
}

/** The exchange orders are published to: a direct exchange named as the queue, bound to it with the queue's name. */
export function ordersExchangeOf(queue: string): string {
  return queue;
}

/** The exchange dead letters are published to: named as the dead-letter queue, bound to it. */
export function deadLetterExchangeOf(queue: string): string {
  return deadLetterQueueOf(queue);
}

/** A RabbitMQ user's permission patterns (regular expressions over exchange and queue names). */
export interface RabbitPermissions {
  configure: string;
  write: string;
  read: string;
}

/**
 * Exactly what each side's RabbitMQ user may do on the vhost, for a queue name (`billing_queue`
 * in `.env`): provisioning applies these and the tests prove them.
 * - gateway: publish to the orders exchange; declare, bind, consume, purge, delete nothing.
 * - billing: declare both queues and their exchanges, bind them (write on a queue, read on an
 *   exchange), consume, publish dead letters. Both names are its own, nothing else.
 */
export function rabbitPermissions(queue: string): { gateway: RabbitPermissions; billing: RabbitPermissions } {
  const name = queue.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const own = `^${name}(\\.dead)?$`;
  return {
    gateway: { configure: '^$', write: `^${name}$`, read: '^$' },
    billing: { configure: own, write: own, read: own },
  };
}

/** Header of a dead letter saying why the worker refused it. */
export const DEAD_LETTER_REASON_HEADER = 'x-billing-dead-letter-reason';
/** Header of a dead letter naming the queue it came from. */
export const DEAD_LETTER_QUEUE_HEADER = 'x-billing-original-queue';

type Declaring = Pick<Channel, 'assertQueue' | 'assertExchange' | 'bindQueue'>;

/** One durable queue with its durable direct exchange of the same name, bound with that name. */
async function declareRoute(channel: Declaring, name: string, options: Options.AssertQueue): Promise<void> {
  await channel.assertExchange(name, 'direct', { durable: true });
  await channel.assertQueue(name, options);
  await channel.bindQueue(name, name, name);
}

/**
 * The worker's declaration, re-run on every session: `billing_queue.dead` and `billing_queue`,
 * each with its exchange (the dead-letter route first: a quorum `billing_queue` names it). Needs
 * configure on both names, write on both queues and read on both exchanges (a binding's rights).
 * A queue that exists with another type or other arguments closes the channel with 406: that
 * becomes a QueueMismatchError, which ends the worker's start with what to do.
 */
export async function declareBillingTopology(channel: Declaring, queue: string, settings: QueueSettings = CLASSIC): Promise<void> {
  const dead = deadLetterQueueOf(queue);
  try {
    await declareRoute(channel, dead, deadLetterQueueOptions(settings));
    await declareRoute(channel, queue, ordersQueueOptions(settings, deadLetterExchangeOf(queue), dead));
  } catch (err) {
    if (isInequivalentDeclaration(err)) throw new QueueMismatchError(/for queue '([^']*)'/.exec(err.message)?.[1] ?? queue, settings, brokerReason(err));
    throw err;
  }
}

/**
 * The publisher's check, passive (no right needed): the orders exchange and the queue exist.
 * A missing one closes the channel with 404 NOT_FOUND, so call it on a channel that may close.
 */
export async function checkBillingTopology(channel: Pick<Channel, 'checkQueue' | 'checkExchange'>, queue: string): Promise<void> {
  await channel.checkExchange(ordersExchangeOf(queue));
  await channel.checkQueue(queue);
}

/**
 * AMQP header carrying the id of the HTTP request that produced the message (the gateway's
 * `X-Request-Id`), so that the worker's log lines for the message can be matched to the
 * gateway's. Lower case, like HTTP/2 header names; AMQP header names are case-sensitive.
 */
export const MESSAGE_REQUEST_ID_HEADER = 'x-request-id';

/** The request id in a message's headers, or undefined when absent or not a sane id. */
export function requestIdOfHeaders(headers: Record<string, unknown> | undefined): string | undefined {
  const value = headers?.[MESSAGE_REQUEST_ID_HEADER];
  const text = Buffer.isBuffer(value) ? value.toString('utf8') : value;
  return isSaneRequestId(text) ? text : undefined;
}
