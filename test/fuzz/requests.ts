/**
 * Generated requests: for every operation of openapi.yaml, requests whose path parameters, query
 * parameters, headers and bodies come from the operation's own schemas (valid values, edge
 * values, wrong types, hostile text), and the input classes of issue 11 as requests of their own.
 * Each request names its class, so the suite can count and report per class.
 */
import zlib from 'node:zlib';
import fc from 'fast-check';
import { RawJson, SpecArbitraries, hostileText, jsonText, numberText } from './spec-arbitraries';

export interface FuzzRequest {
  /** The input class, for counting: `schema:createMovie`, `media-type`, ... */
  kind: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
  /** For orders: the body's fields as JSON texts, so the test can tell a valid order from an invalid one exactly. */
  order?: { text: string };
}

const JSON_TYPE = { 'Content-Type': 'application/json' };

/** Characters a header value may hold (Node's client refuses the rest, so does any server). */
const headerSafe = (s: string): string => s.replace(/[^\t\x20-\x7e]/g, '');

/** One path segment: ids valid and invalid, encodings that a normaliser might read differently. */
function idSegment(spec: SpecArbitraries, ids: () => number[]): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.constant(0).map(() => String(ids()[0] ?? 1)) },
    { weight: 2, arbitrary: spec.valid({ $ref: '#/components/parameters/MovieId/schema' }).map(String) },
    {
      weight: 3,
      arbitrary: fc.constantFrom(
        '0', '01', '1.0', '1e3', '+1', '-1', '0x10', '1.', '1..', '9007199254740993', '99999999999999999999', '2147483648',
        '.', '..', '%2e', '%2e%2e', '%2E%2E', '.%2e', '1%2F2', '1%2f..', '%2F', '%5C', '1%5C2', '1%00', '%00', '%ff', '%', '%zz',
        '1;x', '1,2', '١', '１', '1%20', '%201', 'null', 'undefined', '\u00e9',
      ),
    },
    { weight: 2, arbitrary: hostileText.map((t) => encodeURIComponent(t.replace(/[\ud800-\udfff]/g, '')) || '%20') },
    { weight: 1, arbitrary: fc.stringMatching(/^[0-9]{1,25}$/) },
  );
}

/** A query string for GET /api/movies from its parameters' schemas, plus the junk a client may send. */
function listQuery(spec: SpecArbitraries): fc.Arbitrary<string> {
  const param = (ref: string) => spec.resolve({ $ref: ref }).schema;
  const value = (ref: string) =>
    fc.oneof(
      spec.valid(param(ref)).map((v) => encodeURIComponent(String(v))),
      spec.boundary(param(ref)).map((v) => encodeURIComponent(typeof v === 'string' ? v.replace(/[\ud800-\udfff]/g, '') : v instanceof RawJson ? v.text : JSON.stringify(v) ?? '')),
      fc.constantFrom('', '%', '%zz', '%00', '%ff%fe', '+', '%2B', '-1', '1e3', '0x1', ' 1', '1.5', '%E2%80%AE'),
    );
  const pair = fc.oneof(
    value('#/components/parameters/TitleFilter').map((v) => `title=${v}`),
    value('#/components/parameters/Limit').map((v) => `limit=${v}`),
    value('#/components/parameters/Offset').map((v) => `offset=${v}`),
    fc.tuple(fc.stringMatching(/^[a-z_]{1,8}$/), fc.string({ maxLength: 20 })).map(([k, v]) => `${k}=${encodeURIComponent(v.replace(/[\ud800-\udfff]/g, ''))}`),
    fc.constantFrom('title', 'limit', 'offset=', '&&', '=x', 'title[]=a', 'title[a]=b'),
  );
  return fc.array(pair, { maxLength: 4 }).map((pairs) => (pairs.length === 0 ? '' : `?${pairs.join('&')}`));
}

