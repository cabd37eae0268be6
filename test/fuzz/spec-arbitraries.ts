/**
 * fast-check arbitraries derived from openapi.yaml's JSON Schemas: for each schema, values that
 * satisfy it (`valid`) and values on or just past its edges, of the wrong type, or with
 * hostile text (`boundary`). The fuzz suite builds requests from them for every operation, so a
 * schema change in the document changes what is generated.
 *
 * JSON bodies are built as values and written with `jsonText`, which writes a `RawJson` verbatim:
 * the only way to send number texts that no JavaScript number can hold (0.1000000000000000000001,
 * 9007199254740993, 1e400) or a duplicated key.
 */
import fc from 'fast-check';

type Json = Record<string, unknown>;

/** A piece of JSON text written as is (numbers beyond a double, duplicate keys, junk). */
export class RawJson {
  constructor(readonly text: string) {}
}

/** JSON text of a value that may hold RawJson pieces. */
export function jsonText(value: unknown): string {
  if (value instanceof RawJson) return value.text;
  if (Array.isArray(value)) return `[${value.map(jsonText).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    return `{${Object.entries(value)
      .map(([k, v]) => `${JSON.stringify(k)}:${jsonText(v)}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Text that trips parsers, databases and logs: controls, NUL, lone surrogates, bidi overrides, wide characters. */
export const hostileText: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    '\u0000',
    'a\u0000b',
    '\u0001\u0002\u001f',
    'line\nbreak',
    'tab\there',
    'cr\rhere',
    '\u007f',
    '\u0085next',
    '\u009b',
    '\ud800',
    'x\udfffy',
    '\u202eevil',
    '\ufeffbom',
    '\u200b',
    '\ufffe\uffff',
    '🎬🍿',
    '%',
    '_',
    '\\',
    "'; DROP TABLE movies; --",
    '${jndi:ldap://x}',
    '<script>alert(1)</script>',
    ' ',
    '   padded   ',
  ),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: fc.integer({ min: 0, max: 0x1f }).map((c) => String.fromCharCode(c)), minLength: 1, maxLength: 8 }),
);

/** JSON number texts, many of which no double holds exactly. */
export const numberText: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    '0',
    '-0',
    '1',
    '1.0',
    '1.00',
    '1e0',
    '1E2',
    '1e-2',
    '0.1000000000000000000001',
    '0.30000000000000004',
    '19.99',
    '19.990',
    '19.999',
    '9007199254740993',
    '2147483647',
    '2147483648',
    '2147483647.0000000000000001',
    '9999999999.99',
    '9999999999.995',
    '10000000000',
    '1e400',
    '-1e400',
    '1e-400',
    '123456789012345678901234567890',
    '0.00000000000000000000000000001e29',
  ),
  fc
    .tuple(
      fc.boolean(),
      fc.stringMatching(/^(0|[1-9][0-9]{0,24})$/),
      fc.option(fc.stringMatching(/^[0-9]{1,25}$/), { nil: undefined }),
      fc.option(fc.integer({ min: -40, max: 40 }), { nil: undefined }),
    )
    .map(([neg, int, frac, exp]) => `${neg ? '-' : ''}${int}${frac === undefined ? '' : `.${frac}`}${exp === undefined ? '' : `e${exp}`}`),
);

const wrongType: fc.Arbitrary<unknown> = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer(),
  fc.double(),
  fc.constant([]),
  fc.constant({}),
  fc.array(fc.string(), { maxLength: 3 }),
  numberText.map((t) => new RawJson(t)),
);

export class SpecArbitraries {
  constructor(private readonly document: Json) {}

  /** Follows `$ref`s inside the document. */
  resolve(schema: unknown): Json {
    let current = schema;
    for (let hops = 0; isObject(current) && typeof current.$ref === 'string'; hops++) {
      if (hops > 20) throw new Error('openapi.yaml: $ref loop');
      current = (current.$ref as string)
        .slice(2)
        .split('/')
        .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
        .reduce<unknown>((node, key) => (isObject(node) ? node[key] : undefined), this.document);
    }
    if (!isObject(current)) throw new Error(`openapi.yaml: no schema at ${JSON.stringify(schema)}`);
    return current;
  }

  /** Values the schema accepts. */
  valid(raw: unknown): fc.Arbitrary<unknown> {
    const schema = this.resolve(raw);
    if ('const' in schema) return fc.constant(schema.const);
    if (Array.isArray(schema.enum)) return fc.constantFrom(...(schema.enum as unknown[]));
    for (const key of ['oneOf', 'anyOf'] as const) {
      if (Array.isArray(schema[key])) return fc.oneof(...(schema[key] as unknown[]).map((s) => this.valid(s)));
    }
    if (Array.isArray(schema.allOf)) return this.valid(schema.allOf[0]);
    switch (schema.type) {
      case 'string': {
        const min = typeof schema.minLength === 'number' ? schema.minLength : 0;
        const max = Math.min(typeof schema.maxLength === 'number' ? schema.maxLength : 300, 6000);
        if (typeof schema.pattern === 'string') {
          return fc.stringMatching(new RegExp(schema.pattern)).filter((s) => s.length >= min && s.length <= max);
        }
        return fc.oneof(
          fc.string({ minLength: Math.max(min, 1), maxLength: Math.min(max, 60) }).map((s) => (s.trim() === '' ? `x${s}` : s)),
          fc.string({ unit: 'grapheme', minLength: Math.max(min, 1), maxLength: Math.min(max, 40) }).filter((s) => s.trim() !== ''),
          fc.constant('x'.repeat(max)),
        );
      }
      case 'integer': {
        const min = typeof schema.minimum === 'number' ? schema.minimum : -(2 ** 31);
        const max = typeof schema.maximum === 'number' ? schema.maximum : 2 ** 31 - 1;
        return fc.oneof(fc.integer({ min, max }), fc.constantFrom(min, max));
      }
      case 'number': {
        const min = typeof schema.minimum === 'number' ? schema.minimum : 0;
        const max = typeof schema.exclusiveMaximum === 'number' ? schema.exclusiveMaximum - 1 : 1e9;
        // Two decimals at most: integers of cents.
        return fc.integer({ min: Math.ceil(min * 100), max: Math.min(max * 100, Number.MAX_SAFE_INTEGER) }).map((c) => c / 100);
      }
      case 'object': {
        const props = isObject(schema.properties) ? schema.properties : {};
        const required = Array.isArray(schema.required) ? (schema.required as string[]) : [];
        const model: Record<string, fc.Arbitrary<unknown>> = {};
        for (const [name, s] of Object.entries(props)) model[name] = this.valid(s);
        const min = typeof schema.minProperties === 'number' ? schema.minProperties : 0;
        return fc.record(model, { requiredKeys: required }).filter((o) => Object.keys(o).length >= min);
      }
      case 'array':
        return fc.array(this.valid(schema.items ?? {}), { maxLength: 3 });
      default:
        return fc.jsonValue({ maxDepth: 2 });
    }
  }

  /** Values on or just past the schema's edges, of the wrong type, or hostile. */
  boundary(raw: unknown): fc.Arbitrary<unknown> {
    const schema = this.resolve(raw);
    const alternatives = ['oneOf', 'anyOf'].flatMap((k) => (Array.isArray(schema[k]) ? (schema[k] as unknown[]) : []));
    if (alternatives.length > 0) return fc.oneof(...alternatives.map((s) => this.boundary(s)), wrongType);
    switch (schema.type) {
      case 'string': {
        const min = typeof schema.minLength === 'number' ? schema.minLength : 0;
        const max = typeof schema.maxLength === 'number' ? schema.maxLength : 300;
        return fc.oneof(
          fc.constantFrom('', ' ', 'x'.repeat(max), 'x'.repeat(max + 1), `${'é'.repeat(max)}`, '🎬'.repeat(Math.ceil(max / 2) + 1), 'x'.repeat(Math.max(min - 1, 0))),
          hostileText,
          hostileText.map((h) => `ok ${h} ok`),
          numberText,
          wrongType,
        );
      }
      case 'integer':
      case 'number': {
        const min = typeof schema.minimum === 'number' ? schema.minimum : 0;
        const max = typeof schema.maximum === 'number' ? schema.maximum : typeof schema.exclusiveMaximum === 'number' ? schema.exclusiveMaximum : 2 ** 31;
        return fc.oneof(
          fc.constantFrom(min - 1, min, max, max + 1, min + 0.5, -1, 2 ** 53, Number.MAX_SAFE_INTEGER + 2),
          numberText.map((t) => new RawJson(t)),
          fc.double(),
          wrongType,
        );
      }
      case 'object': {
        const props = isObject(schema.properties) ? schema.properties : {};
        const model: Record<string, fc.Arbitrary<unknown>> = {};
        for (const [name, s] of Object.entries(props)) model[name] = fc.oneof(this.valid(s), this.boundary(s));
        const record = fc.record(model, { requiredKeys: [] });
        return fc.oneof(
          record,
          // An unknown field beside valid ones.
          fc.tuple(this.valid(schema), fc.string({ minLength: 1, maxLength: 12 }), fc.jsonValue({ maxDepth: 1 })).map(([o, k, v]) =>
            isObject(o) && !(k in props) ? { ...o, [k]: v } : o,
          ),
          // The same key twice: which one would win?
          fc.tuple(this.valid(schema), this.valid(schema)).map(([a, b]) => new RawJson(`${jsonText(a).slice(0, -1)}${isObject(a) && Object.keys(a).length > 0 ? ',' : ''}${jsonText(b).slice(1)}`)),
          wrongType,
          fc.constant(new RawJson(`${'['.repeat(5000)}${']'.repeat(5000)}`)),
        );
      }
      default:
        return wrongType;
    }
  }
}
