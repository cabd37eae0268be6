import pg from 'pg';
import { createDatabase, migrateAndGrant, type DatabaseConfig, type DatabaseSchema, type Knex } from '@crud-master/common';
import { sharedPostgres, type PostgresInstance } from '../harness/fixtures';
import type { AppDatabase } from '../harness/postgres';

export interface TestDatabase {
  /** A pool as the app role: what the service itself may do. */
  db: Knex;
  /** The app role's connection (what the service connects with). */
  config: DatabaseConfig;
  /** The owner role's connection: for bulk loads and anything the app role may not do. */
  owner: DatabaseConfig;
  /**
   * Empties `table` between tests, ids from 1 again, as the owner: `TRUNCATE ... RESTART
   * IDENTITY` needs the sequence's owner, which the app role is not (its own DELETE /api/movies
   * truncates without RESTART IDENTITY).
   */
  truncate(table: string): Promise<void>;
}

async function truncateAs(config: DatabaseConfig, table: string): Promise<void> {
  const client = new pg.Client({ ...config, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    await client.query(`TRUNCATE ${client.escapeIdentifier(table)} RESTART IDENTITY`);
  } finally {
    await client.end();
  }
}

/**
 * A brand-new database on `pg` with its owner and app roles, migrated and granted as the owner
 * exactly as migrate.js does it (each suite gets its own, so suites never see each other's rows).
 */
export async function migratedDatabase(schema: DatabaseSchema, pg?: PostgresInstance): Promise<AppDatabase> {
  const instance = pg ?? (await sharedPostgres());
  const created = await instance.createAppDatabase();
  const owner = createDatabase(created.owner, { poolMax: 1 });
  try {
    await migrateAndGrant(owner, schema, created.app.user);
  } finally {
    await owner.destroy();
  }
  return created;
}

/** migratedDatabase on the run's shared PostgreSQL, with a pool as the app role. */
export async function freshDatabase(schema: DatabaseSchema): Promise<TestDatabase> {
  const created = await migratedDatabase(schema);
  return { db: createDatabase(created.app), config: created.app, owner: created.owner, truncate: (table) => truncateAs(created.owner, table) };
}
