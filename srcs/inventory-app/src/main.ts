import { checkSchema, createDatabase, createHttpMetrics, runService } from '@crud-master/common';
import { createApp } from './app';
import { readConfig } from './config';
import { INVENTORY_MIGRATE_COMMAND, inventorySchema } from './db/schema';

/**
 * The only place that reads the environment, connects and listens. It runs no DDL: migrate.js
 * does, as the owner role. A database that is not migrated (or not granted to this role) stops
 * the start with a line saying what to run; so does one that is down (PM2 restarts it).
 */
void runService({
  name: 'inventory-app',
  dir: __dirname,
  readConfig,
  async start(config, logger) {
    const db = createDatabase(config.db);
    await checkSchema(db, inventorySchema, INVENTORY_MIGRATE_COMMAND);
    const metrics = createHttpMetrics({ service: 'inventory-app', processMetrics: true });
    return {
      handler: createApp({ db, config, logger, metrics }).callback(),
      // More than the gateway's 16 KiB: what the gateway accepted still fits with its X-Forwarded-* headers.
      listen: { maxHeaderSize: 32 * 1024, limits: config.limits },
      closeAfter: [{ name: 'database pool', run: () => db.destroy() }],
    };
  },
});
