import { createDatabase, migrateLatest, type DatabaseConfig, type Knex, type Migration } from '@crud-master/common';
import { sharedPostgres } from '../harness/fixtures';

export interface TestDatabase {
  db: Knex;
  config: DatabaseConfig;
}

/**
 * A brand-new database on the run's private PostgreSQL, migrated: each suite gets its own, so
 * suites never see each other's rows.
 */
export async function freshDatabase(migrations: readonly Migration[]): Promise<TestDatabase> {
  const pg = await sharedPostgres();
  const name = await pg.createDatabase();
  const config = pg.connectionConfig(name);
  const db = createDatabase(config);
  await migrateLatest(db, migrations);
  return { db, config };
}
