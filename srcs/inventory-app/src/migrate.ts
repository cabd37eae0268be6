import { runMigrate } from '@crud-master/common';
import { inventorySchema } from './db/schema';

/**
 * `node srcs/inventory-app/dist/migrate.js`: movies_db's migrations as INVENTORY_DB_OWNER, then
 * INVENTORY_DB_USER's grants. Last line: `migrations: N applied`.
 */
void runMigrate({ name: 'inventory-app', prefix: 'INVENTORY', dir: __dirname, schema: inventorySchema });
