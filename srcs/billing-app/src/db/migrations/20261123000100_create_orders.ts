import type { Migration } from '@crud-master/common';

export const createOrders: Migration = {
  name: '20261123000100_create_orders',
  async up(db) {
    await db.schema.createTable('orders', (table) => {
      table.increments('id').primary();
      table.integer('user_id').notNullable();
      table.integer('number_of_items').notNullable();
      table.decimal('total_amount', 12, 2).notNullable();
      // The AMQP message id under a unique constraint: a redelivered message inserts nothing.
      table.text('message_id').notNullable().unique();
      table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
    });
  },
  async down(db) {
    await db.schema.dropTable('orders');
  },
};
