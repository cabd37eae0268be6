import type { Migration } from '@crud-master/common';

/**
 * The movies_version trigger function runs with its owner's rights (SECURITY DEFINER, with a
 * fixed search_path so a caller cannot slip another `movies_version` in front of it): the app
 * role only reads movies_version and cannot set the counter or the row count itself, while
 * every change it makes to movies still bumps them.
 */
export const moviesCountChangesDefiner: Migration = {
  name: '20261204120000_movies_count_changes_definer',
  async up(db) {
    const { rows } = await db.raw<{ rows: Array<{ schema: string }> }>('SELECT current_schema() AS schema');
    await db.raw('ALTER FUNCTION movies_count_changes() SECURITY DEFINER');
    await db.raw('ALTER FUNCTION movies_count_changes() SET search_path = ??, pg_temp', [rows[0]?.schema ?? 'public']);
  },
  async down(db) {
    await db.raw('ALTER FUNCTION movies_count_changes() SECURITY INVOKER');
    await db.raw('ALTER FUNCTION movies_count_changes() RESET search_path');
  },
};
