import Router from '@koa/router';
import { jsonBody, requestBody, type Logger } from '@crud-master/common';
import { answerConditionally, rowTag } from './conditional';
import { listMovies, type ListDeps } from './list-handler';
import { movieJson } from './list-stream';
import type { MoviesRepository } from './repository';
import { createMovieSchema, parseId, updateMovieSchema, validate } from './schemas';
import type { SearchCheck } from './search-bounds';
import { createStreamSlots } from './stream-slots';

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
  /** Refuses title searches too costly for the table's size (search-bounds.ts); none when absent. */
  checkSearch?: SearchCheck;
  /** A streamed full list must be sent within this long, however the client reads (ms, default 120 s). */
  streamDeadlineMs?: number;
}

/**
 * The seven movie routes. Handlers stay thin: validate, call the repository, shape the reply.
 * `strict: false` lets `/api/movies/` and `/api/movies` match alike (the contract asks for both).
 *
 * GET answers carry an ETag and `Cache-Control: no-cache`, and `If-None-Match` gets a 304 (see
 * conditional.ts). The list's own cases (pages, whole lists, streams) are in list-handler.ts.
 */
export function createMoviesRouter({
  movies,
  bodyLimit,
  logger,
  maxConcurrentStreams = 4,
  stallTimeoutMs = 30_000,
  streamAbove = 1000,
  checkSearch,
  streamDeadlineMs = 120_000,
}: MoviesRouterDeps): Router {
  // Case-sensitive like the gateway, which forwards only `/api/movies`: `/API/movies` is no route on either.
  const router = new Router({ prefix: '/api/movies', strict: false, sensitive: true });
  const body = jsonBody({ limit: bodyLimit });
  const list: ListDeps = { movies, logger, slots: createStreamSlots(maxConcurrentStreams), stallTimeoutMs, streamAbove, streamDeadlineMs, checkSearch };

  router.get('/', (ctx) => listMovies(ctx, list));

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
