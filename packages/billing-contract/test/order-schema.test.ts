import assert from 'node:assert/strict';
import { orderFingerprint, orderSchema, parseOrder, parseOrderText } from '../src/order-schema';

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

describe('billing order schema on the text the client sent (lossless numbers)', () => {
  // [body text, accepted as] or [body text, refused]: numbers a double would round are judged exactly.
  const cases: Array<[string, string | undefined]> = [
    ['{"user_id":3,"number_of_items":5,"total_amount":180}', '180'],
    ['{"user_id":3,"number_of_items":5,"total_amount":19.990}', '19.99'],
    ['{"user_id":3.0,"number_of_items":5e0,"total_amount":1.8e2}', '180'],
    ['{"user_id":3,"number_of_items":5,"total_amount":0.1000000000000000000001}', undefined],
    ['{"user_id":3,"number_of_items":5,"total_amount":1e-400}', undefined],
    ['{"user_id":3,"number_of_items":5,"total_amount":1e400}', undefined],
    ['{"user_id":3,"number_of_items":5,"total_amount":9999999999.995}', undefined],
    ['{"user_id":9007199254740993,"number_of_items":5,"total_amount":1}', undefined],
    ['{"user_id":2147483647.0000000000000001,"number_of_items":5,"total_amount":1}', undefined],
    ['{"user_id":1e999999999,"number_of_items":5,"total_amount":1}', undefined],
    ['{"user_id":-0,"number_of_items":5,"total_amount":-0}', undefined],
    ['{"user_id":1,"number_of_items":5,"total_amount":-0.00}', '0'],
  ];
  for (const [text, amount] of cases) {
    it(`${amount === undefined ? 'refuses' : 'accepts'} ${text}`, () => {
      const check = parseOrder(parseOrderText(text));
      if (amount === undefined) assert.equal(check.ok, false, JSON.stringify(check));
      else assert.equal(check.ok && check.order.total_amount, amount, JSON.stringify(check));
    });
  }

  it('refuses a key given twice with different values as invalid JSON', () => {
    assert.throws(() => parseOrderText('{"user_id":1,"user_id":2,"number_of_items":1,"total_amount":1}'), /Duplicate key/);
  });

  it('gives one fingerprint to one order however its numbers are written', () => {
    const fingerprint = (text: string) => {
      const check = parseOrder(parseOrderText(text));
      assert.ok(check.ok);
      return orderFingerprint(check.order);
    };
    const same = ['{"user_id":"3","number_of_items":"5","total_amount":"180"}', '{"user_id":3,"number_of_items":5.0,"total_amount":180.00}', '{"user_id":3,"number_of_items":5,"total_amount":"180.00"}'];
    assert.equal(new Set(same.map(fingerprint)).size, 1);
    assert.notEqual(fingerprint(same[0] as string), fingerprint('{"user_id":3,"number_of_items":5,"total_amount":180.01}'));
  });
});

describe('billing order schema: the quick check of the common order agrees with zod', () => {
  const inputs: unknown[] = [
    base,
    { total_amount: '180', user_id: 3, number_of_items: 5 },
    { ...base, total_amount: 19.99 },
    { ...base, total_amount: 0.1 + 0.2 },
    { ...base, user_id: 0 },
    { ...base, extra: 1 },
    { user_id: '3', number_of_items: '5', coupon: '180' },
    { user_id: '3', number_of_items: '5', total_amount: undefined },
    Object.assign(Object.create(null) as object, base),
    Object.assign(Object.create({ total_amount: '1' }) as object, { user_id: '3', number_of_items: '5' }),
    [base],
    null,
    ...['{"user_id":3.0,"number_of_items":5e0,"total_amount":1.8e2}', '{"user_id":1,"number_of_items":5,"total_amount":-0.00}', '{"__proto__":1,"user_id":1,"number_of_items":1}'].map(
      (text) => parseOrderText(text),
    ),
  ];
  for (const [i, input] of inputs.entries()) {
    it(`answers input ${i} as orderSchema does`, () => {
      const zod = orderSchema.safeParse(input);
      const result = parseOrder(input);
      assert.equal(result.ok, zod.success);
      if (result.ok && zod.success) assert.deepEqual(result.order, zod.data);
    });
  }
});
