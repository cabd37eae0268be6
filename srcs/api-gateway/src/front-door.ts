import type http from 'node:http';
import type { Context, Middleware, Next } from 'koa';
import { isCanonicalPath, MAX_REQUEST_TARGET, requestState } from '@crud-master/common';
import type { OrderDoor } from './billing/order-door';
import { isMoviesPath, moviesRoute, type InventoryProxy } from './inventory-proxy';

/**
 * A path made of RFC 3986 path characters only (no `#`, no space, nothing beyond ASCII): for those,
 * the text before `?` is exactly the path Koa would read (parseurl), so the front door and the
 * Koa stack agree on which requests are movie requests.
 */
const PLAIN_PATH = /^[A-Za-z0-9\-._~!$&'()*+,;=:@%/]*$/;

/**
 * The gateway's request handler: a movie request in the common form goes straight to the proxy,
 * an order in its common form (`orders`, billing/order-door.ts says which) straight to the
 * publisher, everything else to the Koa app (`rest`). These are the hot paths: through Koa each
 * request would cost a context, seven middleware promises, a child logger and two close
 * listeners more (README, "Benchmark").
 *
 * The common form of a movie request is what the Koa stack would forward unchanged: a target of
 * at most MAX_REQUEST_TARGET characters (else Koa answers 414) and a plain, canonical path (else
 * Koa answers 404, or reads it its own way and forwards it through moviesThroughKoa below).
 */
export function frontDoor(proxy: InventoryProxy, rest: http.RequestListener, maxTarget = MAX_REQUEST_TARGET, orders?: OrderDoor): http.RequestListener {
  return function dispatch(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = req.url as string;
    if (url.startsWith('/api/movies') && url.length <= maxTarget) {
      const query = url.indexOf('?');
      const path = query < 0 ? url : url.slice(0, query);
      if (isMoviesPath(path) && PLAIN_PATH.test(path) && isCanonicalPath(path)) return proxy.handle(req, res, path);
    } else if (orders?.accepts(req, url)) {
      return orders.handle(req, res, url);
    }
    rest(req, res);
  };
}

/**
 * In the Koa stack, after its request bounds: a movie request the front door left to Koa (a path
 * with characters Koa reads its own way) is forwarded by the same proxy, as it always was. Koa's
 * request id, access line and metrics stand; Koa steps aside for the answer.
 */
export function moviesThroughKoa(proxy: InventoryProxy): Middleware {
  return async function forwardToInventory(ctx: Context, next: Next): Promise<void> {
    if (!isMoviesPath(ctx.path)) return next();
    const state = requestState(ctx);
    state.route = moviesRoute(ctx.path);
    ctx.respond = false;
    proxy.handle(ctx.req, ctx.res, ctx.path, state.requestId);
  };
}
