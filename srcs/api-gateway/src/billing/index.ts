export {
  BillingPublisher,
  OrderNotQueuedError,
  type OrderPublisher,
  type PublishMeta,
  type PublisherOptions,
} from './publisher';
export { createBillingRouter, type BillingRouterDeps } from './router';
export { REFUSAL_REASONS, createOrderMetrics, type OrderMetrics, type RefusalReason } from './metrics';
export { IdempotencyKeys, IdempotencyKeyReusedError, type IdempotencyKeysOptions } from './idempotency-keys';
