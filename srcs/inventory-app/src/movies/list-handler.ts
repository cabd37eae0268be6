import type { Context } from 'koa';
import { ServiceUnavailableError, type Logger } from '@crud-master/common';
import { answerConditionally, listTag } from './conditional';
import { logStreamFailure, startCursor } from './cursor-stream';
import type { ListFilter } from './list-filter';
import { moviesJson } from './list-stream';
import { linkHeader } from './paging';
import type { MoviesRepository } from './repository';
import { LIMIT_DEFAULT, listQuerySchema, validate } from './schemas';
import type { SearchCheck } from './search-bounds';
import type { StreamSlots } from './stream-slots';

export interface ListDeps {
  movies: MoviesRepository;
  logger: Logger | undefined;
  slots: StreamSlots;
  stallTimeoutMs: number;
  streamAbove: number;
  /** A streamed full list must be sent within this long, however the client reads (ms). */
  streamDeadlineMs: number;
  /** Refuses title searches too costly for the table's size (search-bounds.ts); none when absent. */
  checkSearch: SearchCheck | undefined;
}

/**
 * `GET /api/movies`: with `limit`/`offset` one page with `Link` and `X-Total-Count`; without them
 * every movie, as the contract says, streamed from a cursor when there are more than
 * `streamAbove`. Each answer carries the list's ETag; `If-None-Match` gets a 304.
 */
export async function listMovies(ctx: Context, deps: ListDeps): Promise<void> {
  const query = validate(listQuerySchema, ctx.query);
  await deps.checkSearch?.(query.title);
  const filter: ListFilter = { title: query.title };
  if (query.limit !== undefined || query.offset !== undefined) {
    await sendPage(ctx, deps, filter, query.limit ?? LIMIT_DEFAULT, query.offset ?? 0);
  } else {
    await sendAll(ctx, deps, filter);
  }
}

/** When the client sent a validator, one row tells whether its copy of any list is current. */
async function listIsFresh(ctx: Context, movies: MoviesRepository): Promise<boolean> {
  return Boolean(ctx.get('If-None-Match')) && answerConditionally(ctx, listTag(await movies.listVersion()));
}

async function sendPage(ctx: Context, { movies }: ListDeps, filter: ListFilter, limit: number, offset: number): Promise<void> {
  if (await listIsFresh(ctx, movies)) return;
  const page = await movies.page(filter, limit, offset);
  if (answerConditionally(ctx, listTag(page.version))) return;
  ctx.set('X-Total-Count', String(page.total));
  ctx.set('Link', linkHeader({ path: ctx.path, querystring: ctx.querystring, limit, offset, total: page.total }));
  ctx.type = 'json';
  ctx.body = `[${moviesJson(page.movies)}]`;
}

/** One query answers most lists whole; only a longer one opens a cursor. */
async function sendAll(ctx: Context, deps: ListDeps, filter: ListFilter): Promise<void> {
  if (await listIsFresh(ctx, deps.movies)) return;
  const head = await deps.movies.head(filter, deps.streamAbove + 1);
  if (answerConditionally(ctx, listTag(head.version))) return;
  ctx.type = 'json';
  if (head.movies.length <= deps.streamAbove) {
    ctx.body = `[${moviesJson(head.movies)}]`;
  } else if (ctx.method === 'HEAD') {
    // The same headers as the streamed GET (no Content-Length), without reading the rows.
    ctx.status = 200;
  } else {
    await sendStream(ctx, deps, filter);
  }
}

/** Streams the list from a cursor, within a stream slot that the stream frees when it closes. */
async function sendStream(ctx: Context, { movies, slots, stallTimeoutMs, streamDeadlineMs, logger }: ListDeps, filter: ListFilter): Promise<void> {
  const release = slots.take();
  if (!release) throw tooManyStreams();
  try {
    const cursor = await startCursor(await movies.openCursor(filter));
    // The cursor's snapshot may be newer than the head query's: it is what gets sent.
    if (answerConditionally(ctx, listTag(cursor.version))) {
      await cursor.close();
      release();
      return;
    }
    const stream = cursor.stream({ stallTimeoutMs, deadlineMs: streamDeadlineMs });
    stream.once('close', release);
    logStreamFailure(stream, logger, { path: ctx.path, query: ctx.querystring });
    ctx.body = stream;
  } catch (err) {
    release();
    throw err;
  }
}

function tooManyStreams(): ServiceUnavailableError {
  return new ServiceUnavailableError(
    'Too many full lists are being sent right now; retry shortly, or ask for pages with limit and offset',
    'busy',
    { 'Retry-After': '1' },
  );
}
