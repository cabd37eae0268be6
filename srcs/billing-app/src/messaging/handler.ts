import { createHash } from 'node:crypto';
import type { ConfirmChannel, Message, Options } from 'amqplib';
import type { Logger } from '@crud-master/common';
import type { OrderRecord, OrderStore } from '../orders/order';
import { parseOrder, parseOrderText, requestIdOfHeaders } from '@crud-master/billing-contract';
import { DEAD_LETTER_QUEUE_HEADER, DEAD_LETTER_REASON_HEADER, deadLetterExchangeOf, deadLetterQueueOf } from '@crud-master/billing-contract';

/**
 * The message handler: a plain function of (messages, deps), with no connection logic, so that
 * its decisions are tested with a fake channel (test/handler.test.ts).
 *
 *   valid order            -> inserted (idempotently, by message id), then acknowledged
 *   id stored, other order -> recorded in order_conflicts (a reused Idempotency-Key), then acknowledged
 *   can never succeed      -> published to `<queue>.dead` with the reason, confirmed, then acked
 *   database unavailable   -> throws: nothing is acknowledged, the caller retries the same batch
 */

/** What the handler needs from the channel: acknowledge, and publish dead letters with confirms. */
export type SettleChannel = Pick<ConfirmChannel, 'ack' | 'publish'>;

export interface HandlerDeps {
  channel: SettleChannel;
  orders: OrderStore;
  /** The queue the batch came from; dead letters go to `<queue>.dead`. */
  queue: string;
  logger: Logger;
  /**
   * Awaited after the batch is committed and its dead letters confirmed, right before the ack:
   * with several batches in flight, resolves once every earlier batch is acknowledged (the ack
   * covers every delivery up to the batch's last); throws when the ack must not be sent.
   */
  beforeAck?: () => Promise<void>;
}

/**
 * What became of one message: a new row, a row that was already there (a redelivery), another
 * order already stored under its id (a conflict, recorded), or a dead letter.
 */
export type MessageOutcome = 'inserted' | 'duplicate' | 'conflict' | 'dead_lettered';

export interface SettledMessage {
  message: Message;
  messageId: string;
  outcome: MessageOutcome;
  /** Why it was dead-lettered. */
  reason?: string;
}

export interface BatchResult {
  /** New rows. */
  inserted: number;
  /** Valid orders whose message id was already stored with the same order (redeliveries). */
  duplicates: number;
  /** Valid orders whose message id was already stored with another order (recorded in order_conflicts). */
  conflicts: number;
  deadLettered: number;
  /** Every message of the batch, in delivery order, with its outcome. */
  settled: SettledMessage[];
}

type ValidMessage = { kind: 'order'; message: Message; order: OrderRecord };
type InvalidMessage = { kind: 'invalid'; message: Message; reason: string };
export type Decoded = ValidMessage | InvalidMessage;
/** A decoded message and its place in the batch. */
type Indexed<T> = T & { index: number };

const MAX_REASON = 1000;

/**
 * The id an order is stored under. Messages from the gateway carry a random UUID `messageId`,
 * which the broker keeps on every redelivery. A message published without one (by hand, from the
 * management UI) gets `sha256:<hash>` of its body and of the properties a publisher may set to
 * tell two sends apart (timestamp, correlation id, app id): stable across redeliveries, so a
 * redelivery is still not a second order. The price: two such messages with identical body and
 * properties are one order, because nothing distinguishes a resend from a redelivery.
 */
export function messageIdOf(message: Message): string {
  const { messageId, timestamp, correlationId, appId } = message.properties;
  if (typeof messageId === 'string' && messageId.length > 0) return messageId;
  const hash = createHash('sha256');
  hash.update(JSON.stringify([timestamp ?? null, correlationId ?? null, appId ?? null]));
  hash.update('\n');
  hash.update(message.content);
  return `sha256:${hash.digest('hex')}`;
}

/** Parses and validates one message; never throws. */
export function decodeMessage(message: Message): Decoded {
  let body: unknown;
  try {
    // Numbers are judged on their text, exactly as the gateway judged them (see parseOrderText).
    body = parseOrderText(message.content.toString('utf8'));
  } catch {
    return { kind: 'invalid', message, reason: 'body is not valid JSON' };
  }
  const parsed = parseOrder(body);
  if (!parsed.ok) return { kind: 'invalid', message, reason: `invalid order: ${parsed.problem}` };
  const requestId = requestIdOfHeaders(message.properties.headers);
  return {
    kind: 'order',
    message,
    order: {
      messageId: messageIdOf(message),
      userId: parsed.order.user_id,
      numberOfItems: parsed.order.number_of_items,
      totalAmount: parsed.order.total_amount,
      ...(requestId ? { requestId } : {}),
    },
  };
}

/**
 * PostgreSQL refused the data itself (SQLSTATE class 22 data exception, 23 integrity violation):
 * retrying cannot help. Everything else (connection refused or lost, shutdown, timeouts) may.
 */
export function isPermanentDataError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^(22|23)[0-9A-Z]{3}$/.test(code);
}

