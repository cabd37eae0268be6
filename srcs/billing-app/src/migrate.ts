import { runMigrate } from '@crud-master/common';
import { billingSchema } from './db/schema';

/**
 * `node srcs/billing-app/dist/migrate.js`: orders_db's migrations as BILLING_DB_OWNER, then
 * BILLING_DB_USER's grants. Last line: `migrations: N applied`.
 */
void runMigrate({ name: 'billing-app', prefix: 'BILLING', dir: __dirname, schema: billingSchema });
