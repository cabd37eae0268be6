import { SchemaNotReadyError, checkSchema, createDatabase, createHttpMetrics, runService, type Knex, type Logger } from '@crud-master/common';
import { backoffDelay, describeError, sleep } from '@crud-master/billing-contract';
import { createApp } from './app';
import { readConfig } from './config';
import { BILLING_MIGRATE_COMMAND, billingSchema } from './db/schema';
import { BillingConsumer } from './messaging/consumer';
import { OrdersRepository } from './orders/repository';

/**
 * The only place that reads the environment, connects and listens. Neither RabbitMQ nor
 * PostgreSQL has to be up for billing to start: /health answers at once (503, what is down
 * marked so), the schema check is retried until the database answers, then the consumer starts
 * and keeps reconnecting to the broker by itself. It runs no DDL (migrate.js does, as the owner
 * role): a database that answers but is not migrated or not granted ends the start (exit 1)
 * with a line saying what to run; so does a billing_queue that RabbitMQ holds with another type.
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
      maxBatchesInFlight: config.batchesInFlight,
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
        await waitForSchema(db, logger, stopping);
        if (stopping.aborted) return;
        consumer.start();
        // A queue RabbitMQ holds with another type (QueueMismatchError) ends the start, like an
        // unmigrated database: exit 1 with what to do. Otherwise this waits until the stop.
        const stopped = new Promise<undefined>((resolve) => stopping.addEventListener('abort', () => resolve(undefined), { once: true }));
        const fatal = await Promise.race([consumer.fatal, stopped]);
        if (fatal) throw fatal;
      },
    };
  },
});

/** Retries the schema check with backoff until it passed or `stopping` aborts; a schema that is not there throws. */
async function waitForSchema(db: Knex, logger: Logger, stopping: AbortSignal): Promise<void> {
  for (let attempt = 0; !stopping.aborted; attempt++) {
    try {
      await checkSchema(db, billingSchema, BILLING_MIGRATE_COMMAND);
      return;
    } catch (err) {
      if (err instanceof SchemaNotReadyError) throw err;
      logger.warn({ err: describeError(err), attempt }, 'cannot reach orders_db yet; retrying');
      await sleep(backoffDelay(attempt, { initialMs: 200, maxMs: 5000 }), stopping);
    }
  }
}
