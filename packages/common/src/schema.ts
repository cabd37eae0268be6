/*
 * The split between a database's two roles (README, "Least privilege"): the owner runs the
 * migrations and grants; the app role the service connects as gets only the DML it needs, so an
 * injection in the service cannot drop or alter a table. The services never run DDL: they check
 * at start that the schema is there and granted to them (checkSchema), and migrate.js does the rest.
 */
import type { Knex } from 'knex';
import { migrationSource, type Migration } from './database';

/** What a table's app role may do with it, and with its serial sequence. */
export interface TableGrant {
  table: string;
  privileges: ReadonlyArray<'SELECT' | 'INSERT' | 'UPDATE' | 'DELETE' | 'TRUNCATE'>;
  /** The privileges on the sequence of its `id` column, if it has one. */
  sequence?: ReadonlyArray<'USAGE' | 'SELECT'>;
}

/** One service's database: its migrations, its app role's grants, and the check it runs at start. */
export interface DatabaseSchema {
  /** e.g. `movies_db`, for messages */
  label: string;
  migrations: readonly Migration[];
  grants: readonly TableGrant[];
  /**
   * Statements the app role runs at start: each must succeed (a `SELECT <columns> ... LIMIT 0`
   * proves the table, its columns and the grant), and a row with an `ok` column must say true.
   */
  probes: readonly string[];
}

/** The service's schema is missing, older than the service, or not granted to its role. */
export class SchemaNotReadyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SchemaNotReadyError';
  }
}

/** SQLSTATEs that mean "not migrated or not granted" rather than "database down". */
const NOT_READY = new Set(['42P01', '42703', '42501', '42883', '3F000']);

/**
 * Runs the schema's probes as the app role. Throws SchemaNotReadyError (with what to run) when
 * the schema is not migrated or not granted; any other error (the database is down) as it is.
 */
export async function checkSchema(db: Knex, schema: DatabaseSchema, migrateCommand: string): Promise<void> {
  for (const sql of schema.probes) {
    let rows: Array<{ ok?: unknown }>;
    try {
      ({ rows } = await db.raw<{ rows: Array<{ ok?: unknown }> }>(sql));
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (typeof code !== 'string' || !NOT_READY.has(code)) throw err;
      throw new SchemaNotReadyError(`${schema.label} is not migrated or not granted to this role (${(err as Error).message}): run ${migrateCommand}`);
    }
    if (rows.some((row) => 'ok' in row && row.ok !== true)) {
      throw new SchemaNotReadyError(`${schema.label} is not at this release's schema (${sql.replace(/\s+/g, ' ').slice(0, 120)}): run ${migrateCommand}`);
    }
  }
}

/**
 * As the owner: the pending migrations, then the app role's grants, exactly (every privilege of
 * the role on the schema's tables and sequences is revoked and the listed ones granted, in one
 * transaction, so a privilege granted by hand or by an older release does not survive). Safe
 * to run again. Returns the names of the migrations it applied.
 */
export async function migrateAndGrant(owner: Knex, schema: DatabaseSchema, appRole: string): Promise<string[]> {
  const [, applied] = (await owner.migrate.latest({ migrationSource: migrationSource(schema.migrations) })) as [number, string[]];
  await owner.transaction(async (trx) => {
    const { rows } = await trx.raw<{ rows: Array<{ schema: string; db: string }> }>('SELECT current_schema() AS schema, current_database() AS db');
    const { schema: namespace, db } = rows[0] ?? { schema: 'public', db: '' };
    await trx.raw('GRANT CONNECT ON DATABASE ?? TO ??', [db, appRole]);
    await trx.raw('REVOKE ALL ON ALL TABLES IN SCHEMA ?? FROM ??', [namespace, appRole]);
    await trx.raw('REVOKE ALL ON ALL SEQUENCES IN SCHEMA ?? FROM ??', [namespace, appRole]);
    await trx.raw('GRANT USAGE ON SCHEMA ?? TO ??', [namespace, appRole]);
    for (const grant of schema.grants) await grantTable(trx, grant, appRole);
  });
  return applied.map((name) => String(name));
}

async function grantTable(trx: Knex.Transaction, grant: TableGrant, appRole: string): Promise<void> {
  // Privilege keywords come from the typed list above, never from input.
  await trx.raw(`GRANT ${grant.privileges.join(', ')} ON TABLE ?? TO ??`, [grant.table, appRole]);
  if (!grant.sequence) return;
  const { rows } = await trx.raw<{ rows: Array<{ seq: string | null }> }>(`SELECT pg_get_serial_sequence(?, 'id') AS seq`, [grant.table]);
  const sequence = rows[0]?.seq;
  if (!sequence) throw new Error(`${grant.table}.id has no sequence to grant`);
  // pg_get_serial_sequence answers a quoted, schema-qualified name: usable as it is.
  await trx.raw(`GRANT ${grant.sequence.join(', ')} ON SEQUENCE ${sequence} TO ??`, [appRole]);
}
