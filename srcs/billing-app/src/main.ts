import {
  addressOf,
  closeServer,
  createDatabase,
  createHttpMetrics,
  createLogger,
  exitOnStartupError,
  findEnvFile,
  handleShutdown,
  listen,
  loadEnv,
  migrateLatest,
  type Logger,
} from '@crud-master/common';
import { createApp } from './app';
import { readConfig } from './config';
import { migrations } from './db/migrations';
import { backoffDelay, describeError, sleep } from '@crud-master/billing-contract';
import { BillingConsumer } from './messaging/consumer';
import { OrdersRepository } from './orders/repository';

/**
 * The only place that reads the environment, connects and listens. Neither RabbitMQ nor
 * PostgreSQL has to be up for billing to start: /health answers at once (503 naming what is
 * down), migrations are retried until the database answers, then the consumer starts and keeps
 * reconnecting to the broker by itself.
 */
async function main(): Promise<void> {
  let logger: Logger | undefined;
  try {
    const config = readConfig(loadEnv(findEnvFile(__dirname)));
    const log = createLogger({ name: 'billing-app', level: config.logLevel });
    logger = log;
    const db = createDatabase(config.db, { poolMax: 4 });
    // One registry for GET /metrics: HTTP, process, message and queue metrics.
    const metrics = createHttpMetrics({ service: 'billing-app', processMetrics: true });
    const consumer = new BillingConsumer({
      registry: metrics.registry,
      amqp: config.amqp,
      prefetch: config.prefetch,
      batchSize: config.batchSize,
      flushIntervalMs: config.flushIntervalMs,
      orders: new OrdersRepository(db),
      logger: log,
    });
    const server = await listen(createApp({ db, broker: consumer, logger: log, metrics }).callback(), {
      host: config.listenHost,
      port: config.port,
    });
    log.info({ address: addressOf(server), queue: config.amqp.queue }, 'billing-app listening');

    const starting = new AbortController();
    handleShutdown({
      logger: log,
      steps: [
        {
          // First: stop taking messages, write and acknowledge the batch in hand.
          name: 'consumer',
          run: async () => {
            starting.abort();
            await consumer.stop();
          },
        },
        { name: 'http server', run: () => closeServer(server) },
        { name: 'database pool', run: () => db.destroy() },
      ],
    });

    for (let attempt = 0; !starting.signal.aborted; attempt++) {
      try {
        await migrateLatest(db, migrations);
        break;
      } catch (err) {
        log.warn({ err: describeError(err), attempt }, 'cannot migrate orders_db yet; retrying');
        await sleep(backoffDelay(attempt, { initialMs: 200, maxMs: 5000 }), starting.signal);
      }
    }
    if (!starting.signal.aborted) consumer.start();
  } catch (err) {
    exitOnStartupError(logger, err);
  }
}

void main();
