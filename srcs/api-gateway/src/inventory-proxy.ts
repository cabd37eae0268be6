import type http from 'node:http';
import { Pool, type Dispatcher } from 'undici';
import { boundForLog, describeError, pickRequestId, type HttpMetrics, type Logger } from '@crud-master/common';
import { UPSTREAM_IDLE_MS } from './config';
import { Exchange, type ProxyShared } from './exchange';
import { hasBody, readBody, startBodyDeadline } from './request-body';
import type { Limiter } from './shed';
import type { Upstream, UpstreamPool } from './upstream/pool';

export interface InventoryProxyOptions {
  /** The inventory instances; each request goes to the next one that is up. */
  pool: UpstreamPool;
  /** No answer from the inventory within this long: 504. */
  timeoutMs: number;
  logger: Logger;
  /** Where the proxied requests are counted and timed (the Koa stack's registry). */
  metrics: HttpMetrics;
  /** Bounds the requests at the inventory at once (each instance's connections) and those waiting. */
  limiter: Limiter;
  /** Largest request body forwarded ('16kb'); a larger one is answered 413 here. */
  bodyLimit: string;
  /** A request body must have arrived this long after its headers, else 408. */
  bodyTimeoutMs: number;
}

export interface InventoryProxy {
  /**
   * Proxies one `/api/movies...` request (`path`: its path without the query). `recorded`: the
   * request id when the Koa stack already gave it one and writes its access line and metrics.
   */
  handle(req: http.IncomingMessage, res: http.ServerResponse, path: string, recorded?: string): void;
  /** Closes the connections to the inventory (shutdown). */
  close(): Promise<void>;
}

/** `/api/movies` and everything below it, but not `/api/moviesX`. */
export function isMoviesPath(path: string): boolean {
  return path === '/api/movies' || path.startsWith('/api/movies/');
}

/** The inventory's route template for a proxied path, for metrics labels that stay bounded. */
export function moviesRoute(path: string): string {
  const rest = path.slice('/api/movies'.length).replace(/\/$/, '');
  if (rest === '') return '/api/movies';
  return /^\/[^/]+$/.test(rest) ? '/api/movies/:id' : '/api/movies/*';
}

/**
 * The client for one inventory instance: an undici Pool of keep-alive connections, as many as the
 * limiter lets requests through, each closed after UPSTREAM_IDLE_MS idle (before the inventory's
 * 65 s keep-alive can close it under a request). No answer, or a stall in the body, within
 * `timeoutMs`: the request fails with a timeout (504); so does a connection not made in that time.
 */
export function inventoryClient(url: string, connections: number, timeoutMs: number): Dispatcher {
  return new Pool(url, {
    connections,
    pipelining: 1,
    keepAliveTimeout: UPSTREAM_IDLE_MS,
    keepAliveMaxTimeout: UPSTREAM_IDLE_MS,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    connect: { timeout: timeoutMs },
  });
}

/**
 * Forwards every `/api/movies...` request to the inventory and streams the answer back as it is:
 * status, headers and body, with backpressure both ways; the body is never parsed here. Plain
 * `node:http` in front (front-door.ts) and undici behind: none of Koa's per-request objects, no
 * http.ClientRequest, no stream piping (exchange.ts does the forwarding).
 *
 * A request body is read whole first (bounded in size here, in time by the body deadline), and
 * only then does the request take one of the `limiter`'s slots, each a connection to the
 * inventory: slow clients hold no inventory connection, and a request never queues inside the
 * client, where nothing bounds its wait. A request that finds no slot within the limiter's queue
 * bound is answered 503 `overloaded` with `Retry-After`.
 *
 * Failures become JSON errors: 502 when the inventory cannot be reached (refused, reset), 504 when
 * it does not answer within `timeoutMs`. With several instances, a failed connection marks its
 * instance down and a GET/HEAD (or a write that provably never left, upstream/failure.ts) goes
 * once more to another instance, in the same limiter slot, before any byte reached the client.
 */
export function createInventoryProxy(options: InventoryProxyOptions): InventoryProxy {
  const { pool, limiter, logger } = options;
  const clients = new Map<Upstream, Dispatcher>(pool.instances.map((u) => [u, inventoryClient(u.url, limiter.max, options.timeoutMs)]));
  const shared: ProxyShared = { pool, clients, logger, metrics: options.metrics, timeoutMs: options.timeoutMs };

  /** The slow path: a body to read first, or a wait for a slot. */
  async function whenReady(exchange: Exchange): Promise<void> {
    const { req, res } = exchange;
    try {
      if (hasBody(req) && !req.complete) {
        // On the 408 the deadline may write, as on every answer.
        res.setHeader('X-Request-Id', exchange.requestId);
        const stop = startBodyDeadline(req, res, options.bodyTimeoutMs, () =>
          logger.warn({ requestId: exchange.requestId, method: req.method, path: boundForLog(exchange.path), timeoutMs: options.bodyTimeoutMs }, 'request body too slow: cut'),
        );
        try {
          exchange.body = await readBody(req, options.bodyLimit);
        } finally {
          stop();
        }
      }
      const release = limiter.tryAcquire() ?? (await limiter.acquire());
      // A client that went away meanwhile holds no slot.
      if (res.destroyed || res.writableFinished) return release();
      exchange.release = release;
      exchange.forward();
    } catch (err) {
      if (res.destroyed || res.headersSent) return;
      const { status, code, message, headers } = describeError(err);
      if (status >= 500) logger.warn({ requestId: exchange.requestId, method: req.method, path: boundForLog(exchange.path), status, code }, 'dependency unavailable');
      exchange.fail(status, code, message, headers);
    }
  }

  return {
    handle(req, res, path, recorded): void {
      const requestId = recorded ?? pickRequestId(req.headers['x-request-id'] as string | undefined);
      // Forwarded with the request, so the inventory logs the same id.
      req.headers['x-request-id'] = requestId;
      const exchange = new Exchange(shared, req, res, path, moviesRoute(path), requestId, recorded !== undefined);
      if (!hasBody(req)) {
        const release = limiter.tryAcquire();
        if (release) {
          exchange.release = release;
          return exchange.forward();
        }
      }
      void whenReady(exchange);
    },
    async close(): Promise<void> {
      await Promise.all([...clients.values()].map((c) => c.destroy()));
    },
  };
}
