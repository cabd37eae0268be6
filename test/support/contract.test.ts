import assert from 'node:assert/strict';
import http from 'node:http';
import { addressOf, closeServer, listen } from '@crud-master/common';
import {
  ContractViolation,
  SPEC_PATH,
  checkedRawRequest,
  contract,
  contractRequest,
  takeViolations,
  type ObservedResponse,
} from './contract';

const JSON_TYPE = 'application/json; charset=utf-8';
const movie = { id: 1, title: 'Heat', description: 'Mann' };
const errorOf = (code: string, message = 'm') => JSON.stringify({ error: { code, message } });

/** A response as a test would observe it; `over` replaces any part (every one has a request id). */
function response(over: Partial<ObservedResponse> = {}): ObservedResponse {
  return {
    method: 'GET',
    url: '/api/movies/1',
    status: 200,
    body: JSON.stringify(movie),
    ...over,
    headers: {
      'x-request-id': 'req-1',
      ...(over.headers ?? { 'content-type': JSON_TYPE, etag: '"mabc"', 'cache-control': 'no-cache', 'content-length': '42' }),
    },
  };
}

const problems = (res: ObservedResponse, api: 'gateway' | 'inventory' = 'gateway') => contract().check(res, api);

function assertFails(res: ObservedResponse, pattern: RegExp): void {
  const found = problems(res);
  assert.ok(found.some((p) => pattern.test(p)), `expected a problem matching ${pattern}, got: ${JSON.stringify(found)}`);
}

describe('contract: openapi.yaml', () => {
  it('is a valid OpenAPI 3.1 document (the official schema, via @seriousme/openapi-schema-validator)', async () => {
    const { Validator } = await import('@seriousme/openapi-schema-validator');
    const validator = new Validator();
    const result = await validator.validate(SPEC_PATH);
    assert.equal(validator.version, '3.1');
    assert.ok(result.valid, JSON.stringify(result.errors, null, 2));
  });

  it('lists every route the services serve', () => {
    const operations = contract().operations().map((op) => `${op.method} ${op.path}`);
    assert.deepEqual(operations, [
      'GET /api/movies',
      'POST /api/movies',
      'DELETE /api/movies',
      'GET /api/movies/{id}',
      'PUT /api/movies/{id}',
      'DELETE /api/movies/{id}',
      'POST /api/billing',
      'GET /health',
      'GET /openapi.yaml',
      'GET /api/docs',
      'GET /api/docs/{file}',
      'GET /',
      'GET /catalogue/{file}',
    ]);
  });
});

