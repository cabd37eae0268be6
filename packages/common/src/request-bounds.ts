import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Context, Middleware, Next } from 'koa';
import { AppError, errorBody } from './errors';

/** Longest request target (path and query) a service takes; longer ones get 414. */
export const MAX_REQUEST_TARGET = 8 * 1024;
/** Longest text of one field in a log line (paths, queries); the rest is cut and counted. */
export const MAX_LOG_FIELD = 256;

/** A value for a log line, cut to `max` characters with a note of how long it was. */
export function boundForLog(value: string, max = MAX_LOG_FIELD): string {
  return value.length <= max ? value : `${value.slice(0, max)}…(${value.length} chars)`;
}

export class UriTooLongError extends AppError {
  constructor(max: number) {
    super(414, 'uri_too_long', `The request target (path and query string) is longer than ${max} characters`);
  }
}

/**
 * 414 for a request target over `max` characters, before any routing or proxying: nothing of
 * that size is a valid request here, and it would be echoed in logs and Link headers.
 */
export function boundRequestTarget(max = MAX_REQUEST_TARGET): Middleware {
  // Not async: a pass-through that awaited next() would cost every request a promise and a tick.
  return function checkRequestTarget(ctx: Context, next: Next): Promise<void> {
    if (ctx.url.length > max) throw new UriTooLongError(max);
    return next();
  };
}

/**
 * Node's HTTP parser refuses some requests before Koa sees them: headers over `maxHeaderSize`
 * (431), malformed requests (400), a request not received within `requestTimeout` (408). By
 * default Node answers those with an empty body; this answers with the JSON error shape (and a
 * request id, like every answer), then closes the connection.
 */
export function answerClientError(maxHeaderSize: number) {
  return function onClientError(err: Error & { code?: string }, socket: Duplex): void {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const [status, code, message] =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'headers_too_large', `The request's headers are larger than ${maxHeaderSize} bytes`]
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? [408, 'request_timeout', 'The request was not received in time']
          : [400, 'bad_request', 'Malformed HTTP request'];
    const body = JSON.stringify(errorBody(code, message));
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n` +
        'Content-Type: application/json; charset=utf-8\r\n' +
        `Content-Length: ${Buffer.byteLength(body)}\r\n` +
        `X-Request-Id: ${randomUUID()}\r\n` +
        'Connection: close\r\n\r\n' +
        body,
    );
  };
}

/**
 * Whether a raw (still percent-encoded) path is in the one form every router here reads alike: no
 * empty segment (`//`), no dot segment (`.`, `..`, also as `%2e`), no encoded slash or backslash
 * (`%2f`, `%5c`) and no backslash. Other forms are read differently by different parsers (one
 * router took `/api/movies//` for `/api/movies/`, a URL normaliser would take
 * `/api/movies/%2e%2e/metrics` for `/metrics`), so the gateway must never forward them.
 */
export function isCanonicalPath(path: string): boolean {
  return !NOT_CANONICAL.test(path);
}

/** An empty segment, a backslash, an encoded slash or backslash, or a dot segment (one test per request). */
const NOT_CANONICAL = /\/\/|\\|%(?:2f|5c)|(?:^|\/)(?:\.|%2e){1,2}(?:\/|$)/i;

/**
 * 404 for a path that is not canonical (see isCanonicalPath), before any routing or proxying:
 * no route here has such a path, and the gateway and the inventory then agree on every path the
 * gateway forwards.
 */
export function canonicalPathOnly(): Middleware {
  return function checkCanonicalPath(ctx: Context, next: Next): Promise<void> {
    if (!isCanonicalPath(ctx.path)) throw new AppError(404, 'not_found', 'No such route: the path has an empty, dot or encoded-slash segment');
    return next();
  };
}
