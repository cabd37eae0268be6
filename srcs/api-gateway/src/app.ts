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
import { createBillingRouter, createOrderDesk, createOrderDoor, type BillingDeps, type OrderDoor } from './billing';
import { GATEWAY_BODY_TIMEOUT_MS, GATEWAY_UPSTREAM, type GatewayConfig } from './config';
import { frontDoor, moviesThroughKoa } from './front-door';
import { createInventoryProxy, type InventoryProxy } from './inventory-proxy';
import { bodyDeadline } from './request-body';
import { createLimiter, type Limiter } from './shed';
import { createUpstreamPool, type UpstreamPool } from './upstream/pool';

export interface GatewayDeps {
  config: Pick<GatewayConfig, 'inventoryUrl' | 'upstreamTimeoutMs'> & Partial<Pick<GatewayConfig, 'bodyTimeoutMs' | 'bodyLimit'>>;
  logger: Logger;
  /** Keep-alive agent for the inventory's health checks (requests go through the proxy's own undici pools). */
  inventoryAgent: http.Agent;
  /** Extra dependency checks for /health (the broker, once billing is wired in). */
  healthChecks?: Record<string, HealthCheck>;
  /** `POST /api/billing`: before the Koa stack in its common form (billing/order-door.ts), else through it. */
  billing?: BillingDeps;
  /** Extra routes mounted after billing's. */
  routers?: Router[];
  /** Where request counts and latencies go; a fresh registry when not given. */
  metrics?: HttpMetrics;
  /** Bounds the requests at the inventory (and each instance's connections). Defaults: GATEWAY_UPSTREAM. */
  upstreamLimiter?: Limiter;
  /** The inventory instances (main.ts: every INVENTORY_HOST entry). Default: `config.inventoryUrl` alone. */
  inventoryPool?: UpstreamPool;
}

/** A health check of an inventory instance waits this long at most: a hung one cannot hang /health. */
export function upstreamCheckTimeoutMs(upstreamTimeoutMs: number): number {
  return Math.min(upstreamTimeoutMs, 2000);
}

/** The gateway's dependency checks, for the public /health and the admin listener's detailed one. */
export function gatewayHealthChecks(inventoryPool: UpstreamPool, healthChecks: Record<string, HealthCheck> = {}): Record<string, HealthCheck> {
  return {
    inventory: () => inventoryPool.health(),
    ...healthChecks,
  };
}

/**
 * The two ways into `POST /api/billing`, behind one desk (so they share its Idempotency-Keys and
 * counters): the front door's for an order in its common form, the Koa route for the rest.
 */
function ordersWays(billing: BillingDeps, logger: Logger, metrics: HttpMetrics, bodyTimeoutMs: number): { door: OrderDoor; router: Router } {
  const desk = createOrderDesk(billing, logger);
  return {
    door: createOrderDoor({ desk, logger, metrics, bodyLimit: billing.bodyLimit, bodyTimeoutMs }),
    router: createBillingRouter(desk, billing.bodyLimit),
  };
}

/** The gateway: its request handler and what it holds open. */
export interface Gateway {
  /** The Koa app behind the front door: everything but the movie requests in their common form. */
  koa: Koa;
  proxy: InventoryProxy;
  /** The request handler for the public server (front-door.ts), like a Koa app's. */
  callback(): http.RequestListener;
  /** Closes the proxy's connections to the inventory (after the server closed). */
  close(): Promise<void>;
}

/** Builds the gateway. It never listens: `main.ts` does, tests use `app.callback()`. */
export function createApp({
  config,
  logger,
  inventoryAgent,
  healthChecks = {},
  billing,
  routers = [],
  metrics = createHttpMetrics({ service: 'api-gateway' }),
  upstreamLimiter = createLimiter(GATEWAY_UPSTREAM),
  inventoryPool = createUpstreamPool({
    urls: [config.inventoryUrl],
    agent: inventoryAgent,
    logger,
    intervalMs: 1000,
    checkTimeoutMs: upstreamCheckTimeoutMs(config.upstreamTimeoutMs),
  }),
}: GatewayDeps): Gateway {
  const bodyTimeoutMs = config.bodyTimeoutMs ?? GATEWAY_BODY_TIMEOUT_MS;
  const proxy = createInventoryProxy({
    pool: inventoryPool,
    timeoutMs: config.upstreamTimeoutMs,
    logger,
    metrics,
    limiter: upstreamLimiter,
    bodyLimit: config.bodyLimit ?? '16kb',
    bodyTimeoutMs,
  });
  const orders = billing && ordersWays(billing, logger, metrics, bodyTimeoutMs);
  const app = new Koa();
  app.silent = true;

  // Up or down per dependency, nothing more: the details are on the admin listener (admin.ts)
  // and in the log. /metrics is there too, not here (a 404 on the public port).
  const health = new Router();
  health.get('/health', healthHandler('api-gateway', gatewayHealthChecks(inventoryPool, healthChecks), { logger }));

  app.use(requestContext(logger));
  app.use(httpMetricsMiddleware(metrics));
  app.use(errorMiddleware(logger));
  // Bounded and unambiguous requests only, before any routing or proxying (request-bounds.ts).
  app.use(boundRequestTarget());
  app.use(canonicalPathOnly());
  // The movie requests the front door left to Koa; the proxy has its own body deadline.
  app.use(moviesThroughKoa(proxy));
  app.use(bodyDeadline(bodyTimeoutMs));
  app.use(health.routes()).use(health.allowedMethods());
  for (const router of orders ? [orders.router, ...routers] : routers) app.use(router.routes()).use(router.allowedMethods());
  return {
    koa: app,
    proxy,
    callback: () => frontDoor(proxy, app.callback(), undefined, orders?.door),
    close: () => proxy.close(),
  };
}
