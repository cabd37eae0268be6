import type { Knex } from '@crud-master/common';
import { recordOrderConflicts } from './conflicts';
import type { OrderRecord, OrderStore } from './order';

const TABLE = 'orders';

interface OrderRow {
  user_id: number;
  number_of_items: number;
  total_amount: string;
  message_id: string;
}

function toRow(order: OrderRecord): OrderRow {
  return {
    message_id: order.messageId,
    user_id: order.userId,
    number_of_items: order.numberOfItems,
    total_amount: order.totalAmount,
  };
}

/** The only code that knows how orders are stored. */
export class OrdersRepository implements OrderStore {
  constructor(private readonly db: Knex) {}

  async insertMany(orders: readonly OrderRecord[]): Promise<string[]> {
    if (orders.length === 0) return [];
    // One INSERT is one transaction. ON CONFLICT DO NOTHING also absorbs two rows with the same
    // message id inside the same statement (DO UPDATE would fail on those).
    const inserted = await this.db(TABLE)
      .insert(orders.map(toRow))
      .onConflict('message_id')
      .ignore()
      .returning<Array<{ message_id: string }>>('message_id');
    return inserted.map((row) => row.message_id);
  }

  recordConflicts(orders: readonly OrderRecord[]): Promise<number[]> {
    return recordOrderConflicts(this.db, orders);
  }
}
