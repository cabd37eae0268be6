/*
 * The order an API client posts and the worker stores: one schema for both, so that a body the
 * gateway accepts (200) is never one the worker dead-letters.
 */
import { z } from 'zod';
import { formatIssues } from '@crud-master/common';

/** `user_id` and `number_of_items` are PostgreSQL `integer` columns. */
export const ORDER_INT_MAX = 2_147_483_647;
/** `total_amount` is `numeric(12,2)`: at most 10 digits before the point and 2 after. */
const AMOUNT = /^(0|[1-9][0-9]{0,9})(\.[0-9]{1,2})?$/;
const DIGITS = /^[0-9]{1,10}$/;

/** An order after validation: integers as numbers, the amount as an exact decimal string. */
export interface OrderInput {
  user_id: number;
  number_of_items: number;
  total_amount: string;
}

const positiveInteger = z.unknown().transform((value, ctx): number => {
  if (value === undefined) {
    ctx.addIssue({ code: 'custom', message: 'is required' });
    return z.NEVER;
  }
  let n: number | undefined;
  if (typeof value === 'number' && Number.isInteger(value)) n = value;
  else if (typeof value === 'string' && DIGITS.test(value)) n = Number(value);
  if (n === undefined || n < 1 || n > ORDER_INT_MAX) {
    ctx.addIssue({
      code: 'custom',
      message: `must be a positive integer (at most ${ORDER_INT_MAX}), as a number or a numeric string`,
    });
    return z.NEVER;
  }
  return n;
});

const amount = z.unknown().transform((value, ctx): string => {
  if (value === undefined) {
    ctx.addIssue({ code: 'custom', message: 'is required' });
    return z.NEVER;
  }
  // A JSON number is checked through its shortest decimal form, so 19.99 passes and
  // 0.1 + 0.2 (0.30000000000000004) does not: money never goes through a lossy float here.
  const text = typeof value === 'number' && Number.isFinite(value) ? String(value) : value;
  if (typeof text !== 'string' || !AMOUNT.test(text)) {
    ctx.addIssue({
      code: 'custom',
      message: 'must be a non-negative amount below 10000000000 with at most 2 decimals, as a number or a numeric string',
    });
    return z.NEVER;
  }
  return text;
});

export const orderSchema = z.strictObject(
  { user_id: positiveInteger, number_of_items: positiveInteger, total_amount: amount },
  { error: (issue) => (issue.code === 'invalid_type' ? 'the order must be a JSON object' : undefined) },
);

export type ParsedOrder = { ok: true; order: OrderInput } | { ok: false; problem: string };

/** Validates an untrusted order; `problem` names every issue in one sentence. */
export function parseOrder(input: unknown): ParsedOrder {
  const result = orderSchema.safeParse(input);
  if (result.success) return { ok: true, order: result.data };
  return { ok: false, problem: formatIssues(result.error) };
}
