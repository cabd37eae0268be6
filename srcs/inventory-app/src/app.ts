import type http from 'node:http';
import Koa from 'koa';
import Router from '@koa/router';
import {
  boundRequestTarget,
  canonicalPathOnly,
  createHttpMetrics,
  errorMiddleware,
  healthHandler,
  httpMetricsMiddleware,
  metricsHandler,
  pingDatabase,
  requestContext,
  type HttpMetrics,
  type Knex,
  type Logger,
} from '@crud-master/common';
import type { InventoryConfig } from './config';
import { frontDoor, type FrontDoorDeps } from './front-door';
import { MoviesRepository } from './movies/repository';
import { createMoviesRouter } from './movies/router';
import { searchBounds } from './movies/search-bounds';

export interface InventoryDeps {
  db: Knex;
  config: Pick<InventoryConfig, 'bodyLimit'> & Partial<Pick<InventoryConfig, 'unindexedSearchMaxRows' | 'listDeadlineMs'>>;
  logger: Logger;
  /** Where request counts and latencies go; a fresh registry when not given. */
  metrics?: HttpMetrics;
}

/**
 * The inventory's Koa app, whose request handler (`callback()`, which `listen()` uses too) is the
 * front door (front-door.ts): `GET /api/movies/<id>` in its common form is answered there, the
 * rest by the Koa stack. `stackCallback()` is the Koa stack alone.
 */
export class InventoryApp extends Koa {
  constructor(private readonly byId: FrontDoorDeps) {
    super();
  }

  override callback(): ReturnType<Koa['callback']> {
    return frontDoor(this.byId, this.stackCallback() as http.RequestListener) as unknown as ReturnType<Koa['callback']>;
  }

  stackCallback(): ReturnType<Koa['callback']> {
    return super.callback();
  }
}

/** Builds the inventory's app. It never listens: `main.ts` does, tests use `app.callback()`. */
export function createApp({ db, config, logger, metrics = createHttpMetrics({ service: 'inventory-app' }) }: InventoryDeps): InventoryApp {
  const repository = new MoviesRepository(db);
  const app = new InventoryApp({ movies: repository, logger, metrics });
  app.silent = true; // every error is written and logged by errorMiddleware

  const movies = createMoviesRouter({
    movies: repository,
    bodyLimit: config.bodyLimit,
    logger,
    ...(config.unindexedSearchMaxRows !== undefined ? { checkSearch: searchBounds({ db, maxUnindexedRows: config.unindexedSearchMaxRows }) } : {}),
    ...(config.listDeadlineMs !== undefined ? { streamDeadlineMs: config.listDeadlineMs } : {}),
  });
  const ops = new Router();
  ops.get('/health', healthHandler('inventory-app', { database: () => pingDatabase(db) }, { logger }));
  ops.get('/metrics', metricsHandler(metrics.registry));

  app.use(requestContext(logger));
  app.use(httpMetricsMiddleware(metrics));
  app.use(errorMiddleware(logger));
  // Bounded and unambiguous requests only, before any routing or proxying (request-bounds.ts).
  app.use(boundRequestTarget());
  app.use(canonicalPathOnly());
  // The movie routes first: they take nearly every request, which then never walks the ops router.
  app.use(movies.routes()).use(movies.allowedMethods());
  app.use(ops.routes()).use(ops.allowedMethods());
  return app;
}
