/**
 * Which characters a movie's text may hold. PostgreSQL cannot store NUL in `text` (a NUL reached
 * it as a 500), and a lone UTF-16 surrogate would be stored as U+FFFD, silently changed; other
 * control characters would end up in logs, terminals and HTML unseen. So:
 * - a title holds no control character at all (C0, DEL, C1: U+0000–U+001F, U+007F–U+009F);
 * - a description may hold tabs and line breaks (U+0009, U+000A, U+000D), no other;
 * - neither holds a lone surrogate (text that is not valid Unicode).
 * A search term follows the title's rule: no stored title can match anything else.
 */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const TITLE_CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const DESCRIPTION_CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/;

export const TITLE_TEXT_RULE = 'must not contain control characters or invalid Unicode';
export const DESCRIPTION_TEXT_RULE = 'must not contain control characters other than tab and line breaks, nor invalid Unicode';

export function isTitleText(text: string): boolean {
  return !TITLE_CONTROL.test(text) && !LONE_SURROGATE.test(text);
}

export function isDescriptionText(text: string): boolean {
  return !DESCRIPTION_CONTROL.test(text) && !LONE_SURROGATE.test(text);
}

/**
 * Whether the trigram index can serve a `title` search: pg_trgm takes trigrams from runs of
 * letters and digits, so a term needs three of them in a row. Any other term (`ab`, `%`, `a b`)
 * can only be answered by reading every title.
 */
export function isIndexableTerm(term: string): boolean {
  return /[\p{L}\p{N}]{3}/u.test(term);
}
