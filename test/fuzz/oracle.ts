/**
 * What the fuzz suite expects, written independently of the services' code: whether an order's
 * JSON text is a valid order (exact decimal arithmetic on the text the client sent, with BigInt),
 * and which characters a movie's title and description may hold.
 */
import { isLosslessNumber, parse } from 'lossless-json';

/** The exact value of a JSON number text as mantissa × 10^-scale, or undefined when it is not one. */
function exact(text: string): { negative: boolean; mantissa: bigint; scale: number } | undefined {
  const m = /^(-?)(0|[1-9][0-9]*)(?:\.([0-9]+))?(?:[eE]([+-]?[0-9]+))?$/.exec(text);
  if (!m) return undefined;
  const exponent = Number(m[4] ?? '0');
  if (Math.abs(exponent) > 100_000) return undefined;
  const frac = m[3] ?? '';
  return { negative: m[1] === '-', mantissa: BigInt(`${m[2]}${frac}`), scale: frac.length - exponent };
}

function integerOf(text: string): bigint | undefined {
  const e = exact(text);
  if (!e) return undefined;
  if (e.scale <= 0) return (e.negative ? -1n : 1n) * e.mantissa * 10n ** BigInt(-e.scale);
  const unit = 10n ** BigInt(e.scale);
  if (e.mantissa % unit !== 0n) return undefined;
  return (e.negative ? -1n : 1n) * (e.mantissa / unit);
}

const INT_MAX = 2147483647n;

function validInteger(value: unknown): boolean {
  if (typeof value === 'string') return /^[0-9]{1,10}$/.test(value) && BigInt(value) >= 1n && BigInt(value) <= INT_MAX;
  if (isLosslessNumber(value)) {
    const n = integerOf(value.value);
    return n !== undefined && n >= 1n && n <= INT_MAX;
  }
  return false;
}

function validAmount(value: unknown): boolean {
  if (typeof value === 'string') return /^(0|[1-9][0-9]{0,9})(\.[0-9]{1,2})?$/.test(value);
  if (!isLosslessNumber(value)) return false;
  const e = exact(value.value);
  if (!e) return false;
  // In cents: an integer number of cents, from 0 to below 10^12 cents.
  let cents: bigint;
  if (e.scale <= 2) cents = e.mantissa * 10n ** BigInt(2 - e.scale);
  else {
    const unit = 10n ** BigInt(e.scale - 2);
    if (e.mantissa % unit !== 0n) return false;
    cents = e.mantissa / unit;
  }
  if (cents === 0n) return true;
  return !e.negative && cents < 10n ** 12n;
}

/** Whether the gateway must take this order text (200) rather than refuse it (400). */
export function isValidOrderText(text: string): boolean {
  let body: unknown;
  try {
    body = parse(text); // duplicate keys throw: an order with two user_ids is not one order
  } catch {
    return false;
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return false;
  const o = body as Record<string, unknown>;
  const keys = Object.keys(o).sort().join(',');
  if (keys !== 'number_of_items,total_amount,user_id') return false;
  return validInteger(o.user_id) && validInteger(o.number_of_items) && validAmount(o.total_amount);
}

/** Characters no stored title may hold: every control character (C0, DEL, C1) and lone surrogates. */
export const TITLE_FORBIDDEN = /[\u0000-\u001f\u007f-\u009f]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
/** Descriptions may hold tabs and line breaks, nothing else of the above. */
export const DESCRIPTION_FORBIDDEN = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * One string per distinct valid order (user, items, amount in cents), however its numbers are
 * written; undefined for an invalid order. Two bodies under one Idempotency-Key are one order
 * exactly when these are equal.
 */
export function orderIdentity(text: string): string | undefined {
  if (!isValidOrderText(text)) return undefined;
  const o = parse(text) as Record<string, unknown>;
  const int = (v: unknown): string => (typeof v === 'string' ? String(BigInt(v)) : String(integerOf((v as { value: string }).value)));
  const amount = o.total_amount;
  let cents: bigint;
  if (typeof amount === 'string') {
    const [whole = '0', frac = ''] = amount.split('.');
    cents = BigInt(whole) * 100n + BigInt(frac.padEnd(2, '0') || '0');
  } else {
    const e = exact((amount as { value: string }).value);
    if (!e) return undefined;
    cents = e.scale <= 2 ? e.mantissa * 10n ** BigInt(2 - e.scale) : e.mantissa / 10n ** BigInt(e.scale - 2);
  }
  return `${int(o.user_id)}|${int(o.number_of_items)}|${cents}`;
}
