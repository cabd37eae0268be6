import type http from 'node:http';
import { countRequest, errorBody, logAccess, type HttpMetrics, type Logger } from '@crud-master/common';

/** What the requests the front door serves before Koa share: where their lines and counts go. */
export interface AccessShared {
  logger: Logger;
  metrics: HttpMetrics;
}

/** One request the front door serves itself (a proxied movie request, an order). */
export interface AccessRecord {
  readonly req: http.IncomingMessage;
  readonly res: http.ServerResponse;
  /** Its path without the query. */
  readonly path: string;
  /** The route template, for labels that stay bounded. */
  readonly route: string;
  readonly requestId: string;
  /** performance.now() when its headers came. */
  readonly started: number;
}

/**
 * The access line and the HTTP metrics of a request the front door served, written once its
 * connection is done with it (answered, or the client gone first): byte for byte what the Koa
 * stack writes for its requests (common's requestContext and httpMetricsMiddleware).
 */
export function recordAccess({ logger, metrics }: AccessShared, record: AccessRecord): void {
  const ms = performance.now() - record.started;
  const method = record.req.method as string;
  countRequest(metrics, method, record.route, record.res.statusCode, ms / 1000);
  logAccess(logger, record.requestId, method, record.path, record.route, record.res, ms);
}

/** Answers `body` (JSON text) with `status`, in one write, as Koa would: request id, type, length. */
export function answerJson(res: http.ServerResponse, requestId: string, status: number, body: string, headers?: Record<string, string>): void {
  res.writeHead(status, {
    'X-Request-Id': requestId,
    ...headers,
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

/** Answers with the contract's JSON error, in one write; a response already under way is cut instead. */
export function answerError(res: http.ServerResponse, requestId: string, status: number, code: string, message: string, headers?: Record<string, string>): void {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  answerJson(res, requestId, status, JSON.stringify(errorBody(code, message)), headers);
}
