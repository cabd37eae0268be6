import { z } from 'zod';
import { formatIssues, ValidationError } from '@crud-master/common';
import { DESCRIPTION_TEXT_RULE, TITLE_TEXT_RULE, isDescriptionText, isTitleText } from './text-rules';

export const TITLE_MAX = 255;
export const DESCRIPTION_MAX = 5000;
/** `movies.id` is a PostgreSQL `integer`: anything larger can name no row. */
export const ID_MAX = 2_147_483_647;

const title = z
  .string({ error: (issue) => (issue.input === undefined ? 'is required' : 'must be a string') })
  .trim()
  .min(1, 'must not be empty')
  .max(TITLE_MAX, `must be at most ${TITLE_MAX} characters`)
  .refine(isTitleText, TITLE_TEXT_RULE);
const description = z
  .string({ error: 'must be a string' })
  .max(DESCRIPTION_MAX, `must be at most ${DESCRIPTION_MAX} characters`)
  .refine(isDescriptionText, DESCRIPTION_TEXT_RULE);

const bodyError = { error: 'request body must be a JSON object' };

export const createMovieSchema = z.strictObject({ title, description: description.default('') }, bodyError);

export const updateMovieSchema = z
  .strictObject({ title: title.optional(), description: description.optional() }, bodyError)
  .refine((patch) => patch.title !== undefined || patch.description !== undefined, {
    message: 'give at least one of title, description',
  });

/** Largest page `limit` accepts. */
export const LIMIT_MAX = 1000;
/** Page size when only `offset` is given. */
export const LIMIT_DEFAULT = 100;
/** No table of `integer` ids holds more rows than this. */
export const OFFSET_MAX = ID_MAX;

/** A query parameter given once; `?a=1&a=2` arrives as an array and is refused. */
const queryString = z.string({ error: (issue) => (Array.isArray(issue.input) ? 'must be given once' : 'must be a string') });

/** A whole number in decimal digits within [min, max], as a query parameter. */
function queryInteger(min: number, max: number) {
  const message = `must be a whole number from ${min} to ${max}`;
  return queryString
    .regex(/^[0-9]+$/, message)
    .transform(Number)
    .refine((n) => n >= min && n <= max, message);
}

/**
 * `GET /api/movies`: `title` filters; `limit` and/or `offset` ask for one page. Other parameters
 * are ignored (and kept in the Link header's URLs).
 */
export const listQuerySchema = z.object({
  title: queryString.max(TITLE_MAX, `must be at most ${TITLE_MAX} characters`).refine(isTitleText, TITLE_TEXT_RULE).optional(),
  limit: queryInteger(1, LIMIT_MAX).optional(),
  offset: queryInteger(0, OFFSET_MAX).optional(),
});

/** Validates `input` or throws a 400 ValidationError naming every problem. */
export function validate<S extends z.ZodType>(schema: S, input: unknown): z.infer<S> {
  const result = schema.safeParse(input);
  if (!result.success) throw new ValidationError(formatIssues(result.error));
  return result.data;
}

/** `:id` must be a positive integer written in plain decimal digits. */
export function parseId(raw: string): number {
  if (!/^[1-9][0-9]*$/.test(raw)) {
    throw new ValidationError(`id: must be a positive integer, got "${raw.slice(0, 40)}"`);
  }
  return raw.length > 10 ? Number.MAX_SAFE_INTEGER : Number(raw);
}
