import http from 'node:http';
import {
  addressOf,
  closeServer,
  createHttpMetrics,
  createLogger,
  exitOnStartupError,
  findEnvFile,
  handleShutdown,
  listen,
  loadEnv,
  type Logger,
} from '@crud-master/common';
import { createApp } from './app';
import { BillingPublisher, createBillingRouter, createOrderMetrics } from './billing';
import { readConfig, UPSTREAM_IDLE_MS } from './config';
import { createLimiter } from './shed';
import { createDocsRouter, findSpecFile, SPEC_FILE_NAME } from './docs';

/** The only place that reads the environment, connects and listens. */
async function main(): Promise<void> {
  let logger: Logger | undefined;
  try {
    const config = readConfig(loadEnv(findEnvFile(__dirname)));
    logger = createLogger({ name: 'api-gateway', level: config.logLevel });
    // As many sockets as the upstream limiter lets requests through (and two for /health, which
    // it does not count), all kept when idle, each closed after 30 s idle: before the
    // inventory's keep-alive (65 s) can close it under a request.
    const inventoryAgent = new http.Agent({
      keepAlive: true,
      maxSockets: config.upstream.max + 2,
      maxFreeSockets: config.upstream.max + 2,
      timeout: UPSTREAM_IDLE_MS,
    });
    const specFile = findSpecFile(__dirname);
    if (!specFile) throw new Error(`${SPEC_FILE_NAME} not found above ${__dirname}: the gateway serves it at /openapi.yaml and /api/docs`);
    const publisher = new BillingPublisher({ amqp: config.amqp, confirmTimeoutMs: config.confirmTimeoutMs, logger });
    publisher.start(); // in the background: orders get 503 until RabbitMQ is reachable
    // One registry for GET /metrics: HTTP, process and order metrics.
    const metrics = createHttpMetrics({ service: 'api-gateway', processMetrics: true });
    const orderMetrics = createOrderMetrics(metrics.registry);
    const app = createApp({
      config,
      logger,
      inventoryAgent,
      metrics,
      upstreamLimiter: createLimiter(config.upstream),
      healthChecks: { broker: () => publisher.check() },
      routers: [
        createBillingRouter({ publisher, bodyLimit: config.bodyLimit, metrics: orderMetrics }),
        createDocsRouter({ specFile }),
      ],
    });
    const server = await listen(app.callback(), {
      host: config.listenHost,
      port: config.port,
      limits: config.limits,
    });
    logger.info({ address: addressOf(server), inventory: config.inventoryUrl }, 'api-gateway listening');
    handleShutdown({
      logger,
      steps: [
        { name: 'http server', run: () => closeServer(server) },
        { name: 'inventory agent', run: async () => inventoryAgent.destroy() },
        { name: 'rabbitmq publisher', run: () => publisher.close() },
      ],
    });
  } catch (err) {
    exitOnStartupError(logger, err);
  }
}

void main();
