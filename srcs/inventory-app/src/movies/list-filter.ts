/** The filter of a movie list and its SQL condition. */
export interface ListFilter {
  /** Keep titles containing this, case-insensitively; absent or empty keeps every movie. */
  title?: string | undefined;
}

/** `%`, `_` and the escape character itself are literal in a title search, not wildcards. */
export function likePattern(fragment: string): string {
  return `%${fragment.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/** The SQL condition of a filter, using `?` placeholders, and its bindings. */
export function filterSql(filter: ListFilter): { where: string; bindings: string[] } {
  if (filter.title === undefined || filter.title === '') return { where: 'true', bindings: [] };
  return { where: `title ILIKE ? ESCAPE '\\'`, bindings: [likePattern(filter.title)] };
}
