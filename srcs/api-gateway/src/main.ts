import http from 'node:http';
import {
  addressOf,
  closeServer,
  createLogger,
  exitOnStartupError,
  findEnvFile,
  handleShutdown,
  listen,
  loadEnv,
  type Logger,
} from '@crud-master/common';
import { createApp } from './app';
import { readConfig } from './config';

/** The only place that reads the environment, connects and listens. */
async function main(): Promise<void> {
  let logger: Logger | undefined;
  try {
    const config = readConfig(loadEnv(findEnvFile(__dirname)));
    logger = createLogger({ name: 'api-gateway', level: config.logLevel });
    const inventoryAgent = new http.Agent({ keepAlive: true, maxSockets: 256 });
    const server = await listen(createApp({ config, logger, inventoryAgent }).callback(), {
      host: config.listenHost,
      port: config.port,
    });
    logger.info({ address: addressOf(server), inventory: config.inventoryUrl }, 'api-gateway listening');
    handleShutdown({
      logger,
      steps: [
        { name: 'http server', run: () => closeServer(server) },
        { name: 'inventory agent', run: async () => inventoryAgent.destroy() },
      ],
    });
  } catch (err) {
    exitOnStartupError(logger, err);
  }
}

void main();
