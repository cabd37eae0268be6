import type { ConsumeMessage, Message } from 'amqplib';
import { settleWithin, type Logger } from '@crud-master/common';
import { backoffDelay, deadLetterQueueOf, describeError, requestIdOfHeaders, sleep, type AmqpSession, type BackoffOptions } from '@crud-master/billing-contract';
import type { OrderStore } from '../orders/order';
import { recordBatch, type BillingMetrics } from '../metrics';
import { handleBatch, type BatchResult } from './handler';

export interface BatcherOptions {
  queue: string;
  /** Largest batch written in one insert (at most the prefetch). */
  batchSize: number;
  /** A smaller batch is written after waiting this long for more (ms). */
  flushIntervalMs: number;
  /** Batches written at once, each in its own transaction; acknowledged in delivery order. */
  maxBatchesInFlight: number;
  orders: OrderStore;
  logger: Logger;
  metrics: BillingMetrics;
  /** Delays between attempts to write a batch while the database fails. */
  retryBackoff: BackoffOptions;
}

/**
 * The deliveries of one session: buffered, and written in batches when `batchSize` are waiting
 * or `flushIntervalMs` after the first one. Up to `maxBatchesInFlight` batches are written at once
 * (PostgreSQL works on one while another commits) and acknowledged strictly in delivery order: a
 * batch committed before an earlier one waits for that one's ack, since its own ack (`multiple`)
 * covers every delivery before it. Meanwhile the broker keeps delivering up to the prefetch. When the session ends, what is in hand is dropped: unacknowledged messages return to
 * the queue and the broker redelivers them.
 */
export class DeliveryBatcher {
  consuming = false;
  /** Why the last batch failed to be written, until one is written. */
  writeError: string | undefined;
  private closed = false;
  private buffer: ConsumeMessage[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** Batches being written. */
  private readonly writing = new Set<Promise<void>>();
  /** Settles once the last batch taken from the buffer is acknowledged or abandoned. */
  private lastSettled: Promise<void> = Promise.resolve();
  private consumerTag: string | undefined;
  /** Aborted when the batcher stops: stops retrying a batch whose messages are no longer ours. */
  private readonly stopped = new AbortController();
  /** When each message in hand was delivered (hrtime), for its log line's duration. */
  private readonly deliveredAt = new WeakMap<Message, bigint>();

  constructor(
    readonly session: AmqpSession,
    private readonly options: BatcherOptions,
  ) {
    session.ended.addEventListener('abort', () => this.end(), { once: true });
  }

  async consume(): Promise<void> {
    const reply = await this.session.channel.consume(this.options.queue, (message) => this.onDelivery(message), { noAck: false });
    this.consumerTag = reply.consumerTag;
    this.consuming = !this.closed;
  }

  /** Stops consuming and writes what is in hand, for at most `timeoutMs`; then drops the rest. */
  async drain(timeoutMs: number): Promise<void> {
    if (this.consumerTag && !this.closed) {
      // cancel-ok arrives after every delivery already sent: afterwards the buffer is complete.
      await this.session.channel.cancel(this.consumerTag).catch(() => undefined);
      this.consuming = false;
    }
    const drained = (async () => {
      this.flush();
      while (this.writing.size > 0) await Promise.all(this.writing);
    })();
    await settleWithin(drained, timeoutMs);
    if (this.buffer.length > 0 || this.writing.size > 0) {
      this.options.logger.warn({ unwritten: this.buffer.length }, 'stopping with unwritten orders; the broker will redeliver them');
    }
    this.end();
  }

  private onDelivery(message: ConsumeMessage | null): void {
    if (message === null) {
      // The broker cancelled the consumer (queue deleted): start over on a fresh connection.
      this.session.end('consumer cancelled by the broker');
      return;
    }
    if (this.closed) return; // not ours any more: the broker redelivers it
    this.deliveredAt.set(message, process.hrtime.bigint());
    this.options.metrics.consumed.inc();
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
    while (this.buffer.length > 0 && !this.closed && this.writing.size < this.options.maxBatchesInFlight) {
      // From the front: every delivery before the batch's last one is in this batch or an earlier one.
      const batch = this.buffer.splice(0, this.options.batchSize);
      const earlier = this.lastSettled;
      let settled!: () => void;
      this.lastSettled = new Promise((resolve) => (settled = resolve));
      const job: Promise<void> = this.writeAndRecord(batch, earlier)
        .catch((err: unknown) => {
          // write() handles every expected failure; this only keeps a bug from becoming an
          // unhandled rejection (which would end the process with messages in hand).
          this.options.logger.error({ err: describeError(err) }, 'unexpected failure while writing; reconnecting');
          this.session.end('write failed');
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

  private async writeAndRecord(batch: ConsumeMessage[], earlier: Promise<void>): Promise<void> {
    const written = await this.write(batch, earlier);
    if (!written) return;
    recordBatch(this.options.metrics, written.result, written.seconds);
    this.logSettled(written.result, written.ackedAt);
  }

  /**
   * Writes one batch, retrying with backoff while it fails; resolves with what became of it, or
   * undefined when the session ended first. Its ack waits for `earlier` (the previous batch
   * settled), so acks go out in delivery order.
   */
  private async write(batch: ConsumeMessage[], earlier: Promise<void>): Promise<{ result: BatchResult; seconds: number; ackedAt: bigint } | undefined> {
    const { logger, orders, queue } = this.options;
    const beforeAck = async (): Promise<void> => {
      await earlier;
      // An earlier batch abandoned with the session: this one's messages are not ours to ack.
      if (this.closed) throw new Error('session ended');
    };
    for (let attempt = 0; !this.closed; attempt++) {
      try {
        const started = process.hrtime.bigint();
        const result = await handleBatch(batch, { channel: this.session.channel, orders, queue, logger, beforeAck });
        const ackedAt = process.hrtime.bigint();
        this.writeError = undefined;
        if (attempt > 0) logger.info({ attempts: attempt + 1, size: batch.length }, 'batch written after retrying');
        return { result, seconds: Number(ackedAt - started) / 1e9, ackedAt };
      } catch (err) {
        if (this.closed) return undefined;
        this.writeError = describeError(err);
        logger.warn({ err: this.writeError, attempt, size: batch.length }, 'batch not written; nothing acknowledged, retrying');
        await sleep(backoffDelay(attempt, this.options.retryBackoff), this.stopped.signal);
      }
    }
    return undefined;
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
      if (outcome === 'dead_lettered') logger.warn({ ...line, reason, deadLetterQueue: deadLetterQueueOf(this.options.queue) }, 'message');
      else if (outcome === 'conflict') logger.warn({ ...line, conflictsTable: 'order_conflicts' }, 'message');
      else logger.info(line, 'message');
    }
  }

  private end(): void {
    if (this.closed) return;
    this.closed = true;
    this.consuming = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    // Unacknowledged messages return to the queue when the channel closes.
    this.buffer = [];
    this.stopped.abort();
  }
}
