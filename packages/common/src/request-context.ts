import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { Context, Middleware, Next } from 'koa';
import type { Logger } from 'pino';
import { boundForLog } from './request-bounds';

export const REQUEST_ID_HEADER = 'X-Request-Id';

/** What an incoming id may look like: short and plain, so it is safe in logs and headers. */
const SANE_ID = /^[A-Za-z0-9._:@-]{1,128}$/;

/** Per-request values the middleware below leave in `ctx.state`. */
export interface RequestState {
  requestId: string;
  /** A child logger that stamps every line with the request id. */
  log: Logger;
  /** Route template for metrics and logs, when the router or a proxy knows it. */
  route?: string;
}

export function requestState(ctx: Context): RequestState {
  return ctx.state as RequestState;
}

/** Whether a request id from outside (a header, a message) is safe to keep and log. */
export function isSaneRequestId(id: unknown): id is string {
  return typeof id === 'string' && SANE_ID.test(id);
}

/** Keeps a sane incoming `X-Request-Id`, or makes one. */
export function pickRequestId(incoming: string | undefined): string {
  return isSaneRequestId(incoming) ? incoming : randomUUID();
}

/** The route template a request matched, for labels that must not grow with every id. */
export function routeOf(ctx: Context): string {
  const state = requestState(ctx);
  if (state.route) return state.route;
  const matched = (ctx as { _matchedRoute?: string | RegExp })._matchedRoute;
  return typeof matched === 'string' ? matched : 'unmatched';
}

/**
 * What requestContext leaves in `ctx.state`. The child logger is made on first use: most requests
 * log nothing but their access line, which is written through the service's logger with the
 * request id as its first field, byte for byte what the child would write.
 */
class RequestStateImpl implements RequestState {
  route?: string;
  private child: Logger | undefined;

  constructor(
    readonly requestId: string,
    private readonly logger: Logger,
  ) {}

  get log(): Logger {
    return (this.child ??= this.logger.child<never>({ requestId: this.requestId }));
  }
}

/**
 * The access line of one request, once its response has gone out (or its client went away):
 * method, path (bounded: a path may be kilobytes long, a log line should not be), route, status,
 * duration, request id, and `aborted` when the response was not sent whole. Every path that
 * answers requests writes it through here (this middleware, the inventory's front door).
 */
export function logAccess(logger: Logger, requestId: string, method: string, path: string, route: string, res: ServerResponse, durationMs: number): void {
  if (!logger.isLevelEnabled('info')) return;
  const status = res.statusCode;
  const ms = Math.round(durationMs * 1000) / 1000;
  const bounded = boundForLog(path);
  // Two literal shapes rather than a spread: the common line allocates one object.
  logger.info(
    res.writableFinished
      ? { requestId, method, path: bounded, route, status, durationMs: ms }
      : { requestId, method, path: bounded, route, status, durationMs: ms, aborted: true },
    'request',
  );
}

/**
 * Registered before everything else: gives the request its id (echoed on the response and put on
 * the incoming headers, so a proxy forwards it) and its child logger, and writes one log line
 * when the response has gone out: method, path, route, status, duration, request id.
 */
export function requestContext(logger: Logger): Middleware {
  return function withRequestContext(ctx: Context, next: Next): Promise<void> {
    const started = process.hrtime.bigint();
    const requestId = pickRequestId(ctx.get(REQUEST_ID_HEADER) || undefined);
    ctx.req.headers['x-request-id'] = requestId;
    ctx.set(REQUEST_ID_HEADER, requestId);
    ctx.state = new RequestStateImpl(requestId, logger);

    // 'close' fires once the response is fully sent, or when the client went away first; it
    // also covers responses written outside Koa (the proxy), and streamed bodies.
    ctx.res.once('close', () => {
      logAccess(logger, requestId, ctx.method, ctx.path, routeOf(ctx), ctx.res, Number(process.hrtime.bigint() - started) / 1e6);
    });
    return next();
  };
}
