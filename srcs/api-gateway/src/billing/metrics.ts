import { Counter, type Registry } from 'prom-client';

/** Why the gateway refused an order with 503 `order_not_queued`. */
export const REFUSAL_REASONS = ['unreachable', 'not_confirmed', 'timeout', 'unroutable', 'blocked'] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

/** The gateway's order counters; `published = confirmed + sum(refused)` once every publish settled. */
export interface OrderMetrics {
  published: Counter;
  confirmed: Counter;
  refused: Counter<'reason'>;
}

/** Registers the order counters in the gateway's registry (the one GET /metrics serves). */
export function createOrderMetrics(registry: Registry): OrderMetrics {
  const metrics: OrderMetrics = {
    published: new Counter({
      name: 'gateway_orders_published_total',
      help: 'Valid orders the gateway tried to put on billing_queue',
      registers: [registry],
    }),
    confirmed: new Counter({
      name: 'gateway_orders_confirmed_total',
      help: 'Orders RabbitMQ confirmed (answered 200)',
      registers: [registry],
    }),
    refused: new Counter({
      name: 'gateway_orders_refused_total',
      help: 'Orders answered 503 order_not_queued, by reason: unreachable, not_confirmed, timeout, unroutable, blocked',
      labelNames: ['reason'],
      registers: [registry],
    }),
  };
  // Every reason exists from the start at 0, so that rate() and alerts see the first refusal.
  for (const reason of REFUSAL_REASONS) metrics.refused.inc({ reason }, 0);
  return metrics;
}