/** Publishes a dead letter and resolves once the broker has confirmed it. */
export function publishDeadLetter(channel: SettleChannel, queue: string, message: Message, reason: string): Promise<void> {
  const { properties } = message;
  const headers: Record<string, unknown> = {
    ...(properties.headers ?? {}),
    [DEAD_LETTER_REASON_HEADER]: reason.slice(0, MAX_REASON),
    [DEAD_LETTER_QUEUE_HEADER]: queue,
  };
  const options: Options.Publish = {
    persistent: true,
    messageId: messageIdOf(message),
    headers,
    ...(properties.contentType ? { contentType: properties.contentType } : {}),
    ...(properties.contentEncoding ? { contentEncoding: properties.contentEncoding } : {}),
    ...(properties.timestamp ? { timestamp: properties.timestamp } : {}),
    ...(properties.appId ? { appId: properties.appId } : {}),
    ...(properties.correlationId ? { correlationId: properties.correlationId } : {}),
  };
  return new Promise((resolve, reject) => {
    try {
      channel.publish(deadLetterExchangeOf(queue), deadLetterQueueOf(queue), message.content, options, (err) => {
        if (err) reject(err instanceof Error ? err : new Error(`dead letter not confirmed: ${String(err)}`));
        else resolve();
      });
    } catch (err) {
      reject(err);
    }
  });
}

/**
 * Inserts orders in one statement. A batch PostgreSQL refuses for its data (not for being down) is
 * retried one row at a time to find the culprits; those rows then commit separately, which the
 * unique message id makes safe.
 */
async function insertOrders(
  orders: Indexed<ValidMessage>[],
  store: OrderStore,
): Promise<{ inserted: string[]; refused: Indexed<InvalidMessage>[] }> {
  if (orders.length === 0) return { inserted: [], refused: [] };
  try {
    return { inserted: await store.insertMany(orders.map((d) => d.order)), refused: [] };
  } catch (err) {
    if (!isPermanentDataError(err)) throw err;
    const [only] = orders;
    if (orders.length === 1 && only) {
      const reason = `database refused the order: ${err instanceof Error ? err.message : String(err)}`;
      return { inserted: [], refused: [{ kind: 'invalid', message: only.message, reason, index: only.index }] };
    }
  }
  const inserted: string[] = [];
  const refused: Indexed<InvalidMessage>[] = [];
  for (const one of orders) {
    const result = await insertOrders([one], store);
    inserted.push(...result.inserted);
    refused.push(...result.refused);
  }
  return { inserted, refused };
}

/**
 * The orders of a batch that were not inserted because their message id holds another order:
 * recorded by the store (before the ack, like the insert), their batch indexes returned.
 */
async function findConflicts(
  orders: Indexed<ValidMessage>[],
  inserted: string[],
  refused: Indexed<InvalidMessage>[],
  store: OrderStore,
): Promise<number[]> {
  if (!store.recordConflicts) return [];
  const skip = new Set(refused.map((r) => r.index));
  // In a batch with two orders under one new id, the first is the row; the later one is checked.
  const firstNew = new Set<string>();
  const fresh = new Set(inserted);
  const candidates = orders.filter((o) => {
    if (skip.has(o.index)) return false;
    if (fresh.has(o.order.messageId) && !firstNew.has(o.order.messageId)) {
      firstNew.add(o.order.messageId);
      return false;
    }
    return true;
  });
  const positions = await store.recordConflicts(candidates.map((o) => o.order));
  return positions.map((p) => candidates[p]?.index ?? -1);
}

/**
 * Settles one batch. `batch` must be every unacknowledged delivery of the channel up to its last
 * message, in delivery order (the consumer hands over its buffer from the front): that is what
 * makes the single `ack(last, allUpTo = true)` at the end acknowledge exactly this batch.
 *
 * Order of effects: insert (one transaction), then dead letters (each confirmed), then the ack.
 * A failure before the ack leaves the whole batch unacknowledged; retrying or a redelivery
 * re-inserts nothing (unique message id) and at worst dead-letters a poison message twice.
 */
export async function handleBatch(batch: readonly Message[], deps: HandlerDeps): Promise<BatchResult> {
  const last = batch[batch.length - 1];
  if (!last) return { inserted: 0, duplicates: 0, conflicts: 0, deadLettered: 0, settled: [] };
  const decoded = batch.map((message, index) => ({ ...decodeMessage(message), index }));
  const orders = decoded.filter((d): d is Indexed<ValidMessage> => d.kind === 'order');
  const invalid = decoded.filter((d): d is Indexed<InvalidMessage> => d.kind === 'invalid');

  const { inserted, refused } = await insertOrders(orders, deps.orders);
  const conflicts = new Set(await findConflicts(orders, inserted, refused, deps.orders));
  const dead = [...invalid, ...refused];
  await Promise.all(dead.map((d) => publishDeadLetter(deps.channel, deps.queue, d.message, d.reason)));
  await deps.beforeAck?.();
  deps.channel.ack(last, true);

  // Outcome of each message. Two messages with one id in the batch: the first is the new row.
  const settled: SettledMessage[] = new Array(batch.length);
  for (const d of dead) settled[d.index] = { message: d.message, messageId: messageIdOf(d.message), outcome: 'dead_lettered', reason: d.reason };
  const fresh = new Set(inserted);
  for (const o of orders) {
    if (settled[o.index]) continue; // refused by the database: dead-lettered
    const outcome = fresh.delete(o.order.messageId) ? 'inserted' : conflicts.has(o.index) ? 'conflict' : 'duplicate';
    settled[o.index] = { message: o.message, messageId: o.order.messageId, outcome };
  }
  deps.logger.debug({ size: batch.length, inserted: inserted.length, deadLettered: dead.length, queue: deps.queue }, 'batch settled');
  const conflicted = settled.filter((m) => m.outcome === 'conflict').length;
  return {
    inserted: inserted.length,
    duplicates: orders.length - refused.length - inserted.length - conflicted,
    conflicts: conflicted,
    deadLettered: dead.length,
    settled,
  };
}
