import bodyParser from 'koa-bodyparser';
import type { Context, Middleware, Next } from 'koa';
import { UnsupportedMediaTypeError } from './errors';

export interface JsonBodyOptions {
  /** Largest accepted body, e.g. '16kb'; larger bodies get 413. */
  limit: string;
}

/**
 * Parses a JSON request body. A body of another media type is refused with 415 before anything
 * reads it; malformed JSON surfaces as a 400 `invalid_json`, an oversized body as 413 (both
 * raised by co-body and written by the error middleware). A request with no body at all leaves
 * `ctx.request.body` undefined, so validation reports the missing fields.
 */
export function jsonBody(options: JsonBodyOptions): Middleware {
  const parse = bodyParser({
    enableTypes: ['json'],
    jsonLimit: options.limit,
    strict: true,
    onerror: (err: Error) => {
      throw err;
    },
  });
  return async function parseJson(ctx: Context, next: Next): Promise<void> {
    // type-is: null when the request has no body, false when it is not JSON.
    const isJson = ctx.is('application/json', '+json');
    if (isJson === false) throw new UnsupportedMediaTypeError();
    if (isJson === null) {
      ctx.request.body = undefined;
      return next();
    }
    return parse(ctx, next);
  };
}

/** The body `jsonBody` parsed, as untrusted input for validation. */
export function requestBody(ctx: Context): unknown {
  return (ctx.request as { body?: unknown }).body;
}