/** Headers any request may carry, from the documented ones (If-None-Match) and the usual suspects. */
const commonHeaders: fc.Arbitrary<Record<string, string>> = fc.record(
  {
    'If-None-Match': fc.oneof(fc.constantFrom('*', '"x"', 'W/"x"', '"l1.0.0"', '""', ',', 'W/', '"a", "b"'), fc.string({ maxLength: 40 }).map(headerSafe)),
    'X-Request-Id': fc.oneof(fc.stringMatching(/^[A-Za-z0-9._:@-]{1,128}$/), fc.string({ maxLength: 300 }).map(headerSafe)),
    Accept: fc.constantFrom('*/*', 'text/html', 'application/xml', 'application/json;q=0'),
    Connection: fc.constant('close'),
  },
  { requiredKeys: [] },
);

/** A JSON body for a schema: valid, at its edges, or not JSON at all. */
function jsonBodyFor(spec: SpecArbitraries, schemaRef: string): fc.Arbitrary<Buffer> {
  return fc.oneof(
    { weight: 3, arbitrary: spec.valid({ $ref: schemaRef }).map((v) => Buffer.from(jsonText(v))) },
    { weight: 5, arbitrary: spec.boundary({ $ref: schemaRef }).map((v) => Buffer.from(jsonText(v))) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        '', '{', '{"title":', 'null', '"x"', '[]', '{}', '{"title":"a"}garbage', '\ufeff{"title":"bom"}', '{"title":"a",}', "{'title':'a'}",
        '{"__proto__":{"x":1},"title":"proto"}', '{"constructor":{"prototype":{}}}', 'NaN', '{"title":Infinity}',
      ).map((s) => Buffer.from(s)),
    },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)) },
  );
}

/** A whole order as JSON text, each field a number text, a string, a wrong type, or missing. */
const orderField = (valid: fc.Arbitrary<string>): fc.Arbitrary<string | undefined> =>
  fc.oneof(
    { weight: 4, arbitrary: valid },
    { weight: 4, arbitrary: numberText },
    { weight: 2, arbitrary: numberText.map((t) => JSON.stringify(t)) },
    { weight: 1, arbitrary: hostileText.map((t) => JSON.stringify(t)) },
    { weight: 1, arbitrary: fc.constantFrom('null', 'true', '[]', '{}', '"1 "', '" 1"', '"01"', '"1e3"', '"+1"', '""', '"١"') },
    { weight: 1, arbitrary: fc.constant(undefined) },
  );

export const orderText: fc.Arbitrary<string> = fc
  .tuple(
    orderField(fc.oneof(fc.integer({ min: 1, max: 2147483647 }).map(String), fc.integer({ min: 1, max: 99999 }).map((n) => `"${n}"`))),
    orderField(fc.oneof(fc.integer({ min: 1, max: 1000 }).map(String), fc.integer({ min: 1, max: 1000 }).map((n) => `"${n}"`))),
    orderField(fc.integer({ min: 0, max: 99_999_999 }).map((c) => (c % 2 ? `${c / 100}` : `"${(c / 100).toFixed(c % 3 ? 2 : 0)}"`))),
    fc.option(fc.tuple(fc.stringMatching(/^[a-z_]{1,10}$/), fc.constantFrom('1', '"x"', 'null')), { nil: undefined }),
    fc.boolean(),
  )
  .map(([u, n, t, extra, duplicate]) => {
    const parts: string[] = [];
    if (u !== undefined) parts.push(`"user_id":${u}`);
    if (n !== undefined) parts.push(`"number_of_items":${n}`);
    if (t !== undefined) parts.push(`"total_amount":${t}`);
    if (extra) parts.push(`"${extra[0]}":${extra[1]}`);
    if (duplicate && u !== undefined) parts.push(`"user_id":${u === '1' ? '2' : '1'}`);
    return `{${parts.join(',')}}`;
  });

export interface OperationModel {
  method: string;
  path: string;
  operationId: string | undefined;
}

/**
 * Requests for one documented operation, built from its parameters and request body schemas.
 * `ids` gives ids of movies that exist now.
 */
