/*
 * The order an API client posts and the worker stores: one schema for both, so that a body the
 * gateway accepts (200) is never one the worker dead-letters.
 */
import { z } from 'zod';
import { decimalString, exactDecimal, formatIssues, isLosslessNumber, parseJsonText } from '@crud-master/common';

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

/** `user_id` or `number_of_items` as a number, or undefined when it is not a positive integer column value. */
function positiveIntegerOf(value: unknown): number | undefined {
  let n: number | undefined;
  if (typeof value === 'number' && Number.isInteger(value)) n = value;
  else if (typeof value === 'string' && DIGITS.test(value)) n = Number(value);
  else if (isLosslessNumber(value)) n = exactInteger(value.value);
  return n === undefined || n < 1 || n > ORDER_INT_MAX ? undefined : n;
}

/**
 * `total_amount` as an exact decimal string, or undefined. A JSON number from parseOrderText is
 * checked on the text the client sent, exactly: 0.1000000000000000000001 has more than 2
 * decimals even though a double rounds it to 0.1. A plain JavaScript number (a caller's own
 * object) is checked through its shortest decimal form, so 19.99 passes and 0.1 + 0.2
 * (0.30000000000000004) does not.
 */
function amountOf(value: unknown): string | undefined {
  const text = isLosslessNumber(value) ? exactAmount(value.value) : typeof value === 'number' && Number.isFinite(value) ? String(value) : value;
  return typeof text === 'string' && AMOUNT.test(text) ? text : undefined;
}

/** A zod field for one of the checks above, with its message. */
function field<T>(check: (value: unknown) => T | undefined, message: string) {
  return z.unknown().transform((value, ctx): T => {
    const result = value === undefined ? undefined : check(value);
    if (result === undefined) {
      ctx.addIssue({ code: 'custom', message: value === undefined ? 'is required' : message });
      return z.NEVER;
    }
    return result;
  });
}

const positiveInteger = field(positiveIntegerOf, `must be a positive integer (at most ${ORDER_INT_MAX}), as a number or a numeric string`);
const amount = field(amountOf, 'must be a non-negative amount below 10000000000 with at most 2 decimals, as a number or a numeric string');

/** The integer a JSON number text denotes exactly (`5`, `5.0`, `5e0`), if it is one of at most 10 digits. */
function exactInteger(text: string): number | undefined {
  const exact = exactDecimal(text);
  const whole = exact && !exact.negative ? decimalString(exact, 0, 10) : undefined;
  return whole === undefined ? undefined : Number(whole);
}

/** The shortest decimal text of a JSON number text with at most 2 decimals (`19.990` -> `19.99`), or undefined. */
function exactAmount(text: string): string | undefined {
  const exact = exactDecimal(text);
  if (!exact || exact.negative) return undefined;
  return decimalString(exact, Math.max(exact.scale, 0), 10);
}

export const orderSchema = z.strictObject(
  { user_id: positiveInteger, number_of_items: positiveInteger, total_amount: amount },
  { error: (issue) => (issue.code === 'invalid_type' ? 'the order must be a JSON object' : undefined) },
);

export type ParsedOrder = { ok: true; order: OrderInput } | { ok: false; problem: string };

/**
 * The common case without zod: a plain object of exactly the three fields, each valid. Anything
 * else (undefined) goes to orderSchema, which alone words the problems; what this accepts,
 * orderSchema accepts alike, with the same values (the same checks above).
 */
function validOrder(input: unknown): OrderInput | undefined {
  if (typeof input !== 'object' || input === null || Object.getPrototypeOf(input) !== Object.prototype) return undefined;
  const keys = Object.keys(input);
  if (keys.length !== 3) return undefined;
  const { user_id, number_of_items, total_amount } = input as Record<string, unknown>;
  const userId = positiveIntegerOf(user_id);
  const items = positiveIntegerOf(number_of_items);
  const amount = amountOf(total_amount);
  // Three keys, and each of the three fields defined: no other key.
  if (userId === undefined || items === undefined || amount === undefined) return undefined;
  return { user_id: userId, number_of_items: items, total_amount: amount };
}

/** Validates an untrusted order; `problem` names every issue in one sentence. */
export function parseOrder(input: unknown): ParsedOrder {
  const order = validOrder(input);
  if (order) return { ok: true, order };
  const result = orderSchema.safeParse(input);
  if (result.success) return { ok: true, order: result.data };
  return { ok: false, problem: formatIssues(result.error) };
}

/**
 * Parses an order's JSON text without rounding its numbers (see common's lossless-json): what
 * the gateway does with a request body and the worker with a message, so both judge the same text.
 * Throws InvalidJsonError on text that is not JSON or repeats a key.
 */
export function parseOrderText(text: string): unknown {
  return parseJsonText(text);
}

/**
 * One string per distinct order, whatever way its numbers were written: `"3"`, `3` and `3.0` are
 * one user, `180`, `"180.00"` and `1.8e2` one amount. Two bodies sent under one Idempotency-Key
 * are the same order exactly when their fingerprints are equal.
 */
export function orderFingerprint(order: OrderInput): string {
  const exact = exactDecimal(order.total_amount);
  const cents = exact ? decimalString(exact, 2, 10) : order.total_amount;
  return `${order.user_id}|${order.number_of_items}|${cents}`;
}
