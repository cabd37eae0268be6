import type { Context } from 'koa';

/**
 * HTTP validators and caching headers for the movie resources.
 * https://www.rfc-editor.org/rfc/rfc9110#section-8.8.3 (ETag)
 * https://www.rfc-editor.org/rfc/rfc9110#section-13.1.2 (If-None-Match)
 */

/**
 * Every movie response may be stored, but must be revalidated before each reuse: movies change
 * through this same API (PUT, DELETE), so any max-age would show a client stale data right after
 * its own write, while a revalidation costs one small query and answers 304 without a body.
 */
export const CACHE_CONTROL = 'no-cache';

/**
 * A strong ETag for one movie from its row version (`<epoch>.<xmin>`, see MoviesRepository's
 * getVersioned): the row changes version whenever its content can change, so no hashing of the
 * body is needed. `r1`: bump the digit when the movie's JSON format changes.
 */
export function rowTag(id: number, version: string): string {
  return `"r1.${id}.${version}"`;
}

/**
 * A strong ETag for every list representation at one state of the table (see the
 * movies_version migration). Lists are serialised deterministically (ordered by id, fixed
 * field order), so one table state gives the same bytes for the same URL. `l1`: bump the digit
 * when the list format changes, so that no old tag matches new bytes.
 */
export function listTag(version: string): string {
  return `"l1.${version}"`;
}

const ENTITY_TAG = /(?:W\/)?"([\x21\x23-\x7e\x80-\xff]*)"/g;

/**
 * True when `If-None-Match` matches `etag` by the weak comparison RFC 9110 prescribes for it
 * (`W/"x"` matches `"x"`), or is `*` (the resource exists, since we have a tag for it).
 */
export function ifNoneMatchMatches(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  const value = header.trim();
  if (value === '*') return true;
  const opaque = etag.replace(/^W\//, '');
  for (const match of value.matchAll(ENTITY_TAG)) {
    if (`"${match[1]}"` === opaque) return true;
  }
  return false;
}

/**
 * Sets the validator and caching headers on a GET/HEAD answer; answers 304 (no body) and returns
 * true when the client's copy is current. Other representation headers (Link, X-Total-Count)
 * are left off a 304: the same tag means the same values, which the client already holds.
 */
export function answerConditionally(ctx: Context, etag: string): boolean {
  ctx.set('Cache-Control', CACHE_CONTROL);
  ctx.set('ETag', etag);
  if (!ifNoneMatchMatches(ctx.get('If-None-Match') || undefined, etag)) return false;
  ctx.status = 304;
  return true;
}
