import Router from '@koa/router';
import type { Context } from 'koa';
import { jsonBody, requestBody, ServiceUnavailableError, type Logger } from '@crud-master/common';
import { answerConditionally, listTag, rowTag } from './conditional';
import { JsonArrayStream, movieJson, moviesJson } from './list-stream';
import { linkHeader } from './paging';
import type { ListFilter, MoviesRepository } from './repository';
import { createMovieSchema, LIMIT_DEFAULT, listQuerySchema, parseId, updateMovieSchema, validate } from './schemas';

export interface MoviesRouterDeps {
  movies: MoviesRepository;
  bodyLimit: string;
  /** Reports lists whose stream failed after the headers went out (nothing else can). */
  logger?: Logger;
  /** Unpaged lists streamed at once, each holding a pooled connection; more get 503 (default 4). */
  maxConcurrentStreams?: number;
  /** A streaming client that reads nothing for this long is cut off (ms, default 30 s). */
  stallTimeoutMs?: number;
  /** Unpaged lists up to this many movies are sent whole, with a Content-Length; longer ones stream (default 1000). */
  streamAbove?: number;
}

/**
 * The seven movie routes. Handlers stay thin: validate, call the repository, shape the reply.
 * `strict: false` lets `/api/movies/` and `/api/movies` match alike (the contract asks for both).
 *
 * GET answers carry an ETag and `Cache-Control: no-cache`, and `If-None-Match` gets a 304 (see
 * conditional.ts). `GET /api/movies` with `limit`/`offset` answers one page with `Link` and
 * `X-Total-Count`; without them it answers every movie, as the contract says, streamed from a
 * cursor when there are more than one batch of them.
 */
export function createMoviesRouter({
  movies,
  bodyLimit,
  logger,
  maxConcurrentStreams = 4,
  stallTimeoutMs = 30_000,
  streamAbove = 1000,
}: MoviesRouterDeps): Router {
  const router = new Router({ prefix: '/api/movies', strict: false });
  const body = jsonBody({ limit: bodyLimit });
  let activeStreams = 0;

  /** When the client sent a validator, one row tells whether its copy of any list is current. */
  async function listIsFresh(ctx: Context): Promise<boolean> {
    return Boolean(ctx.get('If-None-Match')) && answerConditionally(ctx, listTag(await movies.listVersion()));
  }

  async function sendPage(ctx: Context, filter: ListFilter, limit: number, offset: number): Promise<void> {
    if (await listIsFresh(ctx)) return;
    const page = await movies.page(filter, limit, offset);
    if (answerConditionally(ctx, listTag(page.version))) return;
    ctx.set('X-Total-Count', String(page.total));
    ctx.set('Link', linkHeader({ path: ctx.path, querystring: ctx.querystring, limit, offset, total: page.total }));
    ctx.type = 'json';
    ctx.body = `[${moviesJson(page.movies)}]`;
  }

  async function sendAll(ctx: Context, filter: ListFilter): Promise<void> {
    if (await listIsFresh(ctx)) return;
    // One query answers most lists whole; only a longer one opens a cursor.
    const head = await movies.head(filter, streamAbove + 1);
    if (answerConditionally(ctx, listTag(head.version))) return;
    ctx.type = 'json';
    if (head.movies.length <= streamAbove) {
      ctx.body = `[${moviesJson(head.movies)}]`;
      return;
    }
    if (ctx.method === 'HEAD') {
      // The same headers as the streamed GET (no Content-Length), without reading the rows.
      ctx.status = 200;
      return;
    }
    if (activeStreams >= maxConcurrentStreams) {
      throw new ServiceUnavailableError(
        'Too many full lists are being sent right now; retry shortly, or ask for pages with limit and offset',
        'busy',
        { 'Retry-After': '1' },
      );
    }
    activeStreams++;
    let released = false;
    const releaseSlot = (): void => {
      if (!released) activeStreams--;
      released = true;
    };
    try {
      const cursor = await movies.openCursor(filter);
      let first;
      try {
        first = await cursor.read();
      } catch (err) {
        await cursor.close();
        throw err;
      }
      // The cursor's snapshot may be newer than the head query's: it is what gets sent.
      if (answerConditionally(ctx, listTag(cursor.version))) {
        await cursor.close();
        releaseSlot();
        return;
      }
      const stream = new JsonArrayStream(cursor, first, { stallTimeoutMs });
      stream.once('close', releaseSlot);
      stream.once('error', (err: NodeJS.ErrnoException) => {
        // A client that hangs up is routine, one that stops reading is its own problem; anything
        // else cut a good client's response short.
        if (err.code === 'ERR_STREAM_PREMATURE_CLOSE') return;
        const details = { err, path: ctx.path, query: ctx.querystring };
        if (err.code === 'ERR_CLIENT_STALLED') logger?.warn(details, 'movie list client stalled, connection closed');
        else logger?.error(details, 'movie list stream failed, connection closed');
      });
      ctx.body = stream;
    } catch (err) {
      releaseSlot();
      throw err;
    }
  }

  router.get('/', async (ctx) => {
    const query = validate(listQuerySchema, ctx.query);
    const filter: ListFilter = { title: query.title };
    if (query.limit !== undefined || query.offset !== undefined) {
      await sendPage(ctx, filter, query.limit ?? LIMIT_DEFAULT, query.offset ?? 0);
    } else {
      await sendAll(ctx, filter);
    }
  });

  router.post('/', body, async (ctx) => {
    const input = validate(createMovieSchema, requestBody(ctx));
    const movie = await movies.create(input);
    // The contract asks for 200 (not 201) on create; Location still names the new resource.
    ctx.status = 200;
    ctx.set('Location', `/api/movies/${movie.id}`);
    ctx.body = movie;
  });

  router.delete('/', async (ctx) => {
    const deleted = await movies.removeAll();
    ctx.body = { deleted };
  });

  router.get('/:id', async (ctx) => {
    const { movie, version } = await movies.getVersioned(parseId(ctx.params.id ?? ''));
    if (answerConditionally(ctx, rowTag(movie.id, version))) return;
    ctx.type = 'json';
    ctx.body = movieJson(movie);
  });

  router.put('/:id', body, async (ctx) => {
    const id = parseId(ctx.params.id ?? '');
    const patch = validate(updateMovieSchema, requestBody(ctx));
    ctx.body = await movies.update(id, patch);
  });

  router.delete('/:id', async (ctx) => {
    ctx.body = await movies.remove(parseId(ctx.params.id ?? ''));
  });

  return router;
}
