import type { DatabaseSchema } from '@crud-master/common';
import { migrations } from './migrations';

/**
 * orders_db: what `migrate.js` sets up as the owner and what the app role (BILLING_DB_USER) may
 * do: insert and read orders and order conflicts (`INSERT ... ON CONFLICT DO NOTHING RETURNING`
 * needs INSERT and SELECT, nothing more), and draw their ids. No UPDATE, DELETE or DDL.
 */
export const billingSchema: DatabaseSchema = {
  label: 'orders_db',
  migrations,
  grants: [
    { table: 'orders', privileges: ['SELECT', 'INSERT'], sequence: ['USAGE'] },
    { table: 'order_conflicts', privileges: ['SELECT', 'INSERT'], sequence: ['USAGE'] },
  ],
  probes: [
    'SELECT id, message_id, user_id, number_of_items, total_amount FROM orders LIMIT 0',
    'SELECT id, message_id, user_id, number_of_items, total_amount, request_id FROM order_conflicts LIMIT 0',
  ],
};

export const BILLING_MIGRATE_COMMAND = 'node srcs/billing-app/dist/migrate.js (as provisioning and npm start do)';
