/*
 * Least privilege (issue 13), proved against real servers: what each database app role and each
 * RabbitMQ user may do, and every refusal tried for real (SQLSTATE 42501, AMQP 403
 * ACCESS_REFUSED). Roles, users and permissions are made exactly as provisioning makes them:
 * migrateAndGrant (migrate.js) for the databases, rabbitPermissions for the broker.
 */
import assert from 'node:assert/strict';
import * as amqp from 'amqplib';
import { createDatabase, migrateAndGrant } from '@crud-master/common';
import { connectOptions, deadLetterQueueOf, type AmqpConfig } from '@crud-master/billing-contract';
import { sharedPostgres, sharedRabbit, waitFor, type RabbitInstance } from '../harness/fixtures';
import { billingBroker, type BillingBroker } from '../support/billing-broker';
import { freshDatabase, type TestDatabase } from '../support/databases';
import { silentLogger } from '../support/silent-logger';
import { inventorySchema } from '../../srcs/inventory-app/src/db/schema';
import { MoviesRepository } from '../../srcs/inventory-app/src/movies/repository';
import { billingSchema } from '../../srcs/billing-app/src/db/schema';
import { OrdersRepository } from '../../srcs/billing-app/src/orders/repository';
import { BillingConsumer } from '../../srcs/billing-app/src/messaging/consumer';
import { BillingPublisher } from '../../srcs/api-gateway/src/billing/publisher';

const refusedSql = (err: { code?: string }): boolean => err.code === '42501';

/** The privileges `role` holds on each table of `database`, as PostgreSQL reports them. */
async function tablePrivileges(database: string, role: string): Promise<Record<string, string[]>> {
  const rows = await (await sharedPostgres()).query<{ table_name: string; privilege_type: string }>(
    'SELECT table_name, privilege_type FROM information_schema.table_privileges WHERE grantee = $1 ORDER BY 1, 2',
    [role],
    database,
  );
  const byTable: Record<string, string[]> = {};
  for (const row of rows) (byTable[row.table_name] ??= []).push(row.privilege_type);
  return byTable;
}

describe('least privilege: the database app roles (real PostgreSQL)', () => {
  let inventory: TestDatabase;
  let billing: TestDatabase;
  before(async () => {
    [inventory, billing] = await Promise.all([freshDatabase(inventorySchema), freshDatabase(billingSchema)]);
  });
  after(async () => {
    await Promise.all([inventory?.db.destroy(), billing?.db.destroy()]);
  });

  it('grants the inventory app role exactly DML on movies and a read of movies_version, nothing else', async () => {
    assert.deepEqual(await tablePrivileges(inventory.config.database, inventory.config.user), {
      movies: ['DELETE', 'INSERT', 'SELECT', 'TRUNCATE', 'UPDATE'],
      movies_version: ['SELECT'],
    });
  });

  it('refuses the inventory app role DROP, ALTER, CREATE and writes to the change counter', async () => {
    const { db } = inventory;
    for (const sql of [
      'DROP TABLE movies',
      'ALTER TABLE movies ADD COLUMN rating integer',
      'ALTER TABLE movies DROP COLUMN description',
      'CREATE TABLE intruder (id integer)',
      'UPDATE movies_version SET row_count = 0',
      'DROP INDEX movies_title_trgm_idx',
      'SELECT * FROM knex_migrations',
      // TRUNCATE ... RESTART IDENTITY needs the sequence's owner: DELETE /api/movies does not use it.
      'TRUNCATE movies RESTART IDENTITY',
    ]) {
      await assert.rejects(db.raw(sql), refusedSql, sql);
    }
  });

  it('lets the inventory app role do all its routes do: insert, update, delete, TRUNCATE (DELETE /api/movies), with the counter kept', async () => {
    const movies = new MoviesRepository(inventory.db);
    const created = await movies.create({ title: 'Role check', description: 'as the app role' });
    await movies.update(created.id, { title: 'Role check, updated' });
    await movies.create({ title: 'Second', description: '' });
    await movies.remove(created.id);
    assert.equal(await movies.removeAll(), 1, 'TRUNCATE as the app role, the row count kept by the SECURITY DEFINER trigger');
    const version = await inventory.db('movies_version').first();
    assert.equal(Number(version.row_count), 0);
  });

  it('grants the billing app role SELECT and INSERT on its two tables, nothing else', async () => {
    assert.deepEqual(await tablePrivileges(billing.config.database, billing.config.user), {
      order_conflicts: ['INSERT', 'SELECT'],
      orders: ['INSERT', 'SELECT'],
    });
  });

  it('lets the billing app role insert orders (ON CONFLICT DO NOTHING RETURNING) and record conflicts, and refuses DELETE, UPDATE, TRUNCATE, DROP', async () => {
    const orders = new OrdersRepository(billing.db);
    const order = { messageId: 'role-check', userId: 1, numberOfItems: 2, totalAmount: '3.00' };
    assert.deepEqual(await orders.insertMany([order]), ['role-check']);
    assert.deepEqual(await orders.insertMany([order]), [], 'a redelivery inserts nothing');
    assert.deepEqual(await orders.recordConflicts([{ ...order, totalAmount: '4.00' }]), [0]);
    for (const sql of ['DELETE FROM orders', 'UPDATE orders SET total_amount = 0', 'TRUNCATE orders', 'DROP TABLE orders', 'DELETE FROM order_conflicts', 'ALTER TABLE orders ADD COLUMN x integer']) {
      await assert.rejects(billing.db.raw(sql), refusedSql, sql);
    }
  });

  it('migrates and grants idempotently: nothing applied the second time, and a privilege added by hand is taken back', async () => {
    const owner = createDatabase(billing.owner, { poolMax: 1 });
    try {
      await owner.raw('GRANT DELETE ON orders TO ??', [billing.config.user]);
      assert.deepEqual(await migrateAndGrant(owner, billingSchema, billing.config.user), []);
      assert.deepEqual((await tablePrivileges(billing.config.database, billing.config.user)).orders, ['INSERT', 'SELECT']);
    } finally {
      await owner.destroy();
    }
  });
});

