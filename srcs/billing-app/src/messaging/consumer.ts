import * as amqp from 'amqplib';
import type { ChannelModel, ConfirmChannel, ConsumeMessage, Message } from 'amqplib';
import type { Logger } from '@crud-master/common';
import type { OrderStore } from '../orders/order';
import type { BillingMetrics } from '../metrics';
import {
  RECONNECT_BACKOFF,
  backoffDelay,
  connectOptions,
  describeError,
  sleep,
  type AmqpConfig,
  type BackoffOptions,
} from '@crud-master/billing-contract';
import { handleBatch, type BatchResult } from './handler';
import { assertBillingQueue, assertDeadLetterQueue, deadLetterQueueOf, requestIdOfHeaders } from '@crud-master/billing-contract';

export interface ConsumerOptions {
  amqp: AmqpConfig;
  /** Unacknowledged messages the broker may hand over at once. */
  prefetch: number;
  /** Largest batch written in one insert (at most `prefetch`). */
  batchSize: number;
  /** A smaller batch is written after waiting this long for more (ms). */
  flushIntervalMs: number;
  /** Batches written at once, each in its own transaction; acknowledged in delivery order (default 2). */
  maxBatchesInFlight?: number;
  orders: OrderStore;
  logger: Logger;
  /** Delays between attempts to reach the broker. */
  reconnectBackoff?: BackoffOptions;
  /** Delays between attempts to write a batch while the database fails. */
  retryBackoff?: BackoffOptions;
  /** How long stop() waits for the batch in hand to be written before giving it back (ms). */
  stopTimeoutMs?: number;
  /** Message counters, batch timings, and the source of the queue depth gauges. */
  metrics?: BillingMetrics;
}

export interface ConsumerCounters {
  inserted: number;
  duplicates: number;
  deadLettered: number;
  batches: number;
}

const DB_RETRY_BACKOFF: BackoffOptions = { initialMs: 100, maxMs: 3000, factor: 2, jitter: 0.5 };
/** A queue depth the broker does not report within this long is unknown (ms). */
const DEPTH_TIMEOUT_MS = 2000;

/**
 * Consumes `billing_queue` with manual acknowledgement. One `Session` per connection: a
 * connection or channel loss ends the session, its unacknowledged messages go back to the queue
 * (the broker redelivers them), and the consumer reconnects with backoff until stop().
 *
 * Deliveries are buffered and written in batches: when `batchSize` are waiting, or
 * `flushIntervalMs` after the first one. Up to `maxBatchesInFlight` batches are written at once
 * (so PostgreSQL works on one while the other commits), and acknowledged strictly in delivery
 * order: a batch committed before an earlier one waits for that one's ack before sending its
 * own, since its ack (`multiple`) covers every delivery before it. While one is written the
 * broker keeps delivering up to `prefetch`, so the next batch is ready.
 * While the database fails the batch in hand is retried with backoff and nothing is acknowledged:
 * the prefetch limit stops the broker from handing over more, so consumption pauses by itself.
 */
export class BillingConsumer {
  private session: Session | undefined;
  private loop: Promise<void> | undefined;
  private readonly stopping = new AbortController();
  private lastError: string | undefined = 'not connected yet';
  private databaseError: string | undefined;
  readonly counters: ConsumerCounters = { inserted: 0, duplicates: 0, deadLettered: 0, batches: 0 };

  constructor(private readonly options: ConsumerOptions) {
    if (options.metrics) {
      options.metrics.depths = {
        queue: () => this.queueDepth(options.amqp.queue),
        deadLetterQueue: () => this.queueDepth(deadLetterQueueOf(options.amqp.queue)),
      };
    }
  }

  /** Starts connecting in the background; a broker that is not up yet is retried, never fatal. */
  start(): void {
    this.loop ??= this.run();
  }

