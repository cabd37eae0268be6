import Router from '@koa/router';
import { ValidationError, isSaneRequestId, jsonBody, requestBody, requestState, stringifyJson } from '@crud-master/common';
import { orderFingerprint, parseOrder } from '@crud-master/billing-contract';
import { IdempotencyKeys } from './idempotency-keys';
import type { OrderMetrics } from './metrics';
import { OrderNotQueuedError, type OrderPublisher } from './publisher';

export interface BillingRouterDeps {
  publisher: OrderPublisher;
  bodyLimit: string;
  /** The order counters (gateway_orders_*_total); not counted when absent (unit tests). */
  metrics?: OrderMetrics;
  /** Keys already used and their orders: a reused key with another order is a 422. */
  idempotencyKeys?: IdempotencyKeys;
}

/**
 * `POST /api/billing` (and `/api/billing/`): validates the order, puts the body on
 * `billing_queue` with the request id in its headers and answers 200 once RabbitMQ has confirmed
 * it, 503 `order_not_queued` when it has not. Bad input is a 400 and never reaches the queue (nor
 * the order counters: the HTTP metrics count it).
 */
export function createBillingRouter({ publisher, bodyLimit, metrics, idempotencyKeys = new IdempotencyKeys() }: BillingRouterDeps): Router {
  const router = new Router({ prefix: '/api/billing', strict: false });

  router.post('/', jsonBody({ limit: bodyLimit }), async (ctx) => {
    const body = requestBody(ctx);
    const parsed = parseOrder(body);
    if (!parsed.ok) throw new ValidationError(parsed.problem);
    // A client that may retry (after a 503, a timeout, a dropped connection) sends the same
    // Idempotency-Key each time; it becomes the message id, which the worker stores once. Same
    // character rules as X-Request-Id; a bad key is a 400, not silently replaced.
    const idempotencyKey = ctx.get('Idempotency-Key');
    if (idempotencyKey !== '' && !isSaneRequestId(idempotencyKey)) {
      throw new ValidationError('Idempotency-Key must be 1 to 128 characters of A-Z a-z 0-9 . _ : @ -');
    }
    // Claimed before publishing: an attempt that ends in 503 may still have been stored.
    if (idempotencyKey !== '') idempotencyKeys.claim(idempotencyKey, orderFingerprint(parsed.order));
    const { requestId, log } = requestState(ctx);
    metrics?.published.inc();
    let messageId: string;
    try {
      // The contract's message is the POST body as a JSON string, as sent: strings stay strings
      // and numbers keep the exact text the client wrote (jsonBody parsed them losslessly).
      messageId = await publisher.publish(stringifyJson(body), {
        requestId,
        ...(idempotencyKey ? { messageId: idempotencyKey } : {}),
      });
    } catch (err) {
      const reason = err instanceof OrderNotQueuedError ? err.reason : 'not_confirmed';
      metrics?.refused.inc({ reason });
      throw err; // the error middleware answers 503 and logs it
    }
    metrics?.confirmed.inc();
    // Links the request id to the message id the worker logs.
    log?.info({ messageId }, 'order queued');
    ctx.status = 200;
    ctx.body = { status: 'queued', message_id: messageId };
  });

  return router;
}
