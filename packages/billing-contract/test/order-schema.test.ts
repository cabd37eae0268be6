import assert from 'node:assert/strict';
import { parseOrder } from '../src/order-schema';

const base = { user_id: '3', number_of_items: '5', total_amount: '180' };

describe('billing-app order schema', () => {
  const accepted: Array<[string, unknown, { user_id: number; number_of_items: number; total_amount: string }]> = [
    ['the contract example (strings)', base, { user_id: 3, number_of_items: 5, total_amount: '180' }],
    ['numbers', { user_id: 3, number_of_items: 5, total_amount: 180 }, { user_id: 3, number_of_items: 5, total_amount: '180' }],
    ['a decimal amount as a number', { ...base, total_amount: 19.99 }, { user_id: 3, number_of_items: 5, total_amount: '19.99' }],
    ['a decimal amount as a string', { ...base, total_amount: '0.5' }, { user_id: 3, number_of_items: 5, total_amount: '0.5' }],
    ['a zero amount', { ...base, total_amount: 0 }, { user_id: 3, number_of_items: 5, total_amount: '0' }],
    ['the largest integer column value', { ...base, user_id: '2147483647' }, { user_id: 2147483647, number_of_items: 5, total_amount: '180' }],
    ['the largest amount', { ...base, total_amount: '9999999999.99' }, { user_id: 3, number_of_items: 5, total_amount: '9999999999.99' }],
  ];
  for (const [what, input, expected] of accepted) {
    it(`accepts ${what}`, () => {
      assert.deepEqual(parseOrder(input), { ok: true, order: expected });
    });
  }

  const refused: Array<[string, unknown, RegExp]> = [
    ['a missing field', { user_id: '3', total_amount: '1' }, /number_of_items: is required/],
    ['an unknown field', { ...base, coupon: 'X' }, /coupon: unknown field/],
    ['user_id zero', { ...base, user_id: 0 }, /user_id: must be a positive integer/],
    ['a negative count', { ...base, number_of_items: '-1' }, /number_of_items: must be a positive integer/],
    ['a fractional count', { ...base, number_of_items: 1.5 }, /number_of_items: must be a positive integer/],
    ['a non-numeric string', { ...base, user_id: 'abc' }, /user_id: must be a positive integer/],
    ['an integer too large for the column', { ...base, user_id: 2147483648 }, /user_id: must be a positive integer/],
    ['a boolean', { ...base, user_id: true }, /user_id/],
    ['null', { ...base, total_amount: null }, /total_amount: must be a non-negative amount/],
    ['a negative amount', { ...base, total_amount: '-1' }, /total_amount/],
    ['three decimals', { ...base, total_amount: '1.005' }, /total_amount/],
    ['a float artefact', { ...base, total_amount: 0.1 + 0.2 }, /total_amount/],
    ['an amount too large for numeric(12,2)', { ...base, total_amount: 1e10 }, /total_amount/],
    ['an empty string', { ...base, total_amount: '' }, /total_amount/],
    ['an array', [base], /must be a JSON object/],
    ['a string', 'order', /must be a JSON object/],
    ['nothing', undefined, /must be a JSON object/],
  ];
  for (const [what, input, problem] of refused) {
    it(`refuses ${what}`, () => {
      const result = parseOrder(input);
      assert.equal(result.ok, false);
      if (!result.ok) assert.match(result.problem, problem);
    });
  }
});