  /** For /health: resolves with details while consuming, throws with the reason otherwise. */
  async check(): Promise<Record<string, unknown>> {
    if (!this.session?.consuming) throw new Error(`not consuming: ${this.lastError ?? 'starting'}`);
    return {
      queue: this.options.amqp.queue,
      ...this.counters,
      ...(this.databaseError ? { writeError: this.databaseError } : {}),
    };
  }

  /** Messages ready in `queue`, asked of the broker now; rejects while there is no connection. */
  async queueDepth(queue: string): Promise<number> {
    const session = this.session;
    if (!session) throw new Error(`not connected: ${this.lastError ?? 'starting'}`);
    return session.queueDepth(queue, DEPTH_TIMEOUT_MS);
  }

  /**
   * Graceful stop: cancel the consumer, write and acknowledge what is in hand (bounded by
   * `stopTimeoutMs`; what cannot be written goes back to the queue unacknowledged), then close
   * the channel and the connection.
   */
  async stop(): Promise<void> {
    this.stopping.abort();
    await this.session?.drainAndClose(this.options.stopTimeoutMs ?? 5000);
    await this.loop;
  }

  private async run(): Promise<void> {
    const { logger } = this.options;
    let attempt = 0;
    while (!this.stopping.signal.aborted) {
      try {
        const session = await this.open();
        if (this.stopping.signal.aborted) {
          // stop() came while connecting: it did not see this session, so close it here.
          await session.drainAndClose(0);
          break;
        }
        attempt = 0;
        this.lastError = undefined;
        this.session = session;
        logger.info({ queue: this.options.amqp.queue, prefetch: this.options.prefetch }, 'consuming');
        const reason = await session.closed;
        this.lastError = reason;
        if (!this.stopping.signal.aborted) logger.warn({ reason }, 'lost the broker; reconnecting');
      } catch (err) {
        this.lastError = describeError(err);
        logger.warn({ err: this.lastError, attempt }, 'cannot reach the broker');
      } finally {
        this.session = undefined;
      }
      if (this.stopping.signal.aborted) break;
      await sleep(backoffDelay(attempt++, this.options.reconnectBackoff ?? RECONNECT_BACKOFF), this.stopping.signal);
    }
  }

  private async open(): Promise<Session> {
    const { amqp: config, logger } = this.options;
    const connection = await amqp.connect(connectOptions(config), {
      timeout: 5000,
      clientProperties: { connection_name: 'billing-app' },
    });
    // Listeners first: an 'error' without a listener would crash the process.
    connection.on('error', (err: Error) => logger.warn({ err: describeError(err) }, 'broker connection error'));
    connection.on('blocked', (reason: string) => logger.warn({ reason }, 'broker blocked the connection'));
    try {
      if (this.stopping.signal.aborted) throw new Error('stopping');
      const channel = await connection.createConfirmChannel();
      channel.on('error', (err: Error) => logger.warn({ err: describeError(err) }, 'broker channel error'));
      const session = new Session(connection, channel, this.options, {
        onBatch: (result, seconds) => this.record(result, seconds),
        onWriteError: (err) => {
          this.databaseError = err;
        },
      });
      await assertBillingQueue(channel, config.queue);
      await assertDeadLetterQueue(channel, config.queue);
      await channel.prefetch(this.options.prefetch);
      await session.consume();
      return session;
    } catch (err) {
      await connection.close().catch(() => undefined);
      throw err;
    }
  }

  private record(result: BatchResult, seconds: number): void {
    this.databaseError = undefined;
    this.counters.batches += 1;
    this.counters.inserted += result.inserted;
    this.counters.duplicates += result.duplicates;
    this.counters.deadLettered += result.deadLettered;
    const metrics = this.options.metrics;
    if (metrics) {
      metrics.batches.inc();
      metrics.batchDuration.observe(seconds);
      if (result.inserted > 0) metrics.inserted.inc(result.inserted);
      if (result.duplicates > 0) metrics.duplicates.inc(result.duplicates);
      if (result.deadLettered > 0) metrics.deadLettered.inc(result.deadLettered);
    }
  }
}

