import type { Knex } from '@crud-master/common';
import { recordOrderConflicts } from './conflicts';
import type { Order, OrderRecord, OrderStore } from './order';

const TABLE = 'orders';

interface OrderRow {
  id: number;
  user_id: number;
  number_of_items: number;
  total_amount: string;
  message_id: string;
  created_at: Date;
}

function toOrder(row: OrderRow): Order {
  return {
    id: row.id,
    messageId: row.message_id,
    userId: row.user_id,
    numberOfItems: row.number_of_items,
    totalAmount: row.total_amount,
    createdAt: row.created_at,
  };
}

function toRow(order: OrderRecord): Omit<OrderRow, 'id' | 'created_at'> {
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

  async list(): Promise<Order[]> {
    const rows = await this.db<OrderRow>(TABLE).select('*').orderBy('id');
    return rows.map(toOrder);
  }

  async count(): Promise<number> {
    const [row] = await this.db(TABLE).count<{ count: string }[]>({ count: '*' });
    return Number(row?.count ?? 0);
  }
}
