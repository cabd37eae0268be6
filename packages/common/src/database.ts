import knex, { type Knex } from 'knex';
import type { DatabaseConfig } from './config';

export type { Knex };

export interface DatabaseOptions {
  /** Largest number of pooled connections. */
  poolMax?: number;
  /** How long a query may wait for a free connection before failing (ms). */
  acquireTimeoutMs?: number;
  /** How long opening one connection may take (ms); 3,000 unless set. */
  connectTimeoutMs?: number;
}

/**
 * A knex instance on PostgreSQL. Creating it does not connect: the pool opens connections on
 * first use, so a database that is down surfaces as a failing query, not a crash at import.
 */
export function createDatabase(config: DatabaseConfig, options: DatabaseOptions = {}): Knex {
  return knex({
    client: 'pg',
    connection: {
      host: config.host,
      port: config.port,
      database: config.database,
      user: config.user,
      password: config.password,
      // A dead server must not hang a request: fail the connection attempt quickly.
      connectionTimeoutMillis: options.connectTimeoutMs ?? 3000,
      // Bounded work: no statement holds a pooled connection longer than this.
      ...(config.statementTimeoutMs ? { statement_timeout: config.statementTimeoutMs } : {}),
    },
    pool: { min: 0, max: options.poolMax ?? 10 },
    acquireConnectionTimeout: options.acquireTimeoutMs ?? 5000,
  });
}

/** Resolves when the database answers a trivial query, rejects otherwise. */
export async function pingDatabase(db: Knex): Promise<void> {
  await db.raw('select 1');
}

/**
 * Migrations compiled into the service, listed in code rather than read from a directory, so
 * the same list runs from TypeScript sources (tests) and from compiled JavaScript (production).
 */
export interface Migration {
  name: string;
  up(db: Knex): Promise<void>;
  down(db: Knex): Promise<void>;
}

export function migrationSource(migrations: readonly Migration[]): Knex.MigrationSource<Migration> {
  return {
    getMigrations: async () => [...migrations],
    getMigrationName: (migration) => migration.name,
    // A migration may rebuild an index over a big table: the pool's statement_timeout is for
    // requests, so each migration's transaction lifts it for itself (SET LOCAL).
    getMigration: async (migration) => ({
      async up(db: Knex) {
        await db.raw('SET LOCAL statement_timeout = 0');
        await migration.up(db);
      },
      async down(db: Knex) {
        await db.raw('SET LOCAL statement_timeout = 0');
        await migration.down(db);
      },
    }),
  };
}

export async function migrateLatest(db: Knex, migrations: readonly Migration[]): Promise<void> {
  await db.migrate.latest({ migrationSource: migrationSource(migrations) });
}
