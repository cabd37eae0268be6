import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Knex } from '@crud-master/common';
import { runDir, sharedPostgres, sharedRabbit, uniqueName, waitFor } from '../harness/fixtures';
import { trackPid } from '../harness/processes';
import {
  ROOT,
  amqpClient,
  billingUrl,
  checkStored,
  confirmedIds,
  countOrders,
  gatewayUrl,
  health,
  metric,
  newStackConfig,
  ordersDb,
  postOrder,
  postOrders,
  rowsByMessageId,
  serviceEnv,
  type StackConfig,
} from './billing-stack';

const execFileAsync = promisify(execFile);
const PM2 = path.join(ROOT, 'node_modules', '.bin', 'pm2');

interface Pm2Process {
  name: string;
  pid: number;
  /** axm_monitor: the metrics PM2's in-process agent (@pm2/io) reports, when it runs. */
  pm2_env: { status: string; axm_monitor?: Record<string, unknown> };
}

/** PM2 runs the compiled dist/main.js: the last build must be newer than every source file. */
function assertBuilt(service: string): void {
  const dir = path.join(ROOT, 'srcs', service);
  const main = path.join(dir, 'dist', 'main.js');
  const buildInfo = path.join(dir, 'tsconfig.tsbuildinfo');
  if (!fs.existsSync(main) || !fs.existsSync(buildInfo)) throw new Error(`${main} is missing: build first (npx tsc -b; npm test does)`);
  const built = fs.statSync(buildInfo).mtimeMs;
  const newer = (sub: string): string | undefined => {
    for (const entry of fs.readdirSync(sub, { withFileTypes: true })) {
      const file = path.join(sub, entry.name);
      const found = entry.isDirectory() ? newer(file) : fs.statSync(file).mtimeMs > built ? file : undefined;
      if (found) return found;
    }
    return undefined;
  };
  const stale = newer(path.join(dir, 'src'));
  if (stale) throw new Error(`${stale} changed after the last build: build first (npx tsc -b; npm test does)`);
}

/*
 * The users' resilience check, literally: `pm2 stop billing_app`, post, 200 and no row;
 * `pm2 start billing_app`, the row appears. PM2 runs with a private PM2_HOME under the run
 * directory and the repository's ecosystem.config.js, with the environment pointing the apps at
 * the harness's broker and database; its daemon is killed at the end.
 */
