import http from 'node:http';
import { createHttpMetrics, runService } from '@crud-master/common';
import { createApp } from './app';
import { BillingPublisher, createBillingRouter, createOrderMetrics } from './billing';
import { readConfig } from './config';
import { createCatalogueRouter } from './catalogue';
import { createDocsRouter, findSpecFile, SPEC_FILE_NAME } from './docs';

/** The only place that reads the environment, connects and listens. */
void runService({
  name: 'api-gateway',
  dir: __dirname,
  readConfig,
  async start(config, logger) {
    const inventoryAgent = new http.Agent({ keepAlive: true, maxSockets: 256 });
    const specFile = findSpecFile(__dirname);
    if (!specFile) throw new Error(`${SPEC_FILE_NAME} not found above ${__dirname}: the gateway serves it at /openapi.yaml and /api/docs`);
    const publisher = new BillingPublisher({ amqp: config.amqp, confirmTimeoutMs: config.confirmTimeoutMs, logger });
    publisher.start(); // in the background: orders get 503 until RabbitMQ is reachable
    // One registry for GET /metrics: HTTP, process and order metrics.
    const metrics = createHttpMetrics({ service: 'api-gateway', processMetrics: true });
    const app = createApp({
      config,
      logger,
      inventoryAgent,
      metrics,
      healthChecks: { broker: () => publisher.health() },
      routers: [
        createBillingRouter({ publisher, bodyLimit: config.bodyLimit, metrics: createOrderMetrics(metrics.registry) }),
        createDocsRouter({ specFile }),
        createCatalogueRouter(),
      ],
    });
    return {
      handler: app.callback(),
      details: { inventory: config.inventoryUrl },
      closeAfter: [
        { name: 'inventory agent', run: async () => inventoryAgent.destroy() },
        { name: 'rabbitmq publisher', run: () => publisher.close() },
      ],
    };
  },
});