export function operationRequests(spec: SpecArbitraries, op: OperationModel, ids: () => number[]): fc.Arbitrary<FuzzRequest> {
  const kind = `schema:${op.operationId ?? `${op.method} ${op.path}`}`;
  const pathArb: fc.Arbitrary<string> = op.path.includes('{id}')
    ? fc.tuple(idSegment(spec, ids), fc.boolean()).map(([id, slash]) => `${op.path.replace('{id}', id)}${slash ? '/' : ''}`)
    : fc.boolean().map((slash) => `${op.path}${slash ? '/' : ''}`);
  const query = op.operationId === 'listMovies' ? listQuery(spec) : fc.constant('');
  const headers = op.operationId === 'createOrder'
    ? fc.tuple(commonHeaders, fc.option(fc.oneof(spec.valid({ $ref: '#/components/parameters/IdempotencyKey/schema' }), fc.string({ maxLength: 200 }).map(headerSafe)), { nil: undefined }))
        .map(([h, key]) => (key === undefined ? h : { ...h, 'Idempotency-Key': String(key) }))
    : commonHeaders;
  let body: fc.Arbitrary<{ body?: Buffer; order?: { text: string } }> = fc.constant({});
  if (op.operationId === 'createMovie') body = jsonBodyFor(spec, '#/components/schemas/NewMovie').map((b) => ({ body: b }));
  if (op.operationId === 'updateMovie') body = jsonBodyFor(spec, '#/components/schemas/MoviePatch').map((b) => ({ body: b }));
  if (op.operationId === 'createOrder') {
    body = fc.oneof(
      { weight: 4, arbitrary: orderText.map((text) => ({ body: Buffer.from(text), order: { text } })) },
      { weight: 1, arbitrary: jsonBodyFor(spec, '#/components/schemas/Order').map((b) => ({ body: b })) },
    );
  }
  return fc.tuple(pathArb, query, headers, body).map(([path, q, h, b]) => ({
    kind,
    method: op.method,
    path: `${path}${q}`,
    headers: b.body !== undefined ? { ...JSON_TYPE, ...h } : h,
    ...b,
  }));
}

const MOVIE_OR_ORDER = fc.constantFrom(
  { method: 'POST', path: '/api/movies', body: '{"title":"compressed","description":"d"}' },
  { method: 'PUT', path: '/api/movies/1', body: '{"description":"d"}' },
  { method: 'POST', path: '/api/billing', body: '{"user_id":"3","number_of_items":"5","total_amount":"180"}' },
);

