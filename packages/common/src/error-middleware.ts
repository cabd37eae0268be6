import type { Context, Middleware, Next } from 'koa';
import type { Logger } from 'pino';
import { isDatabaseUnavailable, isQueryTimeout } from './database-errors';
import { AppError, errorBody } from './errors';
import { boundForLog } from './request-bounds';
import { requestState } from './request-context';

/** Codes for the errors Koa and its body parser raise themselves (http-errors with a status). */
const CODE_BY_STATUS: Record<number, string> = {
  400: 'bad_request',
  404: 'not_found',
  405: 'method_not_allowed',
  413: 'payload_too_large',
  414: 'uri_too_long',
  415: 'unsupported_media_type',
  501: 'not_implemented',
};

interface HttpLikeError {
  status?: unknown;
  statusCode?: unknown;
  expose?: unknown;
  message?: unknown;
  type?: unknown;
  headers?: unknown;
}

/** The status, code, message and headers of the JSON error answer an error gets (exported for the gateway's proxy, which writes its own). */
export function describeError(err: unknown): { status: number; code: string; message: string; headers?: Record<string, string> } {
  if (err instanceof AppError) {
    return {
      status: err.status,
      code: err.code,
      message: err.expose ? err.message : 'Internal server error',
      ...(err.headers ? { headers: err.headers } : {}),
    };
  }
  if (isQueryTimeout(err)) {
    return {
      status: 503,
      code: 'query_timeout',
      message: 'The database took too long on this request; narrow it (a longer search term, a smaller offset) or try again shortly',
      headers: { 'Retry-After': '1' },
    };
  }
  if (isDatabaseUnavailable(err)) {
    return { status: 503, code: 'database_unavailable', message: 'The database is unavailable, try again shortly' };
  }
  const e = (typeof err === 'object' && err !== null ? err : {}) as HttpLikeError;
  const status = typeof e.status === 'number' ? e.status : typeof e.statusCode === 'number' ? e.statusCode : 500;
  if (status >= 400 && status < 500 && e.expose !== false) {
    // co-body rethrows JSON.parse's SyntaxError with status 400.
    const invalidJson = status === 400 && (err instanceof SyntaxError || e.type === 'entity.parse.failed');
    const code = invalidJson ? 'invalid_json' : CODE_BY_STATUS[status] ?? 'bad_request';
    const message =
      invalidJson
        ? 'Request body is not valid JSON'
        : status === 413
          ? 'Request body is too large'
          : typeof e.message === 'string'
            ? e.message
            : 'Bad request';
    return { status, code, message };
  }
  return { status: 500, code: 'internal_error', message: 'Internal server error' };
}

/**
 * Registered first: the one place that writes error responses. It also gives JSON bodies to the
 * empty 404/405/501 responses that Koa and @koa/router's allowedMethods() leave behind, keeping
 * the `Allow` header the router set, and turns the router's 501 and OPTIONS answers into the 405
 * or 404 any other method a path lacks gets.
 */
export function errorMiddleware(logger: Logger): Middleware {
  return async function handleErrors(ctx: Context, next: Next): Promise<void> {
    try {
      await next();
      if (ctx.body == null && ctx.respond !== false) {
        if (ctx.status === 404) {
          ctx.status = 404;
          ctx.body = errorBody('not_found', `No route for ${ctx.method} ${boundForLog(ctx.path, 200)}`);
        } else if (ctx.status === 405) {
          ctx.body = errorBody('method_not_allowed', `Method ${ctx.method} is not allowed on ${boundForLog(ctx.path, 200)}`);
          ctx.status = 405;
        } else if (ctx.status === 501) {
          // A method no route here uses (TRACE, PROPFIND, ...): not a server failure. On a path
          // that exists it is a 405 with the path's methods, elsewhere a 404, as for GET.
          const allow = ctx.response.get('Allow');
          if (allow) {
            ctx.body = errorBody('method_not_allowed', `Method ${ctx.method} is not allowed on ${boundForLog(ctx.path, 200)}`);
            ctx.status = 405;
          } else {
            ctx.remove('Allow');
            ctx.status = 404;
            ctx.body = errorBody('not_found', `No route for ${ctx.method} ${boundForLog(ctx.path, 200)}`);
          }
        }
      } else if (ctx.method === 'OPTIONS' && ctx.status === 200 && ctx.body === '' && ctx.response.get('Allow')) {
        // The router answers OPTIONS itself with 200 and Allow; no route here has OPTIONS, so it
        // is a 405 like any other method a path lacks: the same Allow, and a JSON body.
        ctx.body = errorBody('method_not_allowed', `Method OPTIONS is not allowed on ${boundForLog(ctx.path, 200)}`);
        ctx.status = 405;
      }
    } catch (err) {
      const { status, code, message, headers } = describeError(err);
      const log = requestState(ctx).log ?? logger;
      if (status === 503) {
        log.warn({ err, method: ctx.method, path: boundForLog(ctx.path), status }, 'dependency unavailable');
      } else if (status >= 500) {
        log.error({ err, method: ctx.method, path: boundForLog(ctx.path), status }, 'request failed');
      }
      if (ctx.headerSent || !ctx.writable) {
        // Nothing more can be sent to the client; make sure the socket does not hang.
        ctx.res.destroy();
        return;
      }
      ctx.status = status;
      if (headers) ctx.set(headers);
      ctx.body = errorBody(code, message);
    }
  };
}
