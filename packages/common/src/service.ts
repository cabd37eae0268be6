import type http from 'node:http';
import type { LevelWithSilent } from 'pino';
import { findEnvFile, loadEnv, type Env } from './config';
import { addressOf, closeServer, exitOnStartupError, handleShutdown, listen, type ListenOptions, type ShutdownOptions } from './http-server';
import { createLogger, type Logger } from './logger';

type ShutdownStep = ShutdownOptions['steps'][number];

/** What every service's configuration has. */
export interface ServiceConfig {
  listenHost: string;
  port: number;
  logLevel: LevelWithSilent;
}

/** A service after its start: what to serve, and what to close on SIGTERM. */
export interface StartedService {
  handler: http.RequestListener;
  /** How the server listens beyond its address (header size, timeouts, connection cap). */
  listen?: Omit<ListenOptions, 'host' | 'port'>;
  /** Fields of the "listening" log line. */
  details?: Record<string, unknown>;
  /** Closed before the HTTP server (stop taking work first). */
  closeFirst?: ShutdownStep[];
  /**
   * A second, internal listener (metrics, detailed health) on its own address: never the public
   * port. Closed right after the public server.
   */
  admin?: { handler: http.RequestListener; host: string; port: number };
  /** Closed after the HTTP server, in order (agents, brokers, pools). */
  closeAfter?: ShutdownStep[];
  /**
   * Runs once the server listens, until it resolves or the shutdown begins (`signal` aborts):
   * waiting for a dependency that may come up later, for example.
   */
  afterListen?(signal: AbortSignal): Promise<void>;
}

export interface ServiceDefinition<C extends ServiceConfig> {
  name: string;
  /** Where the search for `.env` starts: the entry point's directory. */
  dir: string;
  readConfig(env: Env): C;
  /** Connects, migrates, builds the app; never listens. */
  start(config: C, logger: Logger): Promise<StartedService>;
}

/**
 * The skeleton of every entry point: read the environment, start, listen, and on SIGTERM/SIGINT
 * close in order (closeFirst, the HTTP server, closeAfter). A failed start logs why and exits 1.
 */
export async function runService<C extends ServiceConfig>(definition: ServiceDefinition<C>): Promise<void> {
  let logger: Logger | undefined;
  try {
    const config = definition.readConfig(loadEnv(findEnvFile(definition.dir)));
    const log = createLogger({ name: definition.name, level: config.logLevel });
    logger = log;
    const service = await definition.start(config, log);
    const server = await listen(service.handler, { ...service.listen, host: config.listenHost, port: config.port });
    log.info({ address: addressOf(server), ...service.details }, `${definition.name} listening`);
    const admin = service.admin ? await listen(service.admin.handler, { host: service.admin.host, port: service.admin.port }) : undefined;
    if (admin) log.info({ address: addressOf(admin) }, `${definition.name} admin listener (metrics, detailed health)`);
    // Registered before handleShutdown's listeners, so afterListen stops before the first step.
    const running = new AbortController();
    for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => running.abort());
    handleShutdown({
      logger: log,
      steps: [
        ...(service.closeFirst ?? []),
        { name: 'http server', run: () => closeServer(server) },
        ...(admin ? [{ name: 'admin server', run: () => closeServer(admin) }] : []),
        ...(service.closeAfter ?? []),
      ],
    });
    await service.afterListen?.(running.signal);
  } catch (err) {
    exitOnStartupError(logger, err);
  }
}
