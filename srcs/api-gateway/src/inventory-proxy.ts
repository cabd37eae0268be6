import http from 'node:http';
import type { Context, Middleware, Next } from 'koa';
import { createProxyMiddleware, proxyEventsPlugin } from 'http-proxy-middleware';
import { boundForLog, errorBody, requestState, type Logger } from '@crud-master/common';
import { dropHopByHop } from './hop-by-hop';

export interface InventoryProxyOptions {
  /** Base URL of the inventory app. */
  target: string;
  /** No answer from the inventory within this long: 504. */
  timeoutMs: number;
  logger: Logger;
  /** Shared keep-alive agent, so that its sockets can be closed on shutdown. */
  agent: http.Agent;
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

/**
 * Forwards every `/api/movies...` request to the inventory and streams the answer back as it is:
 * status, headers and body. Koa steps aside (`ctx.respond = false`) and the body is never parsed
 * here, so bytes go through untouched in both directions.
 *
 * Failures become JSON errors: 502 when the inventory cannot be reached (refused, reset), 504 when
 * it does not answer within `timeoutMs`.
 */
export function inventoryProxy(options: InventoryProxyOptions): Middleware {
  const timedOut = new WeakSet<http.IncomingMessage>();
  const proxy = createProxyMiddleware<http.IncomingMessage, http.ServerResponse>({
    target: options.target,
    agent: options.agent,
    xfwd: true,
    proxyTimeout: options.timeoutMs,
    // Only the plugin that wires `on` handlers: the default ones log every request to the
    // console and write plain-text error pages.
    ejectPlugins: true,
    plugins: [proxyEventsPlugin],
    on: {
      proxyReq: (proxyReq, req) => {
        proxyReq.once('timeout', () => timedOut.add(req));
        // A client's `Connection: close` is about its own socket, not ours to the inventory.
        proxyReq.setHeader('Connection', 'keep-alive');
      },
      proxyRes: (proxyRes, _req, res) => {
        // Connection and Keep-Alive describe our socket to the inventory, not the client's
        // (RFC 9110 §7.6.1): passed on, `keep-alive` told a client that sent `Connection: close`
        // to reuse a socket the server was closing. Node then writes the client's own.
        dropHopByHop(proxyRes.headers);
        // An answer the inventory cut short (a list stream that failed midway) must reach the
        // client as a cut connection too: http-proxy's pipe would leave the client waiting for
        // the rest of the body forever.
        proxyRes.once('close', () => {
          if (!proxyRes.complete) res.destroy();
        });
      },
      error: (err, req, res) => {
        if (!(res instanceof http.ServerResponse)) return;
        if (timedOut.has(req)) {
          options.logger.warn({ path: boundForLog(req.url ?? ''), timeoutMs: options.timeoutMs }, 'inventory timed out');
          sendError(res, 504, 'gateway_timeout', `The inventory did not answer within ${options.timeoutMs} ms`);
        } else {
          options.logger.warn({ path: boundForLog(req.url ?? ''), err: (err as NodeJS.ErrnoException).code ?? err.message }, 'inventory unreachable');
          sendError(res, 502, 'bad_gateway', 'The inventory service is unreachable');
        }
      },
    },
  });

  return async function forwardToInventory(ctx: Context, next: Next): Promise<void> {
    if (!isMoviesPath(ctx.path)) return next();
    requestState(ctx).route = moviesRoute(ctx.path);
    ctx.respond = false;
    await new Promise<void>((resolve, reject) => {
      // 'close' fires once the response is fully sent or the client went away.
      ctx.res.once('close', resolve);
      void proxy(ctx.req, ctx.res, (err?: unknown) => {
        if (err === undefined) return resolve();
        ctx.respond = true;
        reject(err);
      });
    });
  };
}
