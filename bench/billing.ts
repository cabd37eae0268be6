/** The billing figures: POST /api/billing with confirms, and draining a backlog into orders_db. */
import fs from 'node:fs';
import path from 'node:path';
import { amqpConfirmLoop, amqpDrainLoop, insertLoop, publishBacklog, purgeQueue, queueDepth, type AmqpTarget } from './ceilings';
import { unavailable, type BenchContext } from './context';
import { describeLoad, mergeLoads, runLoad } from './load';
import { CpuMeter, describeCpu } from './memory';
import { formatSummary, newestProfile, summarizeProfile } from './profile';
import { fmt } from './report';
import { BILLING_PREFETCH, ROOT, type Service } from './stack';
import { batchSizeFor } from '../srcs/billing-app/src/config';
import type pg from 'pg';

const QUEUE = 'billing_queue';
const ORDER = JSON.stringify({ user_id: '3', number_of_items: '5', total_amount: '180' });

/** Why billing cannot be measured, or undefined when it can. */
export function billingMissing(): string | undefined {
  const needed = ['srcs/billing-app/dist/main.js', 'srcs/api-gateway/dist/billing/index.js'];
  const missing = needed.filter((f) => !fs.existsSync(path.join(ROOT, f)));
  return missing.length > 0 ? `not built: ${missing.join(', ')}` : undefined;
}

