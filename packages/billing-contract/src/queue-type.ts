/*
 * The two ways the worker may declare its queues (RABBITMQ_QUEUE_TYPE):
 * - classic (the default): durable queues without arguments, as always; one node holds them.
 * - quorum: RabbitMQ's replicated queue type (a Raft log on every node of the cluster; a
 *   majority must have a message before it is confirmed). `billing_queue` also gets a delivery
 *   limit and the dead-letter route, so that the broker itself dead-letters a message delivered
 *   more than `deliveryLimit` times without an ack (a poison message that crashes the worker or
 *   keeps being returned). README, "Scaling out: RabbitMQ".
 */
import type { Options } from 'amqplib';
import { z } from 'zod';
import { FatalSetupError } from './amqp-session';

export const QUEUE_TYPES = ['classic', 'quorum'] as const;
export type QueueType = (typeof QUEUE_TYPES)[number];

export const DEFAULT_DELIVERY_LIMIT = 5;

/** RABBITMQ_QUEUE_TYPE and RABBITMQ_DELIVERY_LIMIT: read by the worker only (the gateway declares nothing). */
export const queueTypeEnvShape = {
  RABBITMQ_QUEUE_TYPE: z.enum(QUEUE_TYPES, { error: 'must be classic or quorum' }).default('classic'),
  RABBITMQ_DELIVERY_LIMIT: z.coerce.number().int().min(1).max(1_000_000).default(DEFAULT_DELIVERY_LIMIT),
};

export interface QueueSettings {
  type: QueueType;
  /** Quorum only: deliveries after which the broker dead-letters a message. */
  deliveryLimit: number;
}

/** The declaration options of the orders queue; `deadLetterExchange` takes what exceeds the delivery limit. */
export function ordersQueueOptions(settings: QueueSettings, deadLetterExchange: string, deadLetterRoutingKey: string): Options.AssertQueue {
  if (settings.type === 'classic') return { durable: true };
  return {
    durable: true,
    arguments: {
      'x-queue-type': 'quorum',
      'x-delivery-limit': settings.deliveryLimit,
      // Needs, besides configure on the queue, read on the queue and write on the exchange:
      // billing's patterns grant both (README, "Least privilege in the services").
      'x-dead-letter-exchange': deadLetterExchange,
      'x-dead-letter-routing-key': deadLetterRoutingKey,
    },
  };
}

/** The declaration options of the dead-letter queue: of the same type, with no arguments besides. */
export function deadLetterQueueOptions(settings: QueueSettings): Options.AssertQueue {
  return settings.type === 'classic' ? { durable: true } : { durable: true, arguments: { 'x-queue-type': 'quorum' } };
}

/**
 * The queue exists with another type or other arguments (406 PRECONDITION_FAILED): retrying
 * cannot help, an operator must migrate the queue or change the setting. Ends the worker's start.
 */
export class QueueMismatchError extends FatalSetupError {
  constructor(queue: string, settings: QueueSettings, brokerMessage: string) {
    const wanted = settings.type === 'quorum' ? 'it as a quorum queue' : 'it as a classic queue';
    const type = /x-queue-type/.test(brokerMessage) ? 'with another type' : 'with other arguments';
    super(
      `RabbitMQ queue "${queue}" already exists ${type}: RABBITMQ_QUEUE_TYPE=${settings.type} declares ${wanted}, and RabbitMQ refused it ` +
        `(${brokerMessage}). A queue's type and arguments cannot change in place: migrate it as README, "Scaling out: RabbitMQ", ` +
        `section "Migrating billing_queue from classic to quorum" says, or set RABBITMQ_QUEUE_TYPE (and RABBITMQ_DELIVERY_LIMIT) to what the queue is`,
    );
    this.name = 'QueueMismatchError';
  }
}

/** True for the broker's answer to a declaration that differs from the existing queue. */
export function isInequivalentDeclaration(err: unknown): err is Error {
  const e = err as { code?: unknown; message?: unknown } | null;
  return e?.code === 406 && typeof e.message === 'string' && /PRECONDITION_FAILED - inequivalent arg/.test(e.message);
}

/** The broker's own sentence, without amqplib's "Channel closed by server: 406 (...) with message" wrapper. */
export function brokerReason(err: Error): string {
  const match = /"(PRECONDITION_FAILED - [^"]*)"/.exec(err.message);
  return match?.[1] ?? err.message;
}
