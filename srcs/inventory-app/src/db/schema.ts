import type { DatabaseSchema } from '@crud-master/common';
import { migrations } from './migrations';

/**
 * movies_db: what `migrate.js` sets up as the owner and what the app role (INVENTORY_DB_USER)
 * may do. The app reads, writes and empties `movies` (DELETE /api/movies is a TRUNCATE, without
 * RESTART IDENTITY: ids are never reused) and reads `movies_version`, which only the SECURITY
 * DEFINER trigger function writes. No DDL, no other table.
 */
export const inventorySchema: DatabaseSchema = {
  label: 'movies_db',
  migrations,
  grants: [
    { table: 'movies', privileges: ['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE'], sequence: ['USAGE', 'SELECT'] },
    { table: 'movies_version', privileges: ['SELECT'] },
  ],
  probes: [
    'SELECT id, title, description FROM movies LIMIT 0',
    'SELECT epoch, version, row_count FROM movies_version LIMIT 0',
    // The newest migration: the counter's trigger function runs with its owner's rights.
    `SELECT coalesce(bool_and(prosecdef), false) AS ok FROM pg_proc WHERE proname = 'movies_count_changes'`,
  ],
};

export const INVENTORY_MIGRATE_COMMAND = 'node srcs/inventory-app/dist/migrate.js (as provisioning and npm start do)';
