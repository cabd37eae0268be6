import { createDatabase, createHttpMetrics, migrateLatest, runService, type Knex, type Logger } from '@crud-master/common';
import { backoffDelay, describeError, sleep } from '@crud-master/billing-contract';
import { createApp } from './app';
import { readConfig } from './config';
import { migrations } from './db/migrations';
import { BillingConsumer } from './messaging/consumer';
import { OrdersRepository } from './orders/repository';

/**
 * The only place that reads the environment, connects and listens. Neither RabbitMQ nor
 * PostgreSQL has to be up for billing to start: /health answers at once (503 naming what is
 * down), migrations are retried until the database answers, then the consumer starts and keeps
 * reconnecting to the broker by itself.
 */
void runService({
  name: 'billing-app',
  dir: __dirname,
  readConfig,
  async start(config, logger) {
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
      logger,
    });
    return {
      handler: createApp({ db, broker: consumer, logger, metrics }).callback(),
      details: { queue: config.amqp.queue },
      // First: stop taking messages, write and acknowledge the batch in hand.
      closeFirst: [{ name: 'consumer', run: () => consumer.stop() }],
      closeAfter: [{ name: 'database pool', run: () => db.destroy() }],
      async afterListen(stopping) {
        await migrateUntilDone(db, logger, stopping);
        if (!stopping.aborted) consumer.start();
      },
    };
  },
});

/** Retries the migrations with backoff until they ran or `stopping` aborts. */
async function migrateUntilDone(db: Knex, logger: Logger, stopping: AbortSignal): Promise<void> {
  for (let attempt = 0; !stopping.aborted; attempt++) {
    try {
      await migrateLatest(db, migrations);
      return;
    } catch (err) {
      logger.warn({ err: describeError(err), attempt }, 'cannot migrate orders_db yet; retrying');
      await sleep(backoffDelay(attempt, { initialMs: 200, maxMs: 5000 }), stopping);
    }
  }
}
