import http from 'node:http';
import { createHttpMetrics, runService } from '@crud-master/common';
import { createAdminApp } from './admin';
import { createApp, gatewayHealthChecks, upstreamCheckTimeoutMs } from './app';
import { BillingPublisher, createOrderMetrics } from './billing';
import { readConfig, UPSTREAM_IDLE_MS } from './config';
import { createCatalogueRouter } from './catalogue';
import { createDocsRouter, findSpecFile, SPEC_FILE_NAME } from './docs';
import { createLimiter } from './shed';
import { createUpstreamPool } from './upstream/pool';

/** The only place that reads the environment, connects and listens. */
void runService({
  name: 'api-gateway',
  dir: __dirname,
  readConfig,
  async start(config, logger) {
    // For the health checks of the inventory (requests go through the proxy's undici pools):
    // two sockets per instance, each closed after 30 s idle, before the inventory's keep-alive
    // (65 s) can close it under a check.
    const inventoryAgent = new http.Agent({ keepAlive: true, maxSockets: 2, maxFreeSockets: 2, timeout: UPSTREAM_IDLE_MS });
    const specFile = findSpecFile(__dirname);
    if (!specFile) throw new Error(`${SPEC_FILE_NAME} not found above ${__dirname}: the gateway serves it at /openapi.yaml and /api/docs`);
    const publisher = new BillingPublisher({ amqp: config.amqp, confirmTimeoutMs: config.confirmTimeoutMs, logger });
    publisher.start(); // in the background: orders get 503 until RabbitMQ is reachable
    // One registry for GET /metrics (admin listener): HTTP, process and order metrics.
    const metrics = createHttpMetrics({ service: 'api-gateway', processMetrics: true });
    const healthChecks = { broker: () => publisher.health() };
    // Several inventories: balanced in turn, each checked every interval. One: exactly as before.
    const inventoryPool = createUpstreamPool({
      urls: config.inventoryUrls,
      agent: inventoryAgent,
      logger,
      intervalMs: config.upstreamHealthIntervalMs,
      checkTimeoutMs: upstreamCheckTimeoutMs(config.upstreamTimeoutMs),
      registry: metrics.registry,
    });
    inventoryPool.start();
    const app = createApp({
      config,
      logger,
      inventoryAgent,
      metrics,
      upstreamLimiter: createLimiter(config.upstream),
      inventoryPool,
      healthChecks,
      billing: { publisher, bodyLimit: config.bodyLimit, metrics: createOrderMetrics(metrics.registry) },
      routers: [createDocsRouter({ specFile }), createCatalogueRouter()],
    });
    return {
      handler: app.callback(),
      listen: { limits: config.limits },
      admin: {
        handler: createAdminApp({ metrics, healthChecks: gatewayHealthChecks(inventoryPool, healthChecks), logger }).callback(),
        ...config.admin,
      },
      details: { inventory: config.inventoryUrls.join(',') },
      closeAfter: [
        {
          name: 'inventory connections',
          run: async () => {
            inventoryPool.stop();
            inventoryAgent.destroy();
            await app.close();
          },
        },
        { name: 'rabbitmq publisher', run: () => publisher.close() },
      ],
    };
  },
});
