import type { Knex } from '@crud-master/common';
import type { OrderRecord } from '../../src/orders/order';

/** A stored order, as the tests read it back. */
export interface StoredOrder extends OrderRecord {
  id: number;
  createdAt: Date;
}

interface OrderRow {
  id: number;
  user_id: number;
  number_of_items: number;
  total_amount: string;
  message_id: string;
  created_at: Date;
}

/** Every row of `orders`, in id order. */
export async function listOrders(db: Knex): Promise<StoredOrder[]> {
  const rows = await db<OrderRow>('orders').select('*').orderBy('id');
  return rows.map((row) => ({
    id: row.id,
    messageId: row.message_id,
    userId: row.user_id,
    numberOfItems: row.number_of_items,
    totalAmount: row.total_amount,
    createdAt: row.created_at,
  }));
}

export async function countOrders(db: Knex): Promise<number> {
  const [row] = await db('orders').count<{ count: string }[]>({ count: '*' });
  return Number(row?.count ?? 0);
}
