import Koa from 'koa';
import Router from '@koa/router';
import { errorMiddleware, healthHandler, pingDatabase, type Knex, type Logger } from '@crud-master/common';
import type { InventoryConfig } from './config';
import { MoviesRepository } from './movies/repository';
import { createMoviesRouter } from './movies/router';

export interface InventoryDeps {
  db: Knex;
  config: Pick<InventoryConfig, 'bodyLimit'>;
  logger: Logger;
}

/** Builds the inventory's Koa app. It never listens: `main.ts` does, tests use `app.callback()`. */
export function createApp({ db, config, logger }: InventoryDeps): Koa {
  const app = new Koa();
  app.silent = true; // every error is written and logged by errorMiddleware

  const movies = createMoviesRouter({ movies: new MoviesRepository(db), bodyLimit: config.bodyLimit });
  const health = new Router();
  health.get('/health', healthHandler('inventory-app', { database: () => pingDatabase(db) }));

  app.use(errorMiddleware(logger));
  app.use(health.routes()).use(health.allowedMethods());
  app.use(movies.routes()).use(movies.allowedMethods());
  return app;
}
