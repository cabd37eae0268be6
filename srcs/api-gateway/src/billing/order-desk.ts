import { ValidationError, isSaneRequestId, stringifyJson, type Logger } from '@crud-master/common';
import { orderFingerprint, parseOrder } from '@crud-master/billing-contract';
import { IdempotencyKeys } from './idempotency-keys';
import type { OrderMetrics } from './metrics';
import { OrderNotQueuedError, type OrderPublisher } from './publisher';

export interface BillingDeps {
  publisher: OrderPublisher;
  /** Largest order body, e.g. '16kb'; larger ones get 413. */
  bodyLimit: string;
  /** The order counters (gateway_orders_*_total); not counted when absent (unit tests). */
  metrics?: OrderMetrics;
  /** Keys already used and their orders: a reused key with another order is a 422. */
  idempotencyKeys?: IdempotencyKeys;
}

/** What both ways into `POST /api/billing` (the front door's and the Koa route's) hand an order to. */
export interface OrderDesk {
  /**
   * Validates an order (its body as parsed by parseJsonText, losslessly), claims its
   * Idempotency-Key ('' when none) and puts it on `billing_queue`; resolves with its message id
   * once RabbitMQ confirmed it. Rejects with a ValidationError (400), an IdempotencyKeyReusedError
   * (422) or an OrderNotQueuedError (503); bad input never reaches the queue nor the counters.
   */
  take(body: unknown, idempotencyKey: string, requestId: string): Promise<string>;
}

/** The 200 answer's body for an order RabbitMQ confirmed. */
export function queuedAnswer(messageId: string): { status: 'queued'; message_id: string } {
  return { status: 'queued', message_id: messageId };
}

export function createOrderDesk({ publisher, metrics, idempotencyKeys = new IdempotencyKeys() }: BillingDeps, logger: Logger): OrderDesk {
  return {
    async take(body, idempotencyKey, requestId) {
      const parsed = parseOrder(body);
      if (!parsed.ok) throw new ValidationError(parsed.problem);
      // A client that may retry (after a 503, a timeout, a dropped connection) sends the same
      // Idempotency-Key each time; it becomes the message id, which the worker stores once. Same
      // character rules as X-Request-Id; a bad key is a 400, not silently replaced.
      if (idempotencyKey !== '') {
        if (!isSaneRequestId(idempotencyKey)) throw new ValidationError('Idempotency-Key must be 1 to 128 characters of A-Z a-z 0-9 . _ : @ -');
        // Claimed before publishing: an attempt that ends in 503 may still have been stored.
        idempotencyKeys.claim(idempotencyKey, orderFingerprint(parsed.order));
      }
      metrics?.published.inc();
      let messageId: string;
      try {
        // The contract's message is the POST body as a JSON string, as sent: strings stay strings
        // and numbers keep the exact text the client wrote (parseJsonText kept them losslessly).
        messageId = await publisher.publish(stringifyJson(body), idempotencyKey === '' ? { requestId } : { requestId, messageId: idempotencyKey });
      } catch (err) {
        metrics?.refused.inc({ reason: err instanceof OrderNotQueuedError ? err.reason : 'not_confirmed' });
        throw err; // answered 503 (and logged) by whoever asked
      }
      metrics?.confirmed.inc();
      // Links the request id to the message id the worker logs: the request's child logger's
      // line, byte for byte, without making a child per order.
      logger.info({ requestId, messageId }, 'order queued');
      return messageId;
    },
  };
}
