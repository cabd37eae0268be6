import type { Knex, Migration } from '@crud-master/common';

/** The index `?title=` searches use; the seed drops and rebuilds it around a bulk load. */
export const TITLE_TRIGRAM_INDEX = 'movies_title_trgm_idx';

/**
 * Makes `pg_trgm` exist in this database, or explains exactly what an administrator must run.
 *
 * pg_trgm is a *trusted* extension since PostgreSQL 13: the database's owner (the app's role,
 * which provisioning makes the owner of movies_db) may create it without being a superuser.
 * Provisioning also creates it as `postgres`, so a role that does not own the database works
 * too. Either way this checks first, so a role without the privilege never trips on a
 * `CREATE EXTENSION` it does not need.
 * https://www.postgresql.org/docs/current/pgtrgm.html
 */
async function ensurePgTrgm(db: Knex): Promise<string> {
  const installed = await db.raw<{ rows: Array<{ schema: string }> }>(
    `SELECT n.nspname AS schema FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
      WHERE e.extname = 'pg_trgm'`,
  );
  if (installed.rows[0]) return installed.rows[0].schema;

  const available = await db.raw<{ rows: unknown[] }>(`SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'`);
  if (available.rows.length === 0) {
    throw new Error(
      'PostgreSQL extension pg_trgm is not available on this server: install the contrib modules ' +
        "(Debian ships them in the postgresql-<version> package) and start again",
    );
  }
  // Ask first rather than fail: a failed statement would abort the migration's transaction.
  const who = await db.raw<{ rows: Array<{ role: string; db: string; permitted: boolean }> }>(`
    SELECT current_user AS role, current_database() AS db,
           (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
           OR (has_database_privilege(current_database(), 'CREATE')
               AND coalesce((SELECT bool_or(trusted) FROM pg_available_extension_versions WHERE name = 'pg_trgm'), false))
           AS permitted`);
  const { role, db: name, permitted } = who.rows[0] ?? { role: '?', db: '?', permitted: false };
  if (!permitted) {
    throw new Error(
      `role "${role}" may not create extension pg_trgm in database "${name}". As the superuser run: ` +
        `psql -d ${name} -c 'CREATE EXTENSION IF NOT EXISTS pg_trgm' (provisioning does), ` +
        `or make "${role}" the owner of "${name}"`,
    );
  }
  await db.raw('CREATE EXTENSION IF NOT EXISTS pg_trgm');
  const created = await db.raw<{ rows: Array<{ schema: string }> }>(
    `SELECT n.nspname AS schema FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
      WHERE e.extname = 'pg_trgm'`,
  );
  return created.rows[0]?.schema ?? 'public';
}

/**
 * A trigram GIN index on `title`: it serves `title ILIKE '%fragment%'` for any fragment of
 * three characters or more, so `?title=` stays fast at a million rows (shorter fragments have
 * no trigram to look up and scan the table).
 */
export const moviesTitleTrigram: Migration = {
  name: '20261124000000_movies_title_trigram',
  async up(db) {
    const schema = await ensurePgTrgm(db);
    // Qualify the operator class: the extension may live in a schema outside search_path.
    await db.raw(`CREATE INDEX ?? ON movies USING gin (title ??.gin_trgm_ops)`, [TITLE_TRIGRAM_INDEX, schema]);
  },
  async down(db) {
    await db.raw('DROP INDEX IF EXISTS ??', [TITLE_TRIGRAM_INDEX]);
    // The extension stays: other objects may use it, and dropping it may need a superuser.
  },
};
