/**
 * JSON without rounding. `JSON.parse` turns every number into a double, so `0.1000000000000000000001`
 * arrives as 0.1 and `9007199254740993` as 9007199254740992 before any validation sees them, and a
 * duplicated key silently keeps its last value. Request bodies are parsed here instead
 * (lossless-json): a number stays the text the client sent (a `LosslessNumber`), and a key given
 * twice with different values is refused. Validation then decides on the exact text, and the
 * same text is what goes on (`stringifyJson` writes numbers back as they came).
 */
import { isLosslessNumber, parse, stringify, type LosslessNumber } from 'lossless-json';
import { AppError } from './errors';

export { isLosslessNumber, type LosslessNumber };

export class InvalidJsonError extends AppError {
  constructor(message = 'Request body is not valid JSON') {
    super(400, 'invalid_json', message);
  }
}

/** Parses JSON text keeping every number's text; throws InvalidJsonError (400) on anything else. */
export function parseJsonText(text: string): unknown {
  try {
    return parse(text);
  } catch (err) {
    // Too deeply nested input overflows the parser's stack: still just bad input.
    const detail = err instanceof SyntaxError && /^Duplicate key/.test(err.message) ? `: ${err.message.replace(/ at position \d+$/, '')}` : '';
    throw new InvalidJsonError(`Request body is not valid JSON${detail}`);
  }
}

/** JSON text of a value from parseJsonText: numbers written exactly as they were received. */
export function stringifyJson(value: unknown): string {
  return stringify(value) ?? 'null';
}

/** A JSON number's exact value: `digits` × 10^-`scale`, digits without leading zeros ('' for zero). */
export interface ExactDecimal {
  negative: boolean;
  digits: string;
  scale: number;
}

const JSON_NUMBER = /^(-?)(0|[1-9][0-9]*)(?:\.([0-9]+))?(?:[eE]([+-]?[0-9]+))?$/;

/**
 * The exact value of a JSON number text, normalised (no leading zeros in `digits`, no trailing
 * zeros behind the point), or undefined when the text is not a JSON number. Never builds a
 * string longer than the input: `1e999999999` is read, not expanded.
 */
export function exactDecimal(text: string): ExactDecimal | undefined {
  const m = JSON_NUMBER.exec(text);
  if (!m) return undefined;
  const exponent = Number(m[4] ?? '0');
  if (!Number.isSafeInteger(exponent)) return undefined;
  const fraction = m[3] ?? '';
  let digits = `${m[2]}${fraction}`.replace(/^0+/, '');
  let scale = fraction.length - exponent;
  const trailing = /0*$/.exec(digits)?.[0].length ?? 0;
  digits = digits.slice(0, digits.length - trailing);
  scale -= trailing;
  if (digits === '') return { negative: false, digits: '', scale: 0 };
  return { negative: m[1] === '-', digits, scale };
}

/**
 * Decimal text of an exact value with exactly `decimals` digits behind the point, or undefined
 * when it has more decimals than that or more than `maxWholeDigits` digits before the point.
 */
export function decimalString(value: ExactDecimal, decimals: number, maxWholeDigits: number): string | undefined {
  if (value.scale > decimals || value.digits.length - value.scale > maxWholeDigits) return undefined;
  const padded = value.digits + '0'.repeat(decimals - value.scale);
  const whole = padded.slice(0, padded.length - decimals).replace(/^0+/, '') || '0';
  const fraction = decimals > 0 ? `.${padded.slice(padded.length - decimals).padStart(decimals, '0')}` : '';
  return `${value.negative ? '-' : ''}${whole}${fraction}`;
}
