import Koa from 'koa';
import Router from '@koa/router';
import { errorMiddleware, healthHandler, metricsHandler, requestContext, type HealthCheck, type HttpMetrics, type Logger } from '@crud-master/common';

export interface AdminDeps {
  /** The registry the public app counts its requests in. */
  metrics: HttpMetrics;
  /** The same checks as the public /health (gatewayHealthChecks). */
  healthChecks: Record<string, HealthCheck>;
  logger: Logger;
}

/**
 * The gateway's internal listener (GATEWAY_ADMIN_HOST:GATEWAY_ADMIN_PORT, not the public port):
 * `GET /metrics` for Prometheus and `GET /health` with every check's details and error text.
 * Its requests are not counted in the HTTP metrics: scrapes would drown the traffic.
 */
export function createAdminApp({ metrics, healthChecks, logger }: AdminDeps): Koa {
  const app = new Koa();
  app.silent = true;
  const router = new Router();
  router.get('/health', healthHandler('api-gateway', healthChecks, { detailed: true }));
  router.get('/metrics', metricsHandler(metrics.registry));
  app.use(requestContext(logger));
  app.use(errorMiddleware(logger));
  app.use(router.routes()).use(router.allowedMethods());
  return app;
}
