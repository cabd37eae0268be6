/** Builds the `Link` header of a page: first, prev, next and last, as relative URLs. */
export interface PageLinks {
  /** Path as the client asked for it, e.g. `/api/movies/`. */
  path: string;
  /** The request's query string, without the `?`; only `title` is kept from it. */
  querystring: string;
  limit: number;
  offset: number;
  total: number;
}

function pageUrl(path: string, params: URLSearchParams, limit: number, offset: number): string {
  const query = new URLSearchParams(params);
  query.set('limit', String(limit));
  query.set('offset', String(offset));
  return `${path}?${query.toString()}`;
}

/**
 * RFC 8288 web links: `rel="next"` while rows remain after this page, `rel="prev"` unless this
 * is the first page, and `first`/`last` always (last is the first page when there are none).
 */
export function linkHeader({ path, querystring, limit, offset, total }: PageLinks): string {
  // Only the filter is echoed (at most 255 characters): other parameters mean nothing here, and
  // echoed four times they turned a long query string into a response header larger than the
  // gateway's HTTP parser takes (a 502).
  const params = new URLSearchParams();
  const title = new URLSearchParams(querystring).get('title');
  if (title !== null) params.set('title', title);
  const lastOffset = total === 0 ? 0 : Math.floor((total - 1) / limit) * limit;
  const links: string[] = [`<${pageUrl(path, params, limit, 0)}>; rel="first"`];
  if (offset > 0) {
    const prev = Math.max(0, Math.min(offset - limit, lastOffset));
    links.push(`<${pageUrl(path, params, limit, prev)}>; rel="prev"`);
  }
  if (offset + limit < total) links.push(`<${pageUrl(path, params, limit, offset + limit)}>; rel="next"`);
  links.push(`<${pageUrl(path, params, limit, lastOffset)}>; rel="last"`);
  return links.join(', ');
}
