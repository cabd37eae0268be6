/**
 * The bare loops the services are compared with: what PostgreSQL and RabbitMQ do on this machine
 * with no HTTP, no framework and no service code in between. Each is bounded in time and count.
 */
import { randomUUID } from 'node:crypto';
import * as amqp from 'amqplib';
import pg from 'pg';

export interface LoopResult {
  /** Operations per second. */
  rate: number;
  count: number;
  p50Ms: number;
  p99Ms: number;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

/** Runs `concurrency` loops of `op` until `durationS` passes or `maxOps` are done; times each op. */
async function timedLoops(concurrency: number, durationS: number, maxOps: number, op: () => Promise<void>): Promise<LoopResult> {
  const latencies = new Float64Array(maxOps);
  let count = 0;
  const started = performance.now();
  const deadline = started + durationS * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline && count < maxOps) {
        const t0 = performance.now();
        await op();
        if (count < maxOps) latencies[count++] = performance.now() - t0;
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  const sorted = latencies.slice(0, count).sort();
  return { rate: count / elapsed, count, p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99) };
}

export interface PgLoopOptions {
  config: pg.ClientConfig;
  sql: string;
  params: () => unknown[];
  concurrency: number;
  durationS: number;
  warmupS?: number;
}

/** The database ceiling: the same statement the service runs, from a plain pg pool. */
export async function pgQueryLoop(options: PgLoopOptions): Promise<LoopResult> {
  const pool = new pg.Pool({ ...options.config, max: options.concurrency });
  pool.on('error', () => undefined);
  try {
    const op = async () => {
      await pool.query(options.sql, options.params());
    };
    if (options.warmupS) await timedLoops(options.concurrency, options.warmupS, 5_000_000, op);
    return await timedLoops(options.concurrency, options.durationS, 5_000_000, op);
  } finally {
    await pool.end();
  }
}

export interface AmqpTarget {
  url: string;
  queue: string;
}

/** A message as the gateway publishes an order: persistent, JSON, a random message id. */
function publishOptions(): amqp.Options.Publish {
  return { persistent: true, contentType: 'application/json', messageId: randomUUID(), timestamp: Math.floor(Date.now() / 1000) };
}

/**
 * The broker ceiling for POST /api/billing: `concurrency` publishers on one confirm channel, each
 * waiting for the broker's confirm of its message before sending the next, as the gateway does
 * for each request.
 */
export async function amqpConfirmLoop(target: AmqpTarget, body: string, concurrency: number, durationS: number): Promise<LoopResult> {
  const connection = await amqp.connect(target.url);
  try {
    const channel = await connection.createConfirmChannel();
    await channel.assertQueue(target.queue, { durable: true });
    const content = Buffer.from(body);
    return await timedLoops(
      concurrency,
      durationS,
      5_000_000,
      () =>
        new Promise<void>((resolve, reject) => {
          channel.publish('', target.queue, content, publishOptions(), (err) => (err ? reject(err) : resolve()));
        }),
    );
  } finally {
    await connection.close().catch(() => undefined);
  }
}

/** Puts `count` orders on the queue as fast as the broker confirms them; resolves with the seconds it took. */
export async function publishBacklog(target: AmqpTarget, count: number, order: () => string): Promise<number> {
  const connection = await amqp.connect(target.url);
  try {
    const channel = await connection.createConfirmChannel();
    await channel.assertQueue(target.queue, { durable: true });
    const started = performance.now();
    for (let i = 0; i < count; i++) {
      if (!channel.publish('', target.queue, Buffer.from(order()), publishOptions())) {
        await new Promise((resolve) => channel.once('drain', resolve));
      }
      // Bound the unconfirmed window, so memory stays small whatever the count.
      if (i % 5000 === 4999) await channel.waitForConfirms();
    }
    await channel.waitForConfirms();
    return (performance.now() - started) / 1000;
  } finally {
    await connection.close().catch(() => undefined);
  }
}

/**
 * The broker's side of the drain: a bare consumer of `count` queued messages at the worker's
 * prefetch, acknowledging every `batch` deliveries at once (as the worker's `multiple` ack does),
 * writing nothing anywhere. How fast RabbitMQ hands a backlog out at that window on this machine;
 * resolves with messages per second from the first delivery to the last.
 */
export async function amqpDrainLoop(target: AmqpTarget, count: number, prefetch: number, batch: number, maxS: number): Promise<number> {
  const connection = await amqp.connect(target.url);
  try {
    const channel = await connection.createChannel();
    await channel.prefetch(prefetch);
    let received = 0;
    let firstAt = 0;
    return await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`bare consumer: ${received} of ${count} messages in ${maxS} s`)), maxS * 1000);
      channel
        .consume(
          target.queue,
          (message) => {
            if (!message) return;
            if (received === 0) firstAt = performance.now();
            received++;
            if (received % batch === 0 || received === count) channel.ack(message, true);
            if (received === count) {
              clearTimeout(timer);
              resolve(count / ((performance.now() - firstAt) / 1000));
            }
          },
          { noAck: false },
        )
        .catch((err: unknown) => {
          clearTimeout(timer);
          reject(err instanceof Error ? err : new Error(String(err)));
        });
    });
  } finally {
    await connection.close().catch(() => undefined);
  }
}

export async function queueDepth(target: AmqpTarget): Promise<number> {
  const connection = await amqp.connect(target.url);
  try {
    const channel = await connection.createChannel();
    const { messageCount } = await channel.assertQueue(target.queue, { durable: true });
    return messageCount;
  } finally {
    await connection.close().catch(() => undefined);
  }
}

export async function purgeQueue(target: AmqpTarget): Promise<void> {
  const connection = await amqp.connect(target.url);
  try {
    const channel = await connection.createChannel();
    await channel.assertQueue(target.queue, { durable: true });
    await channel.purgeQueue(target.queue);
  } finally {
    await connection.close().catch(() => undefined);
  }
}

/**
 * The database ceiling for the backlog drain: the same rows written by a bare loop of multi-row
 * INSERTs of `batchSize`, one statement (one transaction) after another, as the worker writes its
 * batches, into a copy of the orders table with the same constraints.
 */
export async function insertLoop(config: pg.ClientConfig, rows: number, batchSize: number, maxS: number): Promise<LoopResult> {
  const client = new pg.Client(config);
  await client.connect();
  try {
    await client.query('DROP TABLE IF EXISTS orders_bench_ceiling');
    await client.query('CREATE TABLE orders_bench_ceiling (LIKE orders INCLUDING ALL)');
    const values: string[] = [];
    for (let i = 0; i < batchSize; i++) {
      const o = i * 4;
      values.push(`($${o + 1}, $${o + 2}, $${o + 3}, $${o + 4})`);
    }
    const sql =
      'INSERT INTO orders_bench_ceiling (message_id, user_id, number_of_items, total_amount) VALUES ' +
      `${values.join(', ')} ON CONFLICT (message_id) DO NOTHING RETURNING id`;
    let written = 0;
    const result = await timedLoops(1, maxS, Math.ceil(rows / batchSize), async () => {
      const params: unknown[] = [];
      for (let i = 0; i < batchSize; i++) params.push(randomUUID(), 1 + (i % 1000), 1 + (i % 9), '180.00');
      const res = await client.query(sql, params);
      written += res.rowCount ?? 0;
    });
    return { ...result, count: written, rate: result.rate * batchSize };
  } finally {
    await client.query('DROP TABLE IF EXISTS orders_bench_ceiling').catch(() => undefined);
    await client.end();
  }
}
