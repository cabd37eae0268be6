import { z } from 'zod';
import { envPort, envString, findEnvFile, loadEnv, parseEnv } from './config';
import { createDatabase } from './database';
import { migrateAndGrant, type DatabaseSchema } from './schema';

/** How long migrate.js waits for its one connection to PostgreSQL (ms). */
export const MIGRATE_CONNECT_TIMEOUT_MS = 60_000;

export interface MigrateDefinition {
  /** e.g. `inventory-app`, the prefix of every output line. */
  name: string;
  /** The variables' prefix: INVENTORY_DB_*, BILLING_DB_*. */
  prefix: 'INVENTORY' | 'BILLING';
  /** Where the search for `.env` starts: the entry point's directory. */
  dir: string;
  schema: DatabaseSchema;
}

/**
 * The skeleton of every `migrate.js`: connect as `<P>_DB_OWNER`, run the pending migrations,
 * grant `<P>_DB_USER` what the service needs, print `migrations: N applied` as the last line
 * (N = 0 when nothing was pending, so provisioning can count a change) and exit 0; on any
 * failure print why on stderr and exit 1. Reads `<P>_DB_HOST/PORT/NAME`, `<P>_DB_OWNER`,
 * `<P>_DB_OWNER_PASSWORD` and `<P>_DB_USER` from the environment and the env file (CM_ENV_FILE).
 */
export async function runMigrate({ name, prefix, dir, schema }: MigrateDefinition): Promise<void> {
  const out = (line: string): boolean => process.stdout.write(`${line}\n`);
  try {
    const vars = parseEnv(
      z.object({
        [`${prefix}_DB_HOST`]: envString,
        [`${prefix}_DB_PORT`]: envPort.default(5432),
        [`${prefix}_DB_NAME`]: envString,
        [`${prefix}_DB_OWNER`]: envString,
        [`${prefix}_DB_OWNER_PASSWORD`]: envString,
        [`${prefix}_DB_USER`]: envString,
      }),
      loadEnv(findEnvFile(dir)),
    ) as Record<string, string | number>;
    const get = (suffix: string): string => String(vars[`${prefix}_DB_${suffix}`]);
    const owner = createDatabase(
      { host: get('HOST'), port: Number(get('PORT')), database: get('NAME'), user: get('OWNER'), password: get('OWNER_PASSWORD') },
      // Not a request: provisioning runs it on a host that may have just started PostgreSQL, on
      // a slow or emulated VM. Under software emulation a connection took longer than the
      // services' 3 s (`vagrant up` failed there with "timeout expired"); wait for it instead.
      { poolMax: 1, connectTimeoutMs: MIGRATE_CONNECT_TIMEOUT_MS, acquireTimeoutMs: MIGRATE_CONNECT_TIMEOUT_MS + 5000 },
    );
    try {
      const applied = await migrateAndGrant(owner, schema, get('USER'));
      for (const migration of applied) out(`${name} migrate: applied ${migration}`);
      const granted = schema.grants.map((g) => `${g.privileges.join(', ')} on ${g.table}${g.sequence ? ` (+ ${g.sequence.join(', ')} on its sequence)` : ''}`);
      out(`${name} migrate: ${get('USER')} may ${granted.join('; ')} in ${get('NAME')}, nothing else`);
      out(`migrations: ${applied.length} applied`);
    } finally {
      await owner.destroy();
    }
  } catch (err) {
    process.stderr.write(`${name} migrate: failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}
