import type { Migration } from '@crud-master/common';

export const createMovies: Migration = {
  name: '20261123000000_create_movies',
  async up(db) {
    await db.schema.createTable('movies', (table) => {
      table.increments('id').primary();
      table.string('title', 255).notNullable();
      table.text('description').notNullable().defaultTo('');
    });
  },
  async down(db) {
    await db.schema.dropTable('movies');
  },
};
