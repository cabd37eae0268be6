import http from 'node:http';
import { Readable } from 'node:stream';
import type { Context, Middleware, Next } from 'koa';
import httpProxy from 'http-proxy';
import { boundForLog, errorBody, requestState, type Logger } from '@crud-master/common';
import { dropHopByHop } from './hop-by-hop';
import { hasBody, readBody } from './request-body';
import type { Limiter, Release } from './shed';
import { classifyFailure, mayRetry, meansDown } from './upstream/failure';
import type { Upstream, UpstreamPool } from './upstream/pool';

export interface InventoryProxyOptions {
  /** The inventory instances; each request goes to the next one that is up. */
  pool: UpstreamPool;
  /** No answer from the inventory within this long: 504. */
  timeoutMs: number;
  logger: Logger;
  /** Shared keep-alive agent, so that its sockets can be closed on shutdown. */
  agent: http.Agent;
  /** Bounds the requests at the inventory at once (the agent's maxSockets) and those waiting. */
  limiter: Limiter;
  /** Largest request body forwarded ('16kb'); a larger one is answered 413 here. */
  bodyLimit: string;
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

function sendError(res: http.ServerResponse, status: number, code: string, message: string): void {
  if (res.headersSent) {
    // The inventory's answer had already started: the only honest thing left is to cut it.
    res.destroy();
    return;
  }
  const body = JSON.stringify(errorBody(code, message));
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function noInstanceUp(logger: Logger, req: http.IncomingMessage, res: http.ServerResponse): void {
  logger.warn({ path: boundForLog(req.url ?? '') }, 'no inventory instance is up');
  sendError(res, 502, 'bad_gateway', 'The inventory service is unreachable: no instance is up');
}

/** Runs an event handler so that whatever it throws is logged, never thrown into the emitter (which would end the process). */
function guarded<A extends unknown[]>(logger: Logger, what: string, handler: (...args: A) => void): (...args: A) => void {
  return (...args: A) => {
    try {
      handler(...args);
    } catch (err) {
      logger.error({ err, handler: what }, 'proxy event handler failed');
    }
  };
}

/**
 * Forwards every `/api/movies...` request to the inventory and streams the answer back as it is:
 * status, headers and body. Koa steps aside (`ctx.respond = false`) and the body is never parsed
 * here, so bytes go through untouched in both directions.
 *
 * A request body is read whole first (bounded in size here, in time by `bodyDeadline`), and only
 * then does the request take one of the `limiter`'s slots, each an agent socket to the inventory:
 * slow clients hold no inventory connection, and a request never queues inside the agent, where
 * nothing bounds its wait. A request that finds no slot within the limiter's queue bound is
 * answered 503 `overloaded` with `Retry-After`.
 *
 * Failures become JSON errors: 502 when the inventory cannot be reached (refused, reset), 504 when
 * it does not answer within `timeoutMs`. With several instances, a failed connection marks its
 * instance down and a GET/HEAD (or a write that provably never left, upstream/failure.ts) goes
 * once more to another instance, in the same limiter slot, before any byte reached the client.
 */
export function inventoryProxy(options: InventoryProxyOptions): Middleware {
  const { logger, pool } = options;
  const timedOut = new WeakSet<http.IncomingMessage>();
  // Requests whose socket to the inventory has not connected yet: a timeout then means "host gone".
  const connecting = new WeakSet<http.IncomingMessage>();
  // Each proxied request's slot, freed as soon as the inventory's answer is fully received: the
  // slot stands for a connection to the inventory, not for how fast the client reads.
  const slots = new WeakMap<http.IncomingMessage, Release>();
  const proxy = httpProxy.createProxyServer({
    agent: options.agent,
    xfwd: true,
    proxyTimeout: options.timeoutMs,
    // A client's `Connection: close` is about its own socket, not ours to the inventory. Set here,
    // when the outgoing request is built: a 'proxyReq' handler runs only once the request has a
    // socket, by which time its headers may already be flushed (ERR_HTTP_HEADERS_SENT).
    headers: { connection: 'keep-alive' },
  });
  const onError = wireProxyEvents(proxy, { logger, timeoutMs: options.timeoutMs, timedOut, connecting, slots });
  // Errors of web() calls go to their callback; this one catches anything else emitted.
  proxy.on('error', onError);

  /** One attempt at an instance; on a connection failure, maybe one more at another (`failed` set). */
  function send(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer | undefined, failed?: Upstream): void {
    const upstream = pool.pick(failed);
    if (!upstream) return noInstanceUp(logger, req, res);
    // A retry cannot pipe the client's request again (already read): it sends an empty body or the buffered one.
    const buffer = body ? Readable.from([body]) : failed ? Readable.from([]) : undefined;
    const onAttemptError = guarded(logger, 'error', (err: Error) => {
      if (res.destroyed) return; // the client went away: nothing to answer, nothing learnt
      const failure = classifyFailure(err, timedOut.has(req), connecting.has(req));
      if (meansDown(failure)) pool.markDown(upstream, (err as NodeJS.ErrnoException).code ?? err.message);
      if (failed === undefined && !res.headersSent && mayRetry(req.method, failure) && pool.instances.length > 1) {
        timedOut.delete(req);
        connecting.delete(req);
        logger.warn({ path: boundForLog(req.url ?? ''), instance: upstream.url, failure }, 'retrying on another inventory instance');
        send(req, res, body, upstream);
        return;
      }
      onError(err, req, res);
    });
    proxy.web(req, res, buffer ? { target: upstream.url, buffer } : { target: upstream.url }, onAttemptError);
  }

  return async function forwardToInventory(ctx: Context, next: Next): Promise<void> {
    if (!isMoviesPath(ctx.path)) return next();
    requestState(ctx).route = moviesRoute(ctx.path);
    // Listening from the start: a client that goes away while its body is read or while it
    // waits for a slot must not leave a slot held forever by a 'close' that already fired.
    const res = ctx.res;
    const done = new Promise<void>((resolve) => {
      // 'finish': the answer is handed to the OS; 'close': it is, or the client went away.
      res.once('finish', resolve);
      res.once('close', resolve);
    });
    const body = hasBody(ctx.req) ? await readBody(ctx.req, options.bodyLimit) : undefined;
    const release = await options.limiter.acquire();
    slots.set(ctx.req, release);
    ctx.respond = false;
    try {
      if (res.destroyed || res.writableFinished) return; // nobody left to answer
      send(ctx.req, res, body);
      await done;
    } finally {
      release();
    }
  };
}

interface ProxyEventState {
  logger: Logger;
  timeoutMs: number;
  /** Requests whose inventory answer did not come within `timeoutMs`: their error is a 504. */
  timedOut: WeakSet<http.IncomingMessage>;
  /** Requests whose socket to the inventory is still connecting. */
  connecting: WeakSet<http.IncomingMessage>;
  /** Each proxied request's upstream slot, freed once the inventory's answer is received. */
  slots: WeakMap<http.IncomingMessage, Release>;
}

/** The proxy's event handlers, each guarded; returns the error handler for web() calls. */
function wireProxyEvents(proxy: httpProxy, { logger, timeoutMs, timedOut, connecting, slots }: ProxyEventState): (err: Error, req: http.IncomingMessage, res: unknown) => void {
  proxy.on(
    'proxyReq',
    guarded(logger, 'proxyReq', (proxyReq: http.ClientRequest, req: http.IncomingMessage) => {
      proxyReq.once('timeout', () => timedOut.add(req));
      // Emitted once the request has its socket: a fresh one connects first, a kept-alive one is open.
      const socket = proxyReq.socket;
      if (socket?.connecting) {
        connecting.add(req);
        socket.once('connect', () => connecting.delete(req));
      }
    }),
  );
  proxy.on(
    'proxyRes',
    guarded(logger, 'proxyRes', (proxyRes: http.IncomingMessage, req: http.IncomingMessage, res: http.ServerResponse) => {
      // Connection and Keep-Alive describe our socket to the inventory, not the client's
      // (RFC 9110 §7.6.1): passed on, `keep-alive` told a client that sent `Connection: close`
      // to reuse a socket the server was closing. Node then writes the client's own.
      dropHopByHop(proxyRes.headers);
      // An answer the inventory cut short (a list stream that failed midway) must reach the
      // client as a cut connection too: http-proxy's pipe would leave the client waiting for
      // the rest of the body forever.
      proxyRes.once('close', () => {
        if (!proxyRes.complete) res.destroy();
        slots.get(req)?.();
      });
      proxyRes.once('end', () => slots.get(req)?.());
    }),
  );
  const onError = guarded(logger, 'error', (err: Error, req: http.IncomingMessage, res: unknown) => {
    if (!(res instanceof http.ServerResponse)) return;
    if (timedOut.has(req)) {
      logger.warn({ path: boundForLog(req.url ?? ''), timeoutMs: timeoutMs }, 'inventory timed out');
      sendError(res, 504, 'gateway_timeout', `The inventory did not answer within ${timeoutMs} ms`);
    } else {
      logger.warn({ path: boundForLog(req.url ?? ''), err: (err as NodeJS.ErrnoException).code ?? err.message }, 'inventory unreachable');
      sendError(res, 502, 'bad_gateway', 'The inventory service is unreachable');
    }
  });
  return onError;
}
