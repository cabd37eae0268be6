import assert from 'node:assert/strict';
import type { Knex } from '@crud-master/common';
import { RabbitInstance, runDir, sharedPostgres, waitFor } from '../harness/fixtures';
import type { ServiceProcess } from '../harness/processes';
import {
  billingUrl,
  checkStored,
  confirmedIds,
  gatewayUrl,
  health,
  metric,
  newStackConfig,
  ordersDb,
  postOrder,
  rowsByAmount,
  rowsByMessageId,
  sampleOrder,
  startBilling,
  startGateway,
  type OrderResponse,
  type StackConfig,
} from './billing-stack';

/*
 * A dedicated RabbitMQ node: these tests start it late, stop it and start it again, which must
 * not disturb the suites on the shared broker.
 */
describe('billing pipeline when RabbitMQ is down or restarts (dedicated broker)', function () {
  this.timeout(180_000);
  let rabbit: RabbitInstance;
  let config: StackConfig;
  let gateway: ServiceProcess | undefined;
  let billing: ServiceProcess | undefined;
  let db: Knex;

  before(async () => {
    rabbit = await RabbitInstance.create({ runDir: runDir() });
    // The users, their permissions and the topology are made once, as provisioning does; they
    // outlive the broker's stops and starts. The suite's tests start with the broker down.
    await rabbit.start();
    config = await newStackConfig(rabbit, await sharedPostgres());
    await rabbit.stop();
    db = ordersDb(config);
  });
  after(async () => {
    await Promise.all([gateway?.stop(), billing?.stop()]);
    await db?.destroy();
    await rabbit?.destroy();
  });

  it('both services start without a broker: /health names it, orders get 503 order_not_queued; once it is up, orders flow', async () => {
    billing = await startBilling(config, false);
    gateway = await startGateway(config);
    const down = await waitFor(
      async () => {
        const h = await health(billingUrl(config));
        return h?.status === 503 && h.body.checks.broker?.status === 'down' && h.body.checks.database?.status === 'up' ? h : undefined;
      },
      { timeoutMs: 30_000, description: 'billing /health: broker down, database up' },
    );
    // The public body says down, no more; why is in billing's log.
    assert.deepEqual(down.body.checks.broker, { status: 'down' });
    await waitFor(() => /"msg":"health check down".*(ECONNREFUSED|not connected)|(ECONNREFUSED|not connected).*"msg":"health check down"/.test(billing?.logs() ?? ''), {
      description: 'the reason in billing\'s log',
    });
    const gatewayHealth = await health(gatewayUrl(config));
    assert.equal(gatewayHealth?.body.checks.broker?.status, 'down');

    const refused = await postOrder(config, sampleOrder(1));
    assert.equal(refused.status, 503);
    assert.equal(refused.body.error?.code, 'order_not_queued');
    assert.match(refused.body.error?.message ?? '', /not taken/);

    await rabbit.start();
    const accepted = await waitFor(
      async () => {
        const res = await postOrder(config, sampleOrder(2));
        return res.status === 200 ? res : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 200, description: 'the gateway to accept orders' },
    );
    await waitFor(async () => (await health(billingUrl(config)))?.status === 200, { timeoutMs: 30_000, description: 'billing healthy' });
    await waitFor(() => db('orders').where({ message_id: accepted.body.message_id }).first(), { description: 'the order stored' });
    assert.ok(billing.running && gateway.running, 'neither service exited');
  });

  it('broker stopped while orders are posted: every 200 is stored once, the others got 503, and the gateway accepts again by itself', async () => {
    assert.ok(gateway && billing);
    await db('orders').truncate();
    const gatewayPid = gateway.pid;
    const billingPid = billing.pid;

    const responses: Array<OrderResponse & { at: number }> = [];
    let posting = true;
    let n = 1000;
    const poster = async (): Promise<void> => {
      while (posting) {
        const res = await postOrder(config, sampleOrder(n++));
        responses.push({ ...res, at: Date.now() });
        if (res.status !== 200) await new Promise((r) => setTimeout(r, 20)); // no busy loop while refused
      }
    };
    const posters = Array.from({ length: 8 }, poster);
    let restartedAt = Infinity;
    try {
      await waitFor(() => responses.filter((r) => r.status === 200).length >= 200, { timeoutMs: 30_000, description: '200 orders accepted' });
      await rabbit.stop();
      const stoppedAt = Date.now();
      await waitFor(() => responses.filter((r) => r.at > stoppedAt && r.status === 503).length >= 20, {
        timeoutMs: 30_000,
        description: 'orders refused while the broker is down',
      });
      await rabbit.start();
      restartedAt = Date.now();
      await waitFor(() => responses.filter((r) => r.at > restartedAt && r.status === 200).length >= 200, {
        timeoutMs: 60_000,
        description: 'the gateway to accept orders again without a restart',
      });
    } finally {
      posting = false;
      await Promise.all(posters);
    }

    const statuses = new Set(responses.map((r) => r.status));
    assert.deepEqual([...statuses].sort(), [200, 503], `every answer is 200 or 503: ${[...statuses]}`);
    for (const r of responses.filter((x) => x.status === 503)) assert.equal(r.body.error?.code, 'order_not_queued');
    const confirmed = confirmedIds(responses);
    const refused = responses.length - confirmed.length;

    // Wait for the confirmed ids themselves, not a row count: orders that got 503 may be stored
    // too (the broker kept a message whose confirm was lost), and would make a count look done
    // while a confirmed order is still on its way. A timeout falls through to the exact check.
    await waitFor(
      async () => {
        const stored = await rowsByMessageId(db);
        return confirmed.every((id) => stored.has(id));
      },
      { timeoutMs: 60_000, description: `${confirmed.length} confirmed orders stored` },
    ).catch(() => undefined);
    await waitFor(async () => (await health(billingUrl(config)))?.status === 200, { description: 'billing healthy' });
    const rows = await rowsByMessageId(db);
    assert.equal(checkStored(rows, confirmed, refused), undefined);
    const firstAcceptedAgain = Math.min(...responses.filter((r) => r.at > restartedAt && r.status === 200).map((r) => r.at));
    metric('broker stopped and started under load', {
      accepted: confirmed.length,
      refused,
      storedAlthoughRefused: rows.size - confirmed.length,
      acceptingAgainAfterMs: firstAcceptedAgain - restartedAt,
    });
    // No order is stored twice under two ids either (every posted order has its own amount).
    for (const [amount, count] of await rowsByAmount(db)) assert.equal(count, 1, `amount ${amount} stored ${count} times`);
    assert.equal(gateway.pid, gatewayPid);
    assert.equal(billing.pid, billingPid);
    assert.ok(gateway.running && billing.running, 'neither service crashed');
  });
});