describe('billing with PM2: pm2 stop billing_app, post, pm2 start billing_app', function () {
  this.timeout(180_000);
  let config: StackConfig;
  let pm2Home: string;
  let db: Knex;
  let mq: Awaited<ReturnType<typeof amqpClient>>;
  let daemonStarted = false;

  const pm2 = async (...args: string[]): Promise<string> => {
    const { stdout } = await execFileAsync(PM2, args, {
      cwd: ROOT,
      env: { ...process.env, ...serviceEnv(config), PM2_HOME: pm2Home },
      timeout: 60_000,
      maxBuffer: 16 * 1024 * 1024,
    });
    return stdout;
  };
  const processes = async (): Promise<Pm2Process[]> => JSON.parse(await pm2('jlist')) as Pm2Process[];
  const statusOf = async (name: string): Promise<string | undefined> =>
    (await processes()).find((p) => p.name === name)?.pm2_env.status;
  /** Records PM2's daemon and apps for scripts/test.sh's safety net, should `pm2 kill` never run. */
  const track = async (): Promise<void> => {
    const daemon = Number(fs.readFileSync(path.join(pm2Home, 'pm2.pid'), 'utf8').trim());
    if (daemon > 0) trackPid(runDir(), daemon, 'pid', 'pm2_daemon');
    for (const p of await processes()) if (p.pid > 0) trackPid(runDir(), p.pid, 'pid', `pm2_${p.name}`);
  };
  const startBillingApp = async (): Promise<void> => {
    await pm2('start', 'billing_app');
    await track();
  };

  before(async () => {
    assertBuilt('billing-app');
    assertBuilt('api-gateway');
    config = await newStackConfig(await sharedRabbit(), await sharedPostgres());
    pm2Home = path.join(runDir(), uniqueName('pm2_home'));
    fs.mkdirSync(pm2Home, { recursive: true });
    daemonStarted = true;
    await pm2('start', path.join(ROOT, 'ecosystem.config.js'), '--only', 'billing_app,api_gateway');
    await track();
    await waitFor(async () => (await health(billingUrl(config)))?.status === 200, { timeoutMs: 60_000, description: 'billing_app healthy' });
    await waitFor(async () => (await health(gatewayUrl(config)))?.body.checks.broker?.status === 'up', {
      timeoutMs: 60_000,
      description: 'api_gateway connected to the broker',
    });
    db = ordersDb(config);
    mq = await amqpClient(config.rabbit);
  });
  beforeEach(async () => {
    await db('orders').truncate();
  });
  after(async () => {
    await mq?.close();
    await db?.destroy();
    if (daemonStarted) await pm2('kill').catch((err: unknown) => process.stderr.write(`pm2 kill: ${String(err)}\n`));
  });

  it('runs the services without the in-process agent of PM2 (pmx: false): no @pm2/io metering each request', async () => {
    // The agent reports its first metrics (heap, event loop, HTTP) within a second or two.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    for (const app of await processes()) {
      assert.equal(app.pm2_env.status, 'online', app.name);
      assert.deepEqual(Object.keys(app.pm2_env.axm_monitor ?? {}), [], `${app.name}: metrics of PM2's agent`);
    }
  });

  it('one order: 200 while billing_app is stopped, no row; the row appears after pm2 start billing_app', async () => {
    await pm2('stop', 'billing_app');
    assert.equal(await statusOf('billing_app'), 'stopped');

    const res = await postOrder(config, { user_id: '20', number_of_items: '99', total_amount: '250' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.status, 'queued');
    // The order is in billing_queue, and nothing has written it.
    await waitFor(async () => (await mq.channel.checkQueue(config.queue)).messageCount === 1, { description: 'the order in billing_queue' });
    assert.equal(await countOrders(db), 0);

    await startBillingApp();
    assert.equal(await statusOf('billing_app'), 'online');
    const row = await waitFor(() => db('orders').where({ message_id: res.body.message_id }).first(), {
      timeoutMs: 60_000,
      description: 'the row after pm2 start billing_app',
    });
    assert.deepEqual([row.user_id, row.number_of_items, row.total_amount], [20, 99, '250.00']);
    assert.equal(await countOrders(db), 1);
  });

  it('1,000 orders: all 200 while billing_app is stopped, no row; exactly 1,000 rows after pm2 start billing_app', async () => {
    await pm2('stop', 'billing_app');
    assert.equal(await statusOf('billing_app'), 'stopped');

    const postStart = Date.now();
    const responses = await postOrders(config, 1000, 50);
    const postMs = Date.now() - postStart;
    const statuses = [...new Set(responses.map((r) => r.status))];
    assert.deepEqual(statuses, [200], `statuses: ${statuses}`);
    const confirmed = confirmedIds(responses);
    assert.equal(new Set(confirmed).size, 1000);
    assert.equal((await mq.channel.checkQueue(config.queue)).messageCount, 1000, 'all 1,000 wait in billing_queue');
    assert.equal(await countOrders(db), 0);

    const started = Date.now();
    await startBillingApp();
    let firstRowAt = 0;
    await waitFor(
      async () => {
        const n = await countOrders(db);
        if (n > 0 && firstRowAt === 0) firstRowAt = Date.now();
        return n >= 1000;
      },
      { timeoutMs: 60_000, intervalMs: 25, description: '1,000 rows' },
    );
    const doneAt = Date.now();
    assert.equal(checkStored(await rowsByMessageId(db), confirmed), undefined);
    assert.equal(await countOrders(db), 1000);
    metric('1,000 orders through PM2', {
      postMs,
      postPerSec: Math.round(1000 / (postMs / 1000)),
      startToAllRowsMs: doneAt - started,
      firstToLastRowMs: doneAt - firstRowAt,
      drainPerSec: Math.round(1000 / (Math.max(1, doneAt - firstRowAt) / 1000)),
    });
  });
});
