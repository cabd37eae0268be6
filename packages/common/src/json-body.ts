import bodyParser from 'koa-bodyparser';
import type { Context, Middleware, Next } from 'koa';
import { UnsupportedMediaTypeError } from './errors';

export interface JsonBodyOptions {
  /** Largest accepted body, e.g. '16kb'; larger bodies get 413. */
  limit: string;
}

/** A request carries a body when it is chunked or declares a non-zero length (RFC 9112 §6.3). */
function hasBody(ctx: Context): boolean {
  if (ctx.get('Transfer-Encoding') !== '') return true;
  const length = Number(ctx.get('Content-Length') || '0');
  return Number.isFinite(length) && length > 0;
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
    // Not strict: `null` or `"text"` parse, and validation then says the body must be an object.
    strict: false,
    onerror: (err: Error) => {
      throw err;
    },
  });
  return async function parseJson(ctx: Context, next: Next): Promise<void> {
    if (!hasBody(ctx)) {
      ctx.request.body = undefined;
      return next();
    }
    if (!ctx.is('application/json', '+json')) throw new UnsupportedMediaTypeError();
    return parse(ctx, next);
  };
}

/** The body `jsonBody` parsed, as untrusted input for validation. */
export function requestBody(ctx: Context): unknown {
  return (ctx.request as { body?: unknown }).body;
}