interface SessionHooks {
  /** A batch was settled; `seconds` is how long its successful attempt took. */
  onBatch(result: BatchResult, seconds: number): void;
  onWriteError(reason: string): void;
}

/** One connection and its channel, with the deliveries in hand. */
class Session {
  /** Resolves with the reason once the channel or connection is gone. */
  readonly closed: Promise<string>;
  consuming = false;
  private resolveClosed!: (reason: string) => void;
  private isClosed = false;
  private buffer: ConsumeMessage[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** Batches being written. */
  private readonly writing = new Set<Promise<void>>();
  /** Resolves once the last batch taken from the buffer is settled (acknowledged, or abandoned with the session). */
  private lastSettled: Promise<void> = Promise.resolve();
  private consumerTag: string | undefined;
  /** Aborted when the session ends: stops retrying a batch whose messages are no longer ours. */
  private readonly ended = new AbortController();
  /** When each message in hand was delivered (hrtime), for its log line's duration. */
  private readonly deliveredAt = new WeakMap<Message, bigint>();

  constructor(
    private readonly connection: ChannelModel,
    private readonly channel: ConfirmChannel,
    private readonly options: ConsumerOptions,
    private readonly hooks: SessionHooks,
  ) {
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
    channel.on('close', () => this.end('channel closed'));
    connection.on('close', (err?: Error) => this.end(err ? `connection closed: ${describeError(err)}` : 'connection closed'));
  }

  async consume(): Promise<void> {
    const reply = await this.channel.consume(this.options.amqp.queue, (message) => this.onDelivery(message), { noAck: false });
    this.consumerTag = reply.consumerTag;
    this.consuming = !this.isClosed;
  }

  /**
   * Messages ready in `queue`: a passive declare on a short-lived channel of this connection.
   * Not on the consuming channel: checking a queue that was deleted closes the channel (404),
   * which would hand every unacknowledged message back to the broker.
   */
  async queueDepth(queue: string, timeoutMs: number): Promise<number> {
    if (this.isClosed) throw new Error('not connected');
    const check = (async () => {
      const channel = await this.connection.createChannel();
      channel.on('error', () => undefined); // 404 for a missing queue: the check fails, nothing else
      try {
        return (await channel.checkQueue(queue)).messageCount;
      } finally {
        await channel.close().catch(() => undefined);
      }
    })();
    check.catch(() => undefined); // a late failure after the timeout is nobody's business
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer from the broker within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      return await Promise.race([check, expired]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stops consuming, writes what is in hand, then closes. */
  async drainAndClose(timeoutMs: number): Promise<void> {
    if (this.consumerTag && !this.isClosed) {
      // cancel-ok arrives after every delivery already sent: afterwards the buffer is complete.
      await this.channel.cancel(this.consumerTag).catch(() => undefined);
      this.consuming = false;
    }
    const drained = (async () => {
      this.flush();
      while (this.writing.size > 0) await Promise.all(this.writing);
    })();
    const timeout = new AbortController();
    await Promise.race([drained, sleep(timeoutMs, timeout.signal)]);
    timeout.abort();
    if (this.buffer.length > 0 || this.writing.size > 0) {
      this.options.logger.warn({ unwritten: this.buffer.length }, 'stopping with unwritten orders; the broker will redeliver them');
    }
    this.end('stopped');
    await this.channel.close().catch(() => undefined);
    await this.connection.close().catch(() => undefined);
  }

  private onDelivery(message: ConsumeMessage | null): void {
    if (message === null) {
      // The broker cancelled the consumer (queue deleted): start over on a fresh connection.
      this.end('consumer cancelled by the broker');
      void this.connection.close().catch(() => undefined);
      return;
    }
    if (this.isClosed) return; // not ours any more: the broker redelivers it
    this.deliveredAt.set(message, process.hrtime.bigint());
    this.options.metrics?.consumed.inc();
    this.buffer.push(message);
    if (this.buffer.length >= this.options.batchSize) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), this.options.flushIntervalMs);
  }

  /**
   * Starts writing batches from the buffer while fewer than `maxBatchesInFlight` are being
   * written; each batch that finishes calls this again for what arrived meanwhile.
   */
  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const limit = Math.max(1, this.options.maxBatchesInFlight ?? 2);
    while (this.buffer.length > 0 && !this.isClosed && this.writing.size < limit) {
      // From the front: every delivery before the batch's last one is in this batch or an earlier one.
      const batch = this.buffer.splice(0, this.options.batchSize);
      const earlier = this.lastSettled;
      let settled!: () => void;
      this.lastSettled = new Promise((resolve) => {
        settled = resolve;
      });
      const job: Promise<void> = this.write(batch, earlier)
        .catch((err: unknown) => {
          // write() handles every expected failure; this only keeps a bug from becoming an
          // unhandled rejection (which would end the process with messages in hand).
          this.options.logger.error({ err: describeError(err) }, 'unexpected failure while writing; reconnecting');
          this.end('write failed');
          void this.connection.close().catch(() => undefined);
        })
        .finally(() => {
          settled();
          this.writing.delete(job);
          if (this.buffer.length >= this.options.batchSize) this.flush();
          else if (this.buffer.length > 0) this.timer ??= setTimeout(() => this.flush(), this.options.flushIntervalMs);
        });
      this.writing.add(job);
    }
  }