describe('contract: checking a response', () => {
  it('accepts a response as documented, with or without a trailing slash and a query string', () => {
    assert.deepEqual(problems(response()), []);
    assert.deepEqual(problems(response({ url: '/api/movies/1/' })), []);
    assert.deepEqual(problems(response({ method: 'HEAD', body: '' })), []);
    assert.deepEqual(problems(response({ url: '/api/movies?title=heat', body: JSON.stringify([movie]), headers: { 'content-type': JSON_TYPE, etag: '"l1.a.1"', 'cache-control': 'no-cache' } })), []);
  });

  it('refuses a field the schema does not have', () => {
    assertFails(response({ body: JSON.stringify({ ...movie, rating: 5 }) }), /must NOT have additional properties "rating"/);
  });

  it('refuses a missing field and a field of the wrong type', () => {
    assertFails(response({ body: JSON.stringify({ id: 1, title: 'Heat' }) }), /required property 'description'/);
    assertFails(response({ body: JSON.stringify({ ...movie, id: '1' }) }), /body\/id: must be integer/);
  });

  it('refuses a status the operation does not document', () => {
    const created = response({ method: 'POST', url: '/api/movies', status: 201, headers: { 'content-type': JSON_TYPE, location: '/api/movies/1' } });
    assertFails(created, /undocumented status 201 for POST \/api\/movies/);
    assertFails(response({ status: 500, body: errorOf('internal_error') }), /undocumented status 500/);
  });

  it('refuses a path the document does not list, except for its 404', () => {
    assertFails(response({ url: '/api/films', body: '[]' }), /undocumented path \/api\/films/);
    assert.deepEqual(problems(response({ url: '/api/films', status: 404, headers: { 'content-type': JSON_TYPE }, body: errorOf('not_found') })), []);
    assertFails(response({ url: '/api/films', status: 404, headers: { 'content-type': JSON_TYPE }, body: errorOf('nope') }), /must be equal to constant/);
  });

  it('refuses a method the path does not document, except for its 405 with the documented Allow', () => {
    const patch = (allow: string, status = 405) =>
      response({ method: 'PATCH', url: '/api/movies', status, headers: { 'content-type': JSON_TYPE, allow }, body: errorOf('method_not_allowed') });
    assert.deepEqual(problems(patch('HEAD, GET, POST, DELETE')), []);
    assertFails(patch('HEAD, GET, POST'), /Allow: "HEAD, GET, POST" but openapi.yaml documents DELETE, GET, HEAD, POST/);
    assertFails(patch('HEAD, GET, POST, DELETE', 200), /undocumented method: PATCH \/api\/movies/);
    assertFails(response({ method: 'PATCH', url: '/api/movies', status: 405, headers: { 'content-type': JSON_TYPE }, body: errorOf('method_not_allowed') }), /required header Allow is missing/);
  });

  it('refuses a missing required header, a malformed one, and one the document does not list', () => {
    const create = (headers: ObservedResponse['headers']) =>
      response({ method: 'POST', url: '/api/movies', headers: { 'content-type': JSON_TYPE, ...headers } });
    assert.deepEqual(problems(create({ location: '/api/movies/1' })), []);
    assertFails(create({}), /required header Location is missing/);
    assertFails(create({ location: '/movies/1' }), /header Location: "\/movies\/1"/);
    assertFails(create({ location: '/api/movies/1', 'x-debug': '1' }), /undocumented header x-debug/);
  });

  it('refuses an undocumented Content-Type, a body that is not JSON, and a body where none belongs', () => {
    assertFails(response({ headers: { 'content-type': 'text/plain', etag: '"a"', 'cache-control': 'no-cache' }, body: 'Heat' }), /undocumented Content-Type "text\/plain"/);
    assertFails(response({ body: '{"id":' }), /not valid JSON/);
    assertFails(response({ method: 'HEAD' }), /a body on a HEAD 200 answer/);
    assertFails(response({ status: 304, headers: { etag: '"a"', 'cache-control': 'no-cache' }, body: 'x' }), /a body where openapi.yaml documents none/);
    assertFails(response({ body: '' }), /an empty body/);
  });

  it('holds the inventory\'s own /health to the shared HealthReport schema, and the gateway\'s to its own', () => {
    const health = (body: unknown, status = 200) =>
      response({ url: '/health', status, headers: { 'content-type': JSON_TYPE, 'cache-control': 'no-store' }, body: JSON.stringify(body) });
    const inventory = { status: 'ok', service: 'inventory-app', checks: { database: { status: 'up' } } };
    assert.deepEqual(problems(health(inventory), 'inventory'), []);
    assert.ok(problems(health({ ...inventory, uptime: 1 }), 'inventory').some((p) => /must NOT have additional properties/.test(p)));
    assert.ok(problems(health(inventory), 'gateway').length > 0, 'the gateway\'s /health names the inventory check');
  });
});

describe('contract: the test wrappers', () => {
  /** A handler answering a movie with a field openapi.yaml does not have. */
  const leaky: http.RequestListener = (_req, res) => {
    res.writeHead(200, { 'Content-Type': JSON_TYPE, ETag: '"mabc"', 'Cache-Control': 'no-cache' });
    res.end(JSON.stringify({ ...movie, internal: true }));
  };

  afterEach(() => {
    // These tests provoke violations on purpose and catch them: not the root hook's business.
    takeViolations();
  });

  it('contractRequest fails a request whose response breaks the contract, after its own expectations pass', async () => {
    const err = await contractRequest(leaky)
      .get('/api/movies/1')
      .expect(200)
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    assert.ok(err instanceof ContractViolation, `expected a ContractViolation, got ${String(err)}`);
    assert.match(err.message, /GET \/api\/movies\/1 -> 200/);
    assert.match(err.message, /additional properties "internal"/);
  });

  it('contractRequest reports the test\'s own failed expectation first', async () => {
    await assert.rejects(contractRequest(leaky).get('/api/movies/1').expect(404), /expected 404 "Not Found", got 200 "OK"/);
  });

  it('checkedRawRequest fails on a response that breaks the contract, over a real socket', async () => {
    const server = await listen(leaky, { host: '127.0.0.1', port: 0 });
    try {
      await assert.rejects(checkedRawRequest('gateway')(addressOf(server), { path: '/api/movies/1' }), ContractViolation);
    } finally {
      await closeServer(server, 200);
    }
  });

  it('records every violation for the root hook (test/support/contract-hooks.ts)', async () => {
    takeViolations();
    await contractRequest(leaky).get('/api/movies/1').catch(() => undefined);
    const recorded = takeViolations();
    assert.equal(recorded.length, 1);
    assert.ok(recorded[0] instanceof ContractViolation);
  });
});
