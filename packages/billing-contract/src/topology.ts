/*
 * RabbitMQ topology of the billing pipeline, declared by the gateway and the worker alike: a
 * declaration that differs (durability, arguments) closes the channel with 406
 * PRECONDITION_FAILED, so both import these options from here.
 *
 * `billing_queue` carries no arguments (no x-dead-letter-exchange): the worker dead-letters by
 * publishing to `<queue>.dead` itself, with the reason in a header, and acks the original only
 * once the broker has confirmed the dead letter. A queue without arguments also matches one that
 * an operator (or an older release) declared by hand as a plain durable queue.
 */
import type { Channel, Options } from 'amqplib';
import { isSaneRequestId } from '@crud-master/common';

/** The options both sides declare `billing_queue` with. */
export const BILLING_QUEUE_OPTIONS: Readonly<Options.AssertQueue> = Object.freeze({ durable: true });

/** Messages that can never become an order, kept for a human to look at. */
export function deadLetterQueueOf(queue: string): string {
  return `${queue}.dead`;
}

/** Header of a dead letter saying why the worker refused it. */
export const DEAD_LETTER_REASON_HEADER = 'x-billing-dead-letter-reason';
/** Header of a dead letter naming the queue it came from. */
export const DEAD_LETTER_QUEUE_HEADER = 'x-billing-original-queue';

export async function assertBillingQueue(channel: Pick<Channel, 'assertQueue'>, queue: string): Promise<void> {
  await channel.assertQueue(queue, BILLING_QUEUE_OPTIONS);
}

export async function assertDeadLetterQueue(channel: Pick<Channel, 'assertQueue'>, queue: string): Promise<void> {
  await channel.assertQueue(deadLetterQueueOf(queue), { durable: true });
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
