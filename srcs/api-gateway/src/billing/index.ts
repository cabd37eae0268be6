export {
  BillingPublisher,
  OrderNotQueuedError,
  type OrderPublisher,
  type PublishMeta,
  type PublisherOptions,
} from './publisher';
export { createBillingRouter } from './router';
export { createOrderDesk, queuedAnswer, type BillingDeps, type OrderDesk } from './order-desk';
export { createOrderDoor, limitBytes, type OrderDoor, type OrderDoorOptions } from './order-door';
export { REFUSAL_REASONS, createOrderMetrics, type OrderMetrics, type RefusalReason } from './metrics';
export { IdempotencyKeys, IdempotencyKeyReusedError, type IdempotencyKeysOptions } from './idempotency-keys';
