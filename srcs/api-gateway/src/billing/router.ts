import Router from '@koa/router';
import { jsonBody, requestBody, requestState } from '@crud-master/common';
import { queuedAnswer, type OrderDesk } from './order-desk';

/**
 * `POST /api/billing` (and `/api/billing/`) through the Koa stack: the orders the front door
 * leaves to Koa (order-door.ts says which), and the 405 for other methods. Validates the order,
 * puts the body on `billing_queue` with the request id in its headers and answers 200 once
 * RabbitMQ has confirmed it, 503 `order_not_queued` when it has not (order-desk.ts). Bad input is
 * a 400 (415, 413) and never reaches the queue (nor the order counters: the HTTP metrics count it).
 */
export function createBillingRouter(desk: OrderDesk, bodyLimit: string): Router {
  const router = new Router({ prefix: '/api/billing', strict: false });

  router.post('/', jsonBody({ limit: bodyLimit }), async function takeOrder(ctx) {
    const messageId = await desk.take(requestBody(ctx), ctx.get('Idempotency-Key'), requestState(ctx).requestId);
    ctx.status = 200;
    ctx.body = queuedAnswer(messageId);
  });

  return router;
}
