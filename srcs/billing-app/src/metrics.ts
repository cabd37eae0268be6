import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { BatchResult } from './messaging/handler';

/** Messages ready in the two queues, read from the broker when /metrics is scraped. */
export interface QueueDepths {
  /** Messages ready in billing_queue (not counting those delivered and not yet acknowledged). */
  queue(): Promise<number>;
  /** Messages in billing_queue.dead. */
  deadLetterQueue(): Promise<number>;
}

/** The worker's message metrics, in the registry its GET /metrics serves. */
export interface BillingMetrics {
  consumed: Counter;
  inserted: Counter;
  duplicates: Counter;
  conflicts: Counter;
  deadLettered: Counter;
  batches: Counter;
  batchDuration: Histogram;
}

/**
 * The worker's metrics, registered in `registry`. The queue depth gauges ask `depths` at every
 * scrape; NaN when it cannot answer (no broker), never a stale value.
 */
export function createBillingMetrics(registry: Registry = new Registry(), depths: QueueDepths): BillingMetrics {
  const registers = [registry];
  const metrics: BillingMetrics = {
    consumed: new Counter({
      name: 'billing_messages_consumed_total',
      help: 'Deliveries received from billing_queue, redeliveries included',
      registers,
    }),
    inserted: new Counter({
      name: 'billing_orders_inserted_total',
      help: 'Orders written as new rows in orders_db',
      registers,
    }),
    duplicates: new Counter({
      name: 'billing_orders_duplicate_total',
      help: 'Valid orders whose message id was already stored (redeliveries), acknowledged without a new row',
      registers,
    }),
    conflicts: new Counter({
      name: 'billing_order_conflicts_total',
      help: 'Orders whose message id (Idempotency-Key) was already stored with another order, recorded in order_conflicts',
      registers,
    }),
    deadLettered: new Counter({
      name: 'billing_messages_dead_lettered_total',
      help: 'Messages that can never become an order, moved to billing_queue.dead',
      registers,
    }),
    batches: new Counter({
      name: 'billing_batches_total',
      help: 'Batches written and acknowledged',
      registers,
    }),
    batchDuration: new Histogram({
      name: 'billing_batch_duration_seconds',
      help: 'Time to settle one batch: insert, dead letters confirmed, acknowledgement (the successful attempt)',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
  };
  const depthGauge = (name: string, help: string, read: () => Promise<number>): Gauge =>
    new Gauge({
      name,
      help,
      registers,
      async collect() {
        this.set(await read().catch(() => Number.NaN));
      },
    });
  depthGauge('billing_queue_depth', 'Messages ready in billing_queue, waiting for the worker (NaN while the broker is unreachable)', () => depths.queue());
  depthGauge('billing_dead_letter_queue_depth', 'Messages in billing_queue.dead, waiting for a human (NaN while the broker is unreachable)', () =>
    depths.deadLetterQueue(),
  );
  return metrics;
}

/** Counts a settled batch; `seconds` is how long its successful attempt took. */
export function recordBatch(metrics: BillingMetrics, result: BatchResult, seconds: number): void {
  metrics.batches.inc();
  metrics.batchDuration.observe(seconds);
  if (result.inserted > 0) metrics.inserted.inc(result.inserted);
  if (result.duplicates > 0) metrics.duplicates.inc(result.duplicates);
  if (result.conflicts > 0) metrics.conflicts.inc(result.conflicts);
  if (result.deadLettered > 0) metrics.deadLettered.inc(result.deadLettered);
}

/** The batch counters as /health shows them, read from the metrics (their one source). */
export async function batchCounts(metrics: BillingMetrics): Promise<Record<'inserted' | 'duplicates' | 'deadLettered' | 'batches', number>> {
  const value = async (counter: Counter): Promise<number> => (await counter.get()).values[0]?.value ?? 0;
  return {
    inserted: await value(metrics.inserted),
    duplicates: await value(metrics.duplicates),
    deadLettered: await value(metrics.deadLettered),
    batches: await value(metrics.batches),
  };
}
