import getRawBody from 'raw-body';
import type { Context, Middleware, Next } from 'koa';
import { UnsupportedMediaTypeError } from './errors';
import { InvalidJsonError, parseJsonText } from './lossless-json';

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
 * The one media type a body may have: `application/json`, in UTF-8 (RFC 8259 §8.1: JSON between
 * systems is UTF-8). `charset=utf-8` may be said; any other charset, another type (`+json`
 * suffixes such as `application/merge-patch+json` included: their semantics are not ours), or
 * none at all is refused before a byte is read.
 */
function checkMediaType(ctx: Context): void {
  const header = ctx.get('Content-Type');
  const [type = '', ...params] = header.split(';').map((part) => part.trim());
  if (type.toLowerCase() !== 'application/json') {
    throw new UnsupportedMediaTypeError(
      header === '' ? 'A request body needs Content-Type: application/json' : `Content-Type must be application/json, not ${header.slice(0, 100)}`,
    );
  }
  for (const param of params) {
    const [name = '', value = ''] = param.split('=').map((part) => part.trim());
    if (name.toLowerCase() === 'charset' && value.replace(/^"(.*)"$/, '$1').toLowerCase() !== 'utf-8') {
      throw new UnsupportedMediaTypeError('JSON bodies must be UTF-8: send charset=utf-8 or no charset');
    }
  }
}

/**
 * Compressed bodies are refused (415, RFC 9110 §15.5.16), not inflated: at 16 kB there is nothing
 * to gain, and inflating would let a small request expand into a large one.
 */
function checkEncoding(ctx: Context): void {
  const encoding = ctx.get('Content-Encoding').trim().toLowerCase();
  if (encoding !== '' && encoding !== 'identity') {
    throw new UnsupportedMediaTypeError(`Content-Encoding ${encoding.slice(0, 40)} is not accepted: send the JSON body uncompressed`);
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/**
 * Parses a JSON request body, losslessly: numbers stay the text the client sent (see
 * lossless-json.ts) and a key given twice with different values is refused. Bad media type or
 * encoding: 415 before anything is read; over the limit: 413; not UTF-8 or not JSON: 400
 * `invalid_json`. A request with no body at all leaves `ctx.request.body` undefined, so
 * validation reports the missing fields.
 */
export function jsonBody(options: JsonBodyOptions): Middleware {
  return async function parseJson(ctx: Context, next: Next): Promise<void> {
    if (!hasBody(ctx)) {
      (ctx.request as { body?: unknown }).body = undefined;
      return next();
    }
    checkMediaType(ctx);
    checkEncoding(ctx);
    const length = ctx.get('Content-Length');
    let raw: Buffer;
    try {
      raw = await getRawBody(ctx.req, { limit: options.limit, ...(length ? { length } : {}) });
    } catch (err) {
      // raw-body pauses the request where it stopped (past the limit). Unread, the rest of the
      // body would stay on a keep-alive connection and the next request on it (the gateway's
      // pooled socket) would never be read: discard it, as Node does for a body nobody read.
      ctx.req.resume();
      // 413 (entity.too.large) goes on as it is; a body that ended early or ran long is bad input.
      if ((err as { status?: unknown }).status === 400) throw new InvalidJsonError('Request body does not match its Content-Length');
      throw err;
    }
    let text: string;
    try {
      text = utf8.decode(raw);
    } catch {
      throw new InvalidJsonError('Request body is not valid UTF-8');
    }
    (ctx.request as { body?: unknown }).body = parseJsonText(text);
    return next();
  };
}

/** The body `jsonBody` parsed, as untrusted input for validation. */
export function requestBody(ctx: Context): unknown {
  return (ctx.request as { body?: unknown }).body;
}
