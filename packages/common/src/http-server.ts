import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { answerClientError } from './request-bounds';
import { flushLogger } from './logger';
import { applyServerLimits, serverOptions, type ServerLimits } from './server-limits';

export interface ListenOptions {
  host: string;
  port: number;
  /**
   * Largest request line plus headers, in bytes (Node's default, 16 KiB, when absent); larger
   * requests get a JSON 431. An internal hop takes more than the public edge in front of it,
   * which adds its X-Forwarded-* headers.
   */
  maxHeaderSize?: number;
  /** Timeouts and the connection cap for this server's role; Node's defaults and a 65 s keep-alive when absent. */
  limits?: ServerLimits;
}

/** Starts an HTTP server for a request handler and resolves once it is listening. */
export async function listen(
  handler: http.RequestListener,
  options: ListenOptions,
): Promise<http.Server> {
  const maxHeaderSize = options.maxHeaderSize ?? 16 * 1024;
  const server = http.createServer({ maxHeaderSize, ...(options.limits ? serverOptions(options.limits) : {}) }, handler);
  server.on('clientError', answerClientError(maxHeaderSize));
  if (options.limits) {
    applyServerLimits(server, options.limits);
  } else {
    // Keep-alive from the gateway: hold idle sockets a little longer than Node's client agents do.
    server.keepAliveTimeout = 65_000;
    server.headersTimeout = 66_000;
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // A burst of new connections waits in the kernel's accept queue: Node's default of 511 drops
    // the rest (the client retries its SYN after 1 s, 3 s, 7 s...). The kernel caps it at somaxconn.
    const backlog = options.limits ? options.limits.maxConnections : 511;
    server.listen({ port: options.port, host: options.host, backlog }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}

export function addressOf(server: http.Server): string {
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}`;
}

/**
 * Stops accepting connections and resolves when in-flight requests have finished. Connections
 * still open after `forceAfterMs` (a client that never finishes sending, say) are cut.
 */
export async function closeServer(server: http.Server, forceAfterMs = 5000): Promise<void> {
  const force = setTimeout(() => server.closeAllConnections(), forceAfterMs);
  try {
    await new Promise<void>((resolve, reject) => {
      server.close((err) => (err ? reject(err) : resolve()));
      // Idle keep-alive sockets would hold close() open until they time out.
      server.closeIdleConnections();
    });
  } finally {
    clearTimeout(force);
  }
}

export interface ShutdownOptions {
  logger: Logger;
  /** Steps run in order on SIGTERM/SIGINT: typically close the server, then the pool. */
  steps: Array<{ name: string; run: () => Promise<void> }>;
  /** After this long the process exits anyway (ms). */
  timeoutMs?: number;
}

/**
 * Graceful shutdown on SIGTERM (PM2's stop) and SIGINT: run each step, then exit. A second signal
 * or the timeout forces the exit so a stuck dependency cannot keep the process alive.
 */
export function handleShutdown(options: ShutdownOptions): void {
  const { logger, steps, timeoutMs = 10_000 } = options;
  let stopping = false;
  const stop = async (signal: NodeJS.Signals): Promise<void> => {
    if (stopping) {
      logger.warn({ signal }, 'second signal, exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const timer = setTimeout(() => {
      logger.error({ timeoutMs }, 'shutdown timed out, exiting');
      process.exit(1);
    }, timeoutMs);
    timer.unref();
    let code = 0;
    for (const step of steps) {
      try {
        await step.run();
        logger.info({ step: step.name }, 'closed');
      } catch (err) {
        code = 1;
        logger.error({ err, step: step.name }, 'failed to close');
      }
    }
    // Last: the logger writes asynchronously; every line so far (access lines included) goes out.
    await flushLogger(logger);
    process.exit(code);
  };
  process.on('SIGTERM', (signal) => void stop(signal));
  process.on('SIGINT', (signal) => void stop(signal));
}

/**
 * pino writes to stdout asynchronously: exiting at once would let its exit hook write the last
 * buffered lines before one still being written, out of order. Exit once they are out (or
 * after a second, should stdout be stuck).
 */

/** Entry points call this on a failed start: log the reason and exit non-zero. */
export function exitOnStartupError(logger: Logger | undefined, err: unknown): never {
  if (logger) logger.fatal({ err }, 'failed to start');
  else console.error(err instanceof Error ? err.message : err);
  process.exit(1);
}
