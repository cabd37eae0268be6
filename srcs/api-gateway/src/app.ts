import http from 'node:http';
import Koa from 'koa';
import Router from '@koa/router';
import {
  boundRequestTarget,
  canonicalPathOnly,
  createHttpMetrics,
  errorMiddleware,
  healthHandler,
  httpMetricsMiddleware,
  requestContext,
  type HealthCheck,
  type HttpMetrics,
  type Logger,
} from '@crud-master/common';
import { GATEWAY_BODY_TIMEOUT_MS, GATEWAY_UPSTREAM, type GatewayConfig } from './config';
import { inventoryHealth } from './inventory-client';
import { inventoryProxy } from './inventory-proxy';
import { bodyDeadline } from './request-body';
import { createLimiter, type Limiter } from './shed';

export interface GatewayDeps {
  config: Pick<GatewayConfig, 'inventoryUrl' | 'upstreamTimeoutMs'> & Partial<Pick<GatewayConfig, 'bodyTimeoutMs' | 'bodyLimit'>>;
  logger: Logger;
  /** Keep-alive agent for every connection to the inventory. */
  inventoryAgent: http.Agent;
  /** Extra dependency checks for /health (the broker, once billing is wired in). */
  healthChecks?: Record<string, HealthCheck>;
  /** Extra routes mounted after the proxy (billing). */
  routers?: Router[];
  /** Where request counts and latencies go; a fresh registry when not given. */
  metrics?: HttpMetrics;
  /** Bounds the requests at the inventory; as many as the agent's maxSockets. Defaults: GATEWAY_UPSTREAM. */
  upstreamLimiter?: Limiter;
}

/** The gateway's dependency checks, for the public /health and the admin listener's detailed one. */
export function gatewayHealthChecks({ config, inventoryAgent, healthChecks = {} }: Pick<GatewayDeps, 'config' | 'inventoryAgent' | 'healthChecks'>): Record<string, HealthCheck> {
  return {
    inventory: () => inventoryHealth(config.inventoryUrl, inventoryAgent, Math.min(config.upstreamTimeoutMs, 2000)),
    ...healthChecks,
  };
}

/** Builds the gateway's Koa app. It never listens: `main.ts` does, tests use `app.callback()`. */
export function createApp({
  config,
  logger,
  inventoryAgent,
  healthChecks = {},
  routers = [],
  metrics = createHttpMetrics({ service: 'api-gateway' }),
  upstreamLimiter = createLimiter(GATEWAY_UPSTREAM),
}: GatewayDeps): Koa {
  const app = new Koa();
  app.silent = true;

  // Up or down per dependency, nothing more: the details are on the admin listener (admin.ts)
  // and in the log. /metrics is there too, not here (a 404 on the public port).
  const health = new Router();
  health.get('/health', healthHandler('api-gateway', gatewayHealthChecks({ config, inventoryAgent, healthChecks }), { logger }));

  app.use(requestContext(logger));
  app.use(httpMetricsMiddleware(metrics));
  app.use(errorMiddleware(logger));
  // Bounded and unambiguous requests only, before any routing or proxying (request-bounds.ts).
  app.use(boundRequestTarget());
  app.use(canonicalPathOnly());
  app.use(bodyDeadline(config.bodyTimeoutMs ?? GATEWAY_BODY_TIMEOUT_MS));
  app.use(
    inventoryProxy({
      target: config.inventoryUrl,
      timeoutMs: config.upstreamTimeoutMs,
      logger,
      agent: inventoryAgent,
      limiter: upstreamLimiter,
      bodyLimit: config.bodyLimit ?? '16kb',
    }),
  );
  app.use(health.routes()).use(health.allowedMethods());
  for (const router of routers) app.use(router.routes()).use(router.allowedMethods());
  return app;
}
