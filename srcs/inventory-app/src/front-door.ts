import type http from 'node:http';
import {
  countRequest,
  describeError,
  errorBody,
  logAccess,
  MAX_REQUEST_TARGET,
  pickRequestId,
  REQUEST_ID_HEADER,
  type HttpMetrics,
  type Logger,
} from '@crud-master/common';
import { CACHE_CONTROL, ifNoneMatchMatches, rowTag } from './movies/conditional';
import { movieJson } from './movies/list-stream';
import type { MoviesRepository } from './movies/repository';
import { ID_MAX } from './movies/schemas';

/**
 * `GET /api/movies/<id>` in its common form: an id in plain decimal digits that can name a row
 * (at most 10 digits, checked against ID_MAX below), an optional trailing slash, an optional query
 * string (which the route ignores). Every other form, a bad id included, is the Koa stack's.
 */
const BY_ID = /^\/api\/movies\/([1-9][0-9]{0,9})(\/?)(?:\?|$)/;
/** The route template the router gives this request, for the access line and the metrics. */
const ROUTE = '/api/movies/:id';
const JSON_TYPE = 'application/json; charset=utf-8';

export interface FrontDoorDeps {
  movies: MoviesRepository;
  logger: Logger;
  metrics: HttpMetrics;
}

/**
 * The inventory's request handler: a `GET /api/movies/<id>` in its common form is answered here,
 * before any Koa object exists; everything else goes to the Koa stack (`rest`). It is nearly every
 * request the inventory serves, and through Koa each one cost a context, eight middleware frames
 * and their promises, the router's matching and two close listeners (README, "Benchmark").
 *
 * The answer is the Koa stack's, byte for byte (test/front-door.test.ts compares them): the request
 * id (kept when sane, else made, echoed and put on the incoming headers), the ETag, Cache-Control
 * and a 304 for a matching If-None-Match, the movie's JSON with its Content-Length, the JSON 404
 * and the 503s of a failing database (errorMiddleware's describeError), one access line and the
 * request's metrics once the response is done.
 */
export function frontDoor(deps: FrontDoorDeps, rest: http.RequestListener, maxTarget = MAX_REQUEST_TARGET): http.RequestListener {
  return function dispatch(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = req.url as string;
    if (req.method === 'GET' && url.length <= maxTarget) {
      const match = BY_ID.exec(url);
      if (match) {
        const id = Number(match[1]);
        if (id <= ID_MAX) {
          void answerById(deps, req, res, match[2] === '' ? `/api/movies/${match[1]}` : `/api/movies/${match[1]}/`, id);
          return;
        }
      }
    }
    rest(req, res);
  };
}

async function answerById(deps: FrontDoorDeps, req: http.IncomingMessage, res: http.ServerResponse, path: string, id: number): Promise<void> {
  const started = performance.now();
  // Koa's initial status: a client that leaves before the answer is logged and counted as under Koa.
  res.statusCode = 404;
  const incoming = req.headers['x-request-id'];
  const requestId = pickRequestId(typeof incoming === 'string' && incoming !== '' ? incoming : undefined);
  req.headers['x-request-id'] = requestId;
  res.on('close', () => {
    const ms = performance.now() - started;
    countRequest(deps.metrics, 'GET', ROUTE, res.statusCode, ms / 1000);
    logAccess(deps.logger, requestId, 'GET', path, ROUTE, res, ms);
  });
  try {
    const { movie, version } = await deps.movies.getVersioned(id);
    // The client went away meanwhile: nothing to write (Koa's respond does the same).
    if (!isWritable(res)) return void res.end();
    const etag = rowTag(movie.id, version);
    if (ifNoneMatchMatches(req.headers['if-none-match'] || undefined, etag)) {
      res.writeHead(304, [REQUEST_ID_HEADER, requestId, 'Cache-Control', CACHE_CONTROL, 'ETag', etag]);
      res.end();
      return;
    }
    const body = movieJson(movie);
    res.writeHead(200, [REQUEST_ID_HEADER, requestId, 'Cache-Control', CACHE_CONTROL, 'ETag', etag, 'Content-Type', JSON_TYPE, 'Content-Length', String(Buffer.byteLength(body))]);
    res.end(body);
  } catch (err) {
    fail(deps.logger, res, requestId, path, err);
  }
}

/** errorMiddleware's catch, for this one route: log a failing dependency, answer the JSON error. */
function fail(logger: Logger, res: http.ServerResponse, requestId: string, path: string, err: unknown): void {
  const { status, code, message, headers } = describeError(err);
  if (status >= 500) {
    const log = logger.child({ requestId });
    const fields = { err, method: 'GET', path, status };
    if (status === 503) log.warn(fields, 'dependency unavailable');
    else log.error(fields, 'request failed');
  }
  if (res.headersSent || !isWritable(res)) {
    res.destroy();
    return;
  }
  const body = JSON.stringify(errorBody(code, message));
  const head = [REQUEST_ID_HEADER, requestId];
  for (const [name, value] of Object.entries(headers ?? {})) head.push(name, value);
  head.push('Content-Type', JSON_TYPE, 'Content-Length', String(Buffer.byteLength(body)));
  res.writeHead(status, head);
  res.end(body);
}

/** Koa's `ctx.writable`: the response is not ended and its socket, if any, can still be written. */
function isWritable(res: http.ServerResponse): boolean {
  if (res.writableEnded) return false;
  const socket = res.socket;
  return !socket || socket.writable;
}