/** Waits until POST /api/billing answers 200 (the gateway's publisher connects in the background). */
async function gatewayPublishes(gateway: Service, timeoutMs: number): Promise<string | undefined> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${gateway.url}/api/billing`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: ORDER,
        signal: AbortSignal.timeout(5000),
      });
      last = `${res.status} ${(await res.text()).slice(0, 200)}`;
      if (res.status === 200) return undefined;
      if (res.status === 404 || res.status === 405) return `POST /api/billing answered ${last}`;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return `POST /api/billing never answered 200 (last: ${last})`;
}

async function ordersCount(client: pg.Client): Promise<number> {
  const exists = await client.query<{ t: string | null }>(`SELECT to_regclass('orders')::text AS t`);
  if (!exists.rows[0]?.t) return 0;
  return Number((await client.query<{ n: string }>('SELECT count(*) AS n FROM orders')).rows[0]?.n);
}

export interface Drain {
  /** Orders per second from the first row written to the last. */
  rate: number;
  /** Seconds from starting the worker to the last row. */
  totalS: number;
  /** Seconds from starting the worker to its first row (start-up, connecting). */
  startupS: number;
  publishS: number;
  /** CPU time per order of the worker, PostgreSQL and RabbitMQ (describeCpu). */
  cpu: string;
}

/**
 * Queues `count` orders while the worker is stopped (as after `pm2 stop billing_app`), starts it
 * (with CPU profiling when the stack says so) and waits until every order is a row.
 */
export async function drainBacklog(ctx: BenchContext, count: number): Promise<Drain> {
  const { stack, log } = ctx;
  const target: AmqpTarget = { url: stack.amqpUrl(), queue: QUEUE };
  await purgeQueue(target);
  const publishS = await publishBacklog(target, count, () => ORDER);
  const depth = await queueDepth(target);
  if (depth !== count) throw new Error(`queued ${depth} orders, expected ${count}`);
  log(`backlog: ${count} orders queued in ${publishS.toFixed(1)} s`);

  const client = await stack.client(stack.orders);
  const before = await ordersCount(client);
  const started = performance.now();
  const worker = await stack.startBilling();
  const meter = new CpuMeter({ worker: () => [worker.proc.pid], postgres: () => stack.postgresPids(), rabbitmq: () => stack.rabbitPids() });
  let firstAt: number | undefined;
  let doneAt: number | undefined;
  let cpu = '';
  try {
    const deadline = performance.now() + Math.max(60_000, count); // >= 1000 orders/s or give up
    while (performance.now() < deadline) {
      const n = (await ordersCount(client)) - before;
      if (n > 0 && firstAt === undefined) firstAt = performance.now();
      if (n >= count) {
        doneAt = performance.now();
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } finally {
    cpu = describeCpu(meter.stop(), count).replace('per request', 'per order');
    await client.end();
    await stack.stopService(worker);
  }
  if (firstAt === undefined || doneAt === undefined) throw new Error('the worker did not drain the backlog in time');
  const rate = count / ((doneAt - firstAt) / 1000);
  const totalS = (doneAt - started) / 1000;
  log(`drain: ${Math.round(rate)} orders/s (${totalS.toFixed(1)} s from starting the worker); ${cpu}`);
  return { rate, totalS, startupS: (firstAt - started) / 1000, publishS, cpu };
}

/**
 * A CPU profile of the gateway under POST /api/billing (the worker stopped, as in the measured
 * run): the gateway is restarted with profiling for the load, then without. The summary, or
 * undefined when billing cannot run here.
 */
export async function profileOrders(ctx: BenchContext, dir: string): Promise<string | undefined> {
  const { stack, settings, log } = ctx;
  if (billingMissing() !== undefined || !stack.rabbit) return undefined;
  await stack.stopService(ctx.gateway);
  stack.profileDir = dir;
  const spawned = performance.now();
  let gateway: Service;
  try {
    gateway = await stack.startGateway(ctx.inventory);
  } finally {
    stack.profileDir = undefined;
  }
  const skipMs = performance.now() - spawned;
  let load;
  try {
    const missing = await gatewayPublishes(gateway, 20_000);
    if (missing) throw new Error(missing);
    load = await runLoad({ url: `${gateway.url}/api/billing`, method: 'POST', headers: { 'content-type': 'application/json' }, body: ORDER, connections: settings.connections, durationS: settings.durationS, warmupS: settings.warmupS });
    log(`profiling POST /api/billing: ${describeLoad(load)}`);
  } finally {
    await stack.stopService(gateway);
    ctx.gateway = await stack.startGateway(ctx.inventory);
  }
  const file = newestProfile(path.join(dir, 'gateway'));
  // The warm-up's orders count too: they are in the profile.
  const orders = Math.round(load.requests * (1 + settings.warmupS / settings.durationS));
  return file ? formatSummary('gateway, under POST /api/billing', summarizeProfile(file, 16, skipMs), { count: orders, unit: 'order' }) : undefined;
}

export async function billing(ctx: BenchContext): Promise<void> {
  const { settings, stack, log } = ctx;
  const postFigure = 'POST /api/billing through the gateway (confirmed by RabbitMQ)';
  const drainFigure = `backlog of ${settings.orders.toLocaleString('en')} queued orders drained into orders_db`;
  const noBroker = stack.rabbit ? undefined : `RabbitMQ did not start: ${stack.rabbitError ?? 'unknown'}`.slice(0, 160);
  const missing = billingMissing() ?? noBroker ?? (await gatewayPublishes(ctx.gateway, 20_000));
  if (missing) {
    ctx.rows.push(unavailable(postFigure, missing), unavailable(drainFigure, missing));
    return;
  }
  const target: AmqpTarget = { url: stack.amqpUrl(), queue: QUEUE };

  // --- POST /api/billing (the worker is not running: orders pile up, as when it is stopped) ---
  // Alternated with the bare loop (POST, bare, POST, bare), so other work on the machine weighs
  // on both alike.
  const postLoad = {
    url: `${ctx.gateway.url}/api/billing`,
    method: 'POST' as const,
    headers: { 'content-type': 'application/json' },
    body: ORDER,
    connections: settings.connections,
    cpu: { 'load generator': () => [process.pid], gateway: () => [ctx.gateway.proc.pid], rabbitmq: () => stack.rabbitPids() },
  };
  await runLoad({ ...postLoad, durationS: settings.warmupS });
  await amqpConfirmLoop(target, ORDER, settings.connections, settings.warmupS);
  const half = Math.max(1, Math.round(settings.durationS / 2));
  const posts = [];
  const bares = [];
  for (let round = 0; round < 2; round++) {
    posts.push(await runLoad({ ...postLoad, durationS: half }));
    bares.push(await amqpConfirmLoop(target, ORDER, settings.connections, half));
  }
  const post = mergeLoads(posts);
  const bare = { rate: bares.reduce((sum, b) => sum + b.rate, 0) / bares.length, p99Ms: Math.max(...bares.map((b) => b.p99Ms)) };
  log(`POST /api/billing: ${describeLoad(post)}`);
  if (post.cpu) {
    const line = describeCpu(post.cpu, post.requests);
    log(`  ${line}`);
    ctx.notes.push(`POST /api/billing: ${line}.`);
  }
  log(`bare amqplib confirm-publish loop: ${Math.round(bare.rate)} msg/s, p99 ${bare.p99Ms.toFixed(2)} ms`);
  ctx.rows.push({
    figure: postFigure,
    value: fmt.rate(post.rps, 'req/s'),
    ceiling: `bare amqplib confirm-publish loop, ${settings.connections} in flight, ${fmt.rate(bare.rate, 'msg/s')}`,
    ratio: fmt.ratio(post.rps / bare.rate),
    target: fmt.check(post.rps / bare.rate >= 0.6, '>= 0.60:'),
    raw: { rps: post.rps, p99Ms: post.p99Ms, errors: post.errors + post.non2xx, bareRate: bare.rate },
  });

  // --- the backlog, between two runs of its ceiling (their mean is the ceiling) ---
  // The ceiling copies the orders table, which the stack migrated (as migrate.js does).
  const batch = batchSizeFor(BILLING_PREFETCH); // the worker's batch, as its config computes it
  const before = await insertLoop({ ...stack.orders, ...stack.orders.owner }, settings.orders, batch, 120);
  const drained = await drainBacklog(ctx, settings.orders);
  const { rate: drainRate, totalS, publishS } = drained;
  ctx.notes.push(`Backlog drain (from the worker's start): ${drained.cpu}.`);
  const after = await insertLoop({ ...stack.orders, ...stack.orders.owner }, settings.orders, batch, 120);
  const ceiling = { rate: (before.rate + after.rate) / 2, p50Ms: (before.p50Ms + after.p50Ms) / 2 };
  log(
    `bare multi-row INSERT loop (${batch} rows per statement), before and after the drain: ${Math.round(before.rate)} and ` +
      `${Math.round(after.rate)} rows/s, p50 ${ceiling.p50Ms.toFixed(2)} ms per statement`,
  );
  const bigBatch = batch * 2;
  const bigger = await insertLoop({ ...stack.orders, ...stack.orders.owner }, settings.orders, bigBatch, 120);
  log(`bare multi-row INSERT loop (${bigBatch} rows per statement): ${Math.round(bigger.rate)} rows/s, p50 ${bigger.p50Ms.toFixed(2)} ms per statement`);
  ctx.rows.push({
    figure: drainFigure,
    value: fmt.rate(drainRate, 'orders/s'),
    ceiling: `bare ${batch}-row INSERT loop ${fmt.rate(ceiling.rate, 'rows/s')}`,
    ratio: fmt.ratio(drainRate / ceiling.rate),
    target: `${fmt.check(drainRate / ceiling.rate >= 0.5, '>= 0.50:')}; ${fmt.check(drainRate >= 10_000, '>= 10,000/s:')}`,
    raw: { rate: drainRate, totalS, publishS, ceilingRate: ceiling.rate, ceilingStatementMs: ceiling.p50Ms, bigBatchRate: bigger.rate },
  });
  // The drain's other ceiling: RabbitMQ handing the same backlog to a consumer that writes nothing.
  await purgeQueue(target);
  await publishBacklog(target, settings.orders, () => ORDER);
  const handedOut = await amqpDrainLoop(target, settings.orders, BILLING_PREFETCH, batch, 120);
  log(`bare amqplib consumer of the backlog (prefetch ${BILLING_PREFETCH}, one ack per ${batch}): ${Math.round(handedOut)} msg/s`);
  ctx.rows.push({
    figure: `backlog of ${settings.orders.toLocaleString('en')} queued orders drained, against RabbitMQ handing it out alone`,
    value: fmt.rate(drainRate, 'orders/s'),
    ceiling: `bare amqplib consumer, prefetch ${BILLING_PREFETCH}, writes nothing ${fmt.rate(handedOut, 'msg/s')}`,
    ratio: fmt.ratio(drainRate / handedOut),
    target: '',
    raw: { rate: drainRate, ceilingRate: handedOut },
  });
  ctx.notes.push(
    `Each INSERT is one durable commit: ${batch} rows per statement took ${ceiling.p50Ms.toFixed(2)} ms (median) in the bare loop, ` +
      `${bigBatch} rows ${bigger.p50Ms.toFixed(2)} ms (${fmt.rate(bigger.rate, 'rows/s')}).`,
  );
  ctx.notes.push(
    `The drain rate counts from the first order row to the last; with the worker's start-up it took ${totalS.toFixed(1)} s. ` +
      `Publishing the backlog (persistent messages, confirms) took ${publishS.toFixed(1)} s.`,
  );
}
