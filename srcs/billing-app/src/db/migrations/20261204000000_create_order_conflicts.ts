import type { Migration } from '@crud-master/common';

/**
 * Orders that came under a message id (an Idempotency-Key) already stored with another order.
 * The stored order stays as it is; the other one is kept here instead of being dropped as a
 * redelivery. One row per distinct conflicting order: a redelivery of it adds nothing.
 */
export const createOrderConflicts: Migration = {
  name: '20261204000000_create_order_conflicts',
  async up(db) {
    await db.schema.createTable('order_conflicts', (table) => {
      table.increments('id').primary();
      table.text('message_id').notNullable().index();
      table.integer('user_id').notNullable();
      table.integer('number_of_items').notNullable();
      table.decimal('total_amount', 12, 2).notNullable();
      table.text('request_id');
      table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
      table.unique(['message_id', 'user_id', 'number_of_items', 'total_amount']);
    });
  },
  async down(db) {
    await db.schema.dropTable('order_conflicts');
  },
};