  /**
   * Writes one batch, retrying with backoff while it fails, until written or the session ends.
   * Its ack waits for `earlier` (the previous batch settled): acks go out in delivery order.
   */
  private async write(batch: ConsumeMessage[], earlier: Promise<void>): Promise<void> {
    const { logger, orders, amqp: config } = this.options;
    const beforeAck = async (): Promise<void> => {
      await earlier;
      // An earlier batch abandoned with the session: this one's messages are not ours to ack.
      if (this.isClosed) throw new Error('session ended');
    };
    for (let attempt = 0; !this.isClosed; attempt++) {
      try {
        const started = process.hrtime.bigint();
        const result = await handleBatch(batch, { channel: this.channel, orders, queue: config.queue, logger, beforeAck });
        const acked = process.hrtime.bigint();
        this.hooks.onBatch(result, Number(acked - started) / 1e9);
        this.logSettled(result, acked);
        if (attempt > 0) logger.info({ attempts: attempt + 1, size: batch.length }, 'batch written after retrying');
        return;
      } catch (err) {
        if (this.isClosed) return;
        const reason = describeError(err);
        this.hooks.onWriteError(reason);
        logger.warn({ err: reason, attempt, size: batch.length }, 'batch not written; nothing acknowledged, retrying');
        await sleep(backoffDelay(attempt, this.options.retryBackoff ?? DB_RETRY_BACKOFF), this.ended.signal);
      }
    }
  }

  /**
   * One line per message: its id, the request id it came with, what became of it, and the time
   * from its delivery to its acknowledgement. Never the order itself.
   */
  private logSettled(result: BatchResult, ackedAt: bigint): void {
    const { logger } = this.options;
    for (const { message, messageId, outcome, reason } of result.settled) {
      const delivered = this.deliveredAt.get(message);
      const requestId = requestIdOfHeaders(message.properties.headers);
      const line = {
        messageId,
        ...(requestId ? { requestId } : {}),
        outcome,
        durationMs: delivered === undefined ? undefined : Math.round(Number(ackedAt - delivered) / 1e3) / 1e3,
        ...(message.fields.redelivered ? { redelivered: true } : {}),
      };
      if (outcome === 'dead_lettered') logger.warn({ ...line, reason, deadLetterQueue: deadLetterQueueOf(this.options.amqp.queue) }, 'message');
      else logger.info(line, 'message');
    }
  }

  private end(reason: string): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.consuming = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    // Unacknowledged messages return to the queue when the channel closes.
    this.buffer = [];
    this.ended.abort();
    this.resolveClosed(reason);
  }
}
