import type { Knex } from '@crud-master/common';
import type { OrderRecord } from './order';

/**
 * Records, in one statement, the orders whose message id is stored with a different order (user,
 * items or amount; `180` and `180.00` are the same amount), and returns their positions in
 * `orders` (per order, not per id: a redelivery and a conflicting copy may share an id). Run
 * on the orders an insert skipped: a redelivery matches its stored row and is not a conflict; a
 * reused Idempotency-Key with another body is, and lands in `order_conflicts` once, however often
 * it is redelivered. Never changes `orders`.
 */
export async function recordOrderConflicts(db: Knex, orders: readonly OrderRecord[]): Promise<number[]> {
  if (orders.length === 0) return [];
  const values = orders.map(() => '(?::integer, ?::text, ?::integer, ?::integer, ?::numeric, ?::text)').join(', ');
  const bindings = orders.flatMap((o, i) => [i, o.messageId, o.userId, o.numberOfItems, o.totalAmount, o.requestId ?? null]);
  const { rows } = await db.raw<{ rows: Array<{ position: number }> }>(
    `WITH incoming (position, message_id, user_id, number_of_items, total_amount, request_id) AS (VALUES ${values}),
          conflicting AS (
            SELECT i.* FROM incoming i JOIN orders o ON o.message_id = i.message_id
             WHERE (o.user_id, o.number_of_items, o.total_amount) IS DISTINCT FROM (i.user_id, i.number_of_items, i.total_amount)
          ),
          recorded AS (
            INSERT INTO order_conflicts (message_id, user_id, number_of_items, total_amount, request_id)
            SELECT message_id, user_id, number_of_items, total_amount, request_id FROM conflicting
            ON CONFLICT DO NOTHING
          )
     SELECT position FROM conflicting ORDER BY position`,
    bindings,
  );
  return rows.map((row) => row.position);
}
