import type { Knex } from '@crud-master/common';
import { recordOrderConflicts } from './conflicts';
import type { OrderRecord, OrderStore } from './order';

const TABLE = 'orders';

const INSERT_SQL = `INSERT INTO ${TABLE} (message_id, user_id, number_of_items, total_amount)
  SELECT * FROM unnest(?::text[], ?::integer[], ?::integer[], ?::numeric[])
  ON CONFLICT (message_id) DO NOTHING RETURNING message_id`;

/** The only code that knows how orders are stored. */
export class OrdersRepository implements OrderStore {
  constructor(private readonly db: Knex) {}

  async insertMany(orders: readonly OrderRecord[]): Promise<string[]> {
    if (orders.length === 0) return [];
    // One INSERT is one transaction. ON CONFLICT DO NOTHING also absorbs two rows with the same
    // message id inside the same statement (DO UPDATE would fail on those). The rows go as four
    // arrays (unnest), not as a VALUES list of four parameters a row: a 500-row batch is then a
    // statement of 4 parameters that PostgreSQL parses and plans in no time, not one of 2,000.
    // A value out of range fails the whole statement with the same SQLSTATE (22003) as before.
    const { rows } = await this.db.raw<{ rows: Array<{ message_id: string }> }>(INSERT_SQL, [
      orders.map((o) => o.messageId),
      orders.map((o) => o.userId),
      orders.map((o) => o.numberOfItems),
      orders.map((o) => o.totalAmount),
    ]);
    return rows.map((row) => row.message_id);
  }

  recordConflicts(orders: readonly OrderRecord[]): Promise<number[]> {
    return recordOrderConflicts(this.db, orders);
  }
}
