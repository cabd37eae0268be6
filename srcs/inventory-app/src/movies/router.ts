import Router from '@koa/router';
import { jsonBody, requestBody } from '@crud-master/common';
import type { MoviesRepository } from './repository';
import { createMovieSchema, listQuerySchema, parseId, updateMovieSchema, validate } from './schemas';

export interface MoviesRouterDeps {
  movies: MoviesRepository;
  bodyLimit: string;
}

/**
 * The seven movie routes. Handlers stay thin: validate, call the repository, shape the reply.
 * `strict: false` lets `/api/movies/` and `/api/movies` match alike (the contract asks for both).
 */
export function createMoviesRouter({ movies, bodyLimit }: MoviesRouterDeps): Router {
  const router = new Router({ prefix: '/api/movies', strict: false });
  const body = jsonBody({ limit: bodyLimit });

  router.get('/', async (ctx) => {
    const query = validate(listQuerySchema, ctx.query);
    ctx.body = await movies.list(query.title === undefined ? {} : { title: query.title });
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
    ctx.body = await movies.get(parseId(ctx.params.id ?? ''));
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
