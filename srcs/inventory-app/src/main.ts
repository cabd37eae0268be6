import { createDatabase, createHttpMetrics, migrateLatest, runService } from '@crud-master/common';
import { createApp } from './app';
import { readConfig } from './config';
import { migrations } from './db/migrations';

/** The only place that reads the environment, connects, migrates and listens. */
void runService({
  name: 'inventory-app',
  dir: __dirname,
  readConfig,
  async start(config, logger) {
    const db = createDatabase(config.db);
    await migrateLatest(db, migrations);
    const metrics = createHttpMetrics({ service: 'inventory-app', processMetrics: true });
    return {
      handler: createApp({ db, config, logger, metrics }).callback(),
      // More than the gateway's 16 KiB: what the gateway accepted still fits with its X-Forwarded-* headers.
      listen: { maxHeaderSize: 32 * 1024, limits: config.limits },
      closeAfter: [{ name: 'database pool', run: () => db.destroy() }],
    };
  },
});