/** The input classes issue 11 names, each as requests of its own. */
export function hostileRequests(ids: () => number[]): Record<string, fc.Arbitrary<FuzzRequest>> {
  const someId = () => String(ids()[0] ?? 1);
  const target = MOVIE_OR_ORDER.map((t) => ({ ...t, path: t.path.replace('/1', `/${someId()}`) }));
  return {
    'control-characters': fc
      .tuple(fc.constantFrom('POST /api/movies', 'PUT /api/movies/:id'), fc.constantFrom('title', 'description'), hostileText)
      .map(([route, field, text]) => {
        const [method, path] = route.split(' ') as [string, string];
        const body = field === 'title' ? { title: `t${text}t` } : { title: 'ok', description: `d${text}d` };
        return { kind: 'control-characters', method, path: path.replace(':id', someId()), headers: JSON_TYPE, body: Buffer.from(JSON.stringify(body)) };
      }),
    'control-characters-query': hostileText.map((t) => ({
      kind: 'control-characters-query',
      method: 'GET',
      path: `/api/movies?title=${encodeURIComponent(t.replace(/[\ud800-\udfff]/g, '')) || '%00'}&limit=5`,
      headers: {},
    })),
    'compressed-body': fc.tuple(target, fc.constantFrom('gzip', 'deflate', 'br', 'x-unknown', 'identity', 'gzip, gzip', 'GZIP', 'compress')).map(([t, encoding]) => {
      const raw = Buffer.from(t.body);
      const body = encoding.toLowerCase().startsWith('gzip') ? zlib.gzipSync(raw) : encoding === 'deflate' ? zlib.deflateSync(raw) : encoding === 'br' ? zlib.brotliCompressSync(raw) : raw;
      return { kind: 'compressed-body', method: t.method, path: t.path, headers: { ...JSON_TYPE, 'Content-Encoding': encoding }, body };
    }),
    'media-type': fc
      .tuple(
        target,
        fc.constantFrom(
          'application/json; charset=utf-16', 'application/json; charset=UTF-16LE', 'application/json; charset=latin1', 'application/json; charset=utf-8',
          'application/json;charset="utf-8"', 'application/merge-patch+json', 'application/vnd.api+json', 'application/problem+json', 'text/json',
          'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'APPLICATION/JSON', '', 'application/json, text/plain',
          'application/jsonx', 'application/*', '*/*',
        ),
        fc.boolean(),
      )
      .map(([t, type, utf16]): FuzzRequest => ({
        kind: 'media-type',
        method: t.method,
        path: t.path,
        headers: type === '' ? {} : { 'Content-Type': type as string },
        body: utf16 && /utf-16/i.test(type) ? Buffer.from(`\ufeff${t.body}`, 'utf16le') : Buffer.from(t.body),
      })),
    'precise-numbers': fc
      .tuple(numberText, fc.constantFrom('user_id', 'number_of_items', 'total_amount'))
      .map(([n, field]) => {
        const fields: Record<string, string> = { user_id: '3', number_of_items: '5', total_amount: '"180"' };
        fields[field] = n;
        const text = `{${Object.entries(fields).map(([k, v]) => `"${k}":${v}`).join(',')}}`;
        return { kind: 'precise-numbers', method: 'POST', path: '/api/billing', headers: JSON_TYPE, body: Buffer.from(text), order: { text } };
      }),
    'precise-numbers-movies': numberText.map((n) => ({
      kind: 'precise-numbers-movies',
      method: 'GET',
      path: `/api/movies/${n}`,
      headers: {},
    })),
    'long-query': fc.tuple(fc.integer({ min: 1000, max: 15000 }), fc.constantFrom('x', 'title', 'limit')).map(([n, param]) => ({
      kind: 'long-query',
      method: 'GET',
      path: param === 'x' ? `/api/movies?limit=2&x=${'a'.repeat(n)}` : param === 'title' ? `/api/movies?limit=2&title=${'a'.repeat(n)}` : `/api/movies?limit=${'1'.repeat(n)}`,
      headers: {},
    })),
    'oversized-headers': fc.tuple(fc.integer({ min: 8000, max: 70000 }), fc.constantFrom('/api/movies?limit=1', '/api/billing', '/health', '/nowhere')).map(([n, path]) => ({
      kind: 'oversized-headers',
      method: path === '/api/billing' ? 'POST' : 'GET',
      path,
      headers: { 'X-Filler': 'a'.repeat(n), ...(path === '/api/billing' ? JSON_TYPE : {}) },
      ...(path === '/api/billing' ? { body: Buffer.from('{"user_id":1,"number_of_items":1,"total_amount":1}') } : {}),
    })),
    'path-normalisation': fc
      .tuple(
        fc.constantFrom(
          '/api/movies/../health', '/api/movies/../metrics', '/api/movies/../../metrics', '/api/movies/%2e%2e/metrics', '/api/movies/%2E%2E/%2E%2E/metrics',
          '/api/movies/./', '/api/movies/.', '/api/movies/..', '//api/movies', '/api//movies', '/api/movies//', '/api/movies//1', '/api/movies%2F1',
          '/api/movies%2f', '/API/MOVIES', '/Api/Movies/1', '/api/movies/1/', '/api/movies/1//', '/api/movies/1/..', '/api/movies/1/%2e%2e', '/api/movies/1.',
          '/api/movies/1%2F..%2F..%2Fmetrics', '/api/movies\\..\\metrics', '/api/movies/..\\metrics', '/api/movies;/1', '/api/movies/1;x', '/api/movies.json',
          '/api/movies/%20', '/api/movies/1%23x', '/api/billing/../movies', '/api/billing/..%2Fmovies', '/api/movies/%252e%252e/metrics', '/api/movies/1/extra',
          '/api/movies/:id', '/api/movies/*', '/api/movies/%', '/api/movies?', '/api/movies#x',
        ),
        fc.constantFrom('GET', 'DELETE', 'PUT', 'HEAD'),
      )
      .map(([path, method]) => ({
        kind: 'path-normalisation',
        method,
        path: path.replace('/1', `/${someId()}`),
        headers: method === 'PUT' ? JSON_TYPE : {},
        ...(method === 'PUT' ? { body: Buffer.from('{"description":"normalised"}') } : {}),
      })),
    // Orders under a few keys, valid and invalid, some the same order written another way: the
    // suite expects 200 for a key's first order and its retries, 422 for another order under it.
    'idempotency-reuse': fc
      .tuple(
        fc.integer({ min: 0, max: 7 }),
        fc.constantFrom('3', '"3"', '3.0', '4'),
        fc.constantFrom('5', '"5"', '5e0', '6'),
        fc.constantFrom('180', '"180"', '"180.00"', '1.8e2', '181', '"180.001"'),
      )
      .map(([key, user, items, amount]) => {
        const text = `{"user_id":${user},"number_of_items":${items},"total_amount":${amount}}`;
        return { kind: 'idempotency-reuse', method: 'POST', path: '/api/billing', headers: { ...JSON_TYPE, 'Idempotency-Key': `fuzz-key-${key}` }, body: Buffer.from(text), order: { text } };
      }),
    methods: fc
      .tuple(
        fc.constantFrom('OPTIONS', 'PATCH', 'TRACE', 'PROPFIND', 'FOO', 'SEARCH', 'PURGE', 'LINK', 'HEAD', 'QUERY'),
        fc.constantFrom('/api/movies', '/api/movies/', '/api/movies/:id', '/api/billing', '/health', '/metrics', '/openapi.yaml', '/api/docs', '/nowhere'),
      )
      .map(([method, path]) => ({ kind: 'methods', method, path: path.replace(':id', someId()), headers: {} })),
    // Bodies sent chunked, without Content-Length: the size limit must hold while reading.
    framing: fc
      .tuple(target, fc.constantFrom(0, 1, 17_000, 100_000))
      .map(([t, pad]) => ({
        kind: 'framing',
        method: t.method,
        path: t.path,
        headers: { ...JSON_TYPE, 'Transfer-Encoding': 'chunked' },
        body: Buffer.from(pad === 0 ? t.body : pad === 1 ? `${t.body}   ` : t.body.replace('{', `{"pad":"${'x'.repeat(pad)}",`)),
      })),
    'connection-close': fc
      .tuple(fc.constantFrom('GET /api/movies?limit=3', 'GET /api/movies/:id', 'POST /api/movies', 'GET /api/movies/0', 'POST /api/billing', 'GET /nowhere'), fc.constantFrom('close', 'Close', 'keep-alive, close', 'upgrade'))
      .map(([route, connection]) => {
        const [method, path] = route.split(' ') as [string, string];
        const body = method === 'POST' ? (path === '/api/billing' ? '{"user_id":1,"number_of_items":1,"total_amount":"1.5"}' : '{"title":"closing"}') : undefined;
        return {
          kind: 'connection-close',
          method,
          path: path.replace(':id', someId()),
          headers: { Connection: connection, ...(body ? JSON_TYPE : {}) },
          ...(body ? { body: Buffer.from(body) } : {}),
          ...(path === '/api/billing' && body ? { order: { text: body } } : {}),
        };
      }),
  };
}
