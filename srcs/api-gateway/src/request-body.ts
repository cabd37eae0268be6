import type http from 'node:http';
import type { Context, Middleware, Next } from 'koa';
import getRawBody from 'raw-body';
import { errorBody, requestState } from '@crud-master/common';

/** A request carries a body when it is chunked or declares a non-zero length (RFC 9112 §6.3). */
export function hasBody(req: http.IncomingMessage): boolean {
  if (req.headers['transfer-encoding'] !== undefined) return true;
  const length = Number(req.headers['content-length'] ?? '0');
  return Number.isFinite(length) && length > 0;
}

/**
 * The request's body as the client sent it (no decoding), at most `limit` ('16kb'): a larger one is
 * refused with 413 before it is read when its Content-Length says so, else as soon as it passes the
 * limit. The gateway reads a body whole before it takes a connection to the inventory, so a client
 * that sends slowly holds only its own socket, never one of the inventory's.
 */
export async function readBody(req: http.IncomingMessage, limit: string): Promise<Buffer> {
  const declared = req.headers['content-length'];
  try {
    return await getRawBody(req, { limit, ...(declared !== undefined && req.headers['transfer-encoding'] === undefined ? { length: declared } : {}) });
  } catch (err) {
    // raw-body pauses the request where it stopped (past the limit), and Node dumps only bodies
    // nobody read: left unread, the rest would stay on the client's keep-alive connection and its
    // next request there would never be parsed. Discard it (bodyDeadline bounds how long).
    req.resume();
    throw err;
  }
}

/**
 * Cuts a request whose body has not fully arrived: 408 `request_timeout`, then the connection is
 * closed (a slow sender must not hold a socket, a parser or an order for minutes). `onCut` logs
 * it; `requestId`, when given, goes on the 408 (else it carries the headers already set on `res`).
 */
export function cutSlowBody(req: http.IncomingMessage, res: http.ServerResponse, timeoutMs: number, onCut: () => void, requestId?: string): void {
  if (req.complete) return;
  try {
    onCut();
    if (!res.headersSent) {
      const body = JSON.stringify(errorBody('request_timeout', `The request body did not arrive within ${timeoutMs} ms`));
      res.writeHead(408, {
        ...(requestId === undefined ? {} : { 'X-Request-Id': requestId }),
        'Content-Type': 'application/json; charset=utf-8',
        'Content-Length': Buffer.byteLength(body),
        Connection: 'close',
      });
      // Whoever reads the body (the proxy, the JSON parser) sees it aborted and gives up.
      res.end(body, () => req.socket.destroy());
    } else {
      req.socket.destroy();
    }
  } catch {
    req.socket.destroy();
  }
}

/**
 * cutSlowBody once the body has not fully arrived `timeoutMs` after its headers. Node's own
 * requestTimeout is the backstop behind it. Returns what stops the deadline (also stopped when
 * the body ends or the request closes).
 */
export function startBodyDeadline(req: http.IncomingMessage, res: http.ServerResponse, timeoutMs: number, onCut: () => void): () => void {
  const timer = setTimeout(() => cutSlowBody(req, res, timeoutMs, onCut), timeoutMs);
  const stop = (): void => clearTimeout(timer);
  req.once('end', stop);
  req.once('close', stop);
  return stop;
}

/** startBodyDeadline for the routes Koa serves (billing). */
export function bodyDeadline(timeoutMs: number): Middleware {
  return async function cutSlowBodies(ctx: Context, next: Next): Promise<void> {
    const req = ctx.req;
    if (!hasBody(req) || req.complete) return next();
    const stop = startBodyDeadline(req, ctx.res, timeoutMs, () =>
      requestState(ctx).log?.warn({ method: ctx.method, path: ctx.path, timeoutMs }, 'request body too slow: cut'),
    );
    try {
      await next();
    } finally {
      stop();
    }
  };
}
