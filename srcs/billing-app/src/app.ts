import Koa from 'koa';
import Router from '@koa/router';
import {
  createHttpMetrics,
  errorMiddleware,
  healthHandler,
  httpMetricsMiddleware,
  metricsHandler,
  pingDatabase,
  requestContext,
  type HttpMetrics,
  type Knex,
  type Logger,
} from '@crud-master/common';

export interface BillingDeps {
  db: Knex;
  /** The consumer's state: resolves while it consumes, rejects with the reason otherwise. */
  broker: { health(): Promise<Record<string, unknown>> };
  logger: Logger;
  /** The registry GET /metrics serves (HTTP metrics here, message metrics from the consumer); a fresh one when not given. */
  metrics?: HttpMetrics;
}

/**
 * Billing's small HTTP app: `GET /health`, 200 when both the broker and the database work, 503
 * with the one that does not marked down (why goes to the log, not to the answer); `GET /metrics` in Prometheus text format. It never listens:
 * `main.ts` does.
 */
export function createApp({ db, broker, logger, metrics = createHttpMetrics({ service: 'billing-app' }) }: BillingDeps): Koa {
  const app = new Koa();
  app.silent = true;
  const router = new Router();
  router.get(
    '/health',
    healthHandler('billing-app', {
      broker: () => broker.health(),
      database: () => pingDatabase(db),
    }, { logger }),
  );
  router.get('/metrics', metricsHandler(metrics.registry));
  app.use(requestContext(logger));
  app.use(httpMetricsMiddleware(metrics));
  app.use(errorMiddleware(logger));
  app.use(router.routes()).use(router.allowedMethods());
  return app;
}