describe('least privilege: the two RabbitMQ users (real broker)', () => {
  let rabbit: RabbitInstance;
  let broker: BillingBroker;
  const connections: amqp.ChannelModel[] = [];
  const connect = async (config: AmqpConfig): Promise<amqp.ChannelModel> => {
    const connection = await amqp.connect(connectOptions(config));
    connection.on('error', () => undefined);
    connections.push(connection);
    return connection;
  };
  /** Runs `op` on a fresh channel of `config`'s user; it must fail with 403 ACCESS_REFUSED. */
  const refused = async (config: AmqpConfig, what: string, op: (channel: amqp.ConfirmChannel) => Promise<unknown>): Promise<void> => {
    const channel = await (await connect(config)).createConfirmChannel();
    channel.on('error', () => undefined);
    await assert.rejects(op(channel), (err: Error & { code?: number }) => {
      assert.match(err.message, /ACCESS_REFUSED/, what);
      assert.equal(err.code, 403, what);
      return true;
    });
  };
  const publishConfirmed = (channel: amqp.ConfirmChannel, exchange: string, key: string): Promise<void> =>
    new Promise((resolve, reject) => {
      channel.publish(exchange, key, Buffer.from('{}'), { persistent: true }, (err) => (err ? reject(err) : resolve()));
      channel.once('close', () => reject(new Error('channel closed')));
      channel.once('error', reject);
    });

  before(async () => {
    rabbit = await sharedRabbit();
    broker = await billingBroker(rabbit);
  });
  after(async () => {
    await Promise.all(connections.map((c) => c.close().catch(() => undefined)));
  });

  it('refuses the gateway\'s user every consume, get, purge, delete and declaration of billing_queue (403 ACCESS_REFUSED)', async () => {
    const { gateway, queue } = broker;
    await refused(gateway, 'consume', (ch) => ch.consume(queue, () => undefined));
    await refused(gateway, 'get', (ch) => ch.get(queue));
    await refused(gateway, 'purge', (ch) => ch.purgeQueue(queue));
    await refused(gateway, 'delete', (ch) => ch.deleteQueue(queue));
    await refused(gateway, 'declare', (ch) => ch.assertQueue(queue, { durable: true }));
    await refused(gateway, 'consume the dead letters', (ch) => ch.consume(deadLetterQueueOf(queue), () => undefined));
    await refused(gateway, 'declare another queue', (ch) => ch.assertQueue(`${queue}_other`));
    await refused(gateway, 'bind the queue elsewhere', (ch) => ch.bindQueue(queue, 'amq.fanout', ''));
    await refused(gateway, 'publish through the default exchange', (ch) => publishConfirmed(ch, '', queue));
    await refused(gateway, 'publish a dead letter', (ch) => publishConfirmed(ch, deadLetterQueueOf(queue), deadLetterQueueOf(queue)));
    const admin = await (await connect({ ...rabbit.connectionConfig(), queue })).createChannel();
    assert.equal((await admin.checkQueue(queue)).messageCount, 0, 'the queue is still there, untouched');
  });

  it('refuses the worker\'s user other queues and the default exchange', async () => {
    const { billing, queue } = broker;
    await refused(billing, 'declare another queue', (ch) => ch.assertQueue(`${queue}_other`));
    await refused(billing, 'publish through the default exchange', (ch) => publishConfirmed(ch, '', queue));
    await refused(billing, 'read a queue not its own', (ch) => ch.get('amq.unrelated'));
  });

  it('lets the gateway\'s user publish (confirmed) and the worker\'s user consume, store and dead-letter', async function () {
    this.timeout(30_000);
    const orders = await freshDatabase(billingSchema);
    const logger = silentLogger();
    const publisher = new BillingPublisher({ amqp: broker.gateway, confirmTimeoutMs: 5000, logger });
    const consumer = new BillingConsumer({ amqp: broker.billing, prefetch: 10, batchSize: 5, flushIntervalMs: 10, orders: new OrdersRepository(orders.db), logger });
    publisher.start();
    consumer.start();
    try {
      await waitFor(() => publisher.health().then(() => true), { description: 'the gateway user connected' });
      const id = await publisher.publish('{"user_id":"7","number_of_items":"1","total_amount":"9.50"}');
      const poison = await publisher.publish('not an order');
      await waitFor(async () => ((await orders.db('orders').where({ message_id: id })).length === 1 ? true : undefined), { description: 'the order stored' });
      const admin = await (await connect({ ...rabbit.connectionConfig(), queue: broker.queue })).createChannel();
      const dead = await waitFor(() => admin.get(deadLetterQueueOf(broker.queue), { noAck: true }).then((m) => m || undefined), { description: 'the dead letter' });
      assert.equal(dead.properties.messageId, poison);
    } finally {
      await consumer.stop();
      await publisher.close();
      await orders.db.destroy();
    }
  });
});

