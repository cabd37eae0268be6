import {
  addressOf,
  closeServer,
  createDatabase,
  createHttpMetrics,
  createLogger,
  exitOnStartupError,
  findEnvFile,
  handleShutdown,
  listen,
  loadEnv,
  migrateLatest,
  type Logger,
} from '@crud-master/common';
import { createApp } from './app';
import { readConfig } from './config';
import { migrations } from './db/migrations';

/** The only place that reads the environment, connects, migrates and listens. */
async function main(): Promise<void> {
  let logger: Logger | undefined;
  try {
    const config = readConfig(loadEnv(findEnvFile(__dirname)));
    logger = createLogger({ name: 'inventory-app', level: config.logLevel });
    const db = createDatabase(config.db);
    await migrateLatest(db, migrations);
    const server = await listen(createApp({ db, config, logger, metrics: createHttpMetrics({ service: 'inventory-app', processMetrics: true }) }).callback(), {
      host: config.listenHost,
      port: config.port,
      limits: config.limits,
    });
    logger.info({ address: addressOf(server) }, 'inventory-app listening');
    handleShutdown({
      logger,
      steps: [
        { name: 'http server', run: () => closeServer(server) },
        { name: 'database pool', run: () => db.destroy() },
      ],
    });
  } catch (err) {
    exitOnStartupError(logger, err);
  }
}

void main();
