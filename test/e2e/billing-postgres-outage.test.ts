import assert from 'node:assert/strict';
import type { Knex } from '@crud-master/common';
import { PostgresInstance, runDir, sharedRabbit, waitFor } from '../harness/fixtures';
import type { ServiceProcess } from '../harness/processes';
import {
  amqpClient,
  billingUrl,
  checkStored,
  confirmedIds,
  countOrders,
  health,
  metric,
  newStackConfig,
  ordersDb,
  postOrders,
  rowsByMessageId,
  startBilling,
  startGateway,
  type StackConfig,
} from './billing-stack';

/* A dedicated PostgreSQL server: this suite stops and starts it under billing's feet. */
describe('billing pipeline when PostgreSQL restarts (dedicated database server)', function () {
  this.timeout(180_000);
  let pg: PostgresInstance;
  let config: StackConfig;
  let gateway: ServiceProcess | undefined;
  let billing: ServiceProcess | undefined;
  let db: Knex;
  let mq: Awaited<ReturnType<typeof amqpClient>>;

  before(async () => {
    pg = await PostgresInstance.create({ runDir: runDir() });
    await pg.start();
    config = await newStackConfig(await sharedRabbit(), pg);
    [gateway, billing] = await Promise.all([startGateway(config), startBilling(config)]);
    db = ordersDb(config);
    mq = await amqpClient(config.rabbit);
  });
  after(async () => {
    await Promise.all([gateway?.stop(), billing?.stop()]);
    await mq?.close();
    await db?.destroy();
    await pg?.destroy();
  });

  it('PostgreSQL stopped and started while billing consumes: nothing is acknowledged meanwhile, nothing lost or doubled', async () => {
    assert.ok(billing);
    const billingPid = billing.pid;
    const first = await postOrders(config, 600, 20);
    await waitFor(async () => (await countOrders(db)) >= 30, { timeoutMs: 30_000, description: 'billing consuming' });

    // The test's own pool goes first, so that its idle connections do not complain about the stop.
    await db.destroy();
    await pg.stop();
    const down = await waitFor(
      async () => {
        const h = await health(billingUrl(config));
        return h?.status === 503 && h.body.checks.database?.status === 'down' ? h : undefined;
      },
      { timeoutMs: 30_000, description: 'billing /health: database down' },
    );
    assert.equal(down.body.checks.broker?.status, 'up');
    // The gateway still takes orders: they wait in the queue.
    const during = await postOrders(config, 400, 20, 600);
    const waiting = (await mq.channel.checkQueue(config.queue)).messageCount;
    assert.ok(waiting > 0, 'orders wait in the queue while the database is down');
    assert.ok(billing.running, 'billing did not exit while the database was down');

    await pg.start();
    const restartedAt = Date.now();
    db = ordersDb(config);
    const confirmed = confirmedIds([...first, ...during]);
    assert.equal(confirmed.length, 1000, 'every order confirmed');
    await waitFor(async () => (await countOrders(db)) >= 1000, { timeoutMs: 60_000, description: '1000 rows' });
    metric('after the database came back', { waitingInQueue: waiting, caughtUpMs: Date.now() - restartedAt });
    await waitFor(async () => (await mq.channel.checkQueue(config.queue)).messageCount === 0, { description: 'queue drained' });
    assert.equal(checkStored(await rowsByMessageId(db), confirmed), undefined);
    assert.equal(billing.pid, billingPid);
    assert.ok(billing.running, 'billing never restarted');
    await waitFor(async () => (await health(billingUrl(config)))?.status === 200, { description: 'billing healthy again' });
  });

  it('billing started while PostgreSQL is down waits for it (health 503), then migrates and writes the orders waiting', async () => {
    assert.ok(billing);
    await billing.stop();
    await db('orders').truncate();
    await db.destroy();
    await pg.stop();
    billing = await startBilling(config, false);
    const waiting = await waitFor(
      async () => {
        const h = await health(billingUrl(config));
        return h?.status === 503 && h.body.checks.database?.status === 'down' ? h : undefined;
      },
      { timeoutMs: 30_000, description: 'billing /health: database down' },
    );
    // It does not consume before it could migrate: nothing would be written anyway.
    assert.equal(waiting.body.checks.broker?.status, 'down');
    const responses = await postOrders(config, 50, 10, 5000);
    const confirmed = confirmedIds(responses);
    assert.equal(confirmed.length, 50);
    assert.ok(billing.running, 'billing waits instead of exiting');

    await pg.start();
    db = ordersDb(config);
    await waitFor(async () => (await countOrders(db)) >= 50, { timeoutMs: 60_000, description: '50 rows' });
    assert.equal(checkStored(await rowsByMessageId(db), confirmed), undefined);
    await waitFor(async () => (await health(billingUrl(config)))?.status === 200, { description: 'billing healthy' });
  });
});
