import assert from 'node:assert/strict';
import request from 'supertest';
import type Koa from 'koa';
import { createApp } from '../src/app';
import { inventorySchema } from '../src/db/schema';
import { linkHeader } from '../src/movies/paging';
import { freshDatabase, type TestDatabase } from '../../../test/support/databases';
import { silentLogger } from '../../../test/support/silent-logger';
import { contractRequest } from '../../../test/support/contract';

interface Movie {
  id: number;
  title: string;
  description: string;
}

/** `Link: <url>; rel="next", ...` as { next: url, ... }. */
function parseLinks(header: string | undefined): Record<string, string> {
  const links: Record<string, string> = {};
  for (const part of (header ?? '').split(/,\s*(?=<)/)) {
    const match = /^<([^>]*)>;\s*rel="([^"]+)"$/.exec(part.trim());
    if (match) links[match[2] as string] = match[1] as string;
  }
  return links;
}

describe('inventory-app GET /api/movies with limit and offset', () => {
  let testDb: TestDatabase;
  let app: Koa;
  let all: Movie[];

  before(async () => {
    testDb = await freshDatabase(inventorySchema);
    app = createApp({ db: testDb.db, config: { bodyLimit: '16kb' }, logger: silentLogger() });
  });
  after(async () => {
    await testDb?.db.destroy();
  });
  beforeEach(async () => {
    await testDb.truncate('movies');
    const rows = Array.from({ length: 25 }, (_, i) => ({
      title: `Movie ${String(i + 1).padStart(2, '0')}`,
      description: `number ${i + 1}`,
    }));
    rows.push({ title: '100% Wolf', description: 'percent' }, { title: 'snake_case', description: 'underscore' });
    rows.push({ title: '1000 Wolves', description: 'no percent' }, { title: 'snakeXcase', description: 'no underscore' });
    all = await testDb.db('movies').insert(rows).returning(['id', 'title', 'description']);
  });

  const http = () => contractRequest(app.callback(), 'inventory');

  function expectValidationError(res: request.Response, pattern: RegExp): void {
    assert.equal(res.status, 400, `expected 400, got ${res.status}: ${res.text}`);
    assert.match(String(res.headers['content-type']), /^application\/json/);
    assert.equal(res.body.error.code, 'validation_error');
    assert.match(res.body.error.message, pattern);
  }

  it('answers the first page with X-Total-Count and first/next/last links', async () => {
    const res = await http().get('/api/movies').query({ limit: 10 }).expect(200);
    assert.deepEqual(res.body, all.slice(0, 10));
    assert.equal(res.headers['x-total-count'], '29');
    assert.deepEqual(parseLinks(res.headers.link), {
      first: '/api/movies?limit=10&offset=0',
      next: '/api/movies?limit=10&offset=10',
      last: '/api/movies?limit=10&offset=20',
    });
  });

  it('answers a middle page with prev and next, and the last page without next', async () => {
    const middle = await http().get('/api/movies?limit=10&offset=10').expect(200);
    assert.deepEqual(middle.body, all.slice(10, 20));
    const links = parseLinks(middle.headers.link);
    assert.equal(links.prev, '/api/movies?limit=10&offset=0');
    assert.equal(links.next, '/api/movies?limit=10&offset=20');

    const last = await http().get('/api/movies?limit=10&offset=20').expect(200);
    assert.deepEqual(last.body, all.slice(20));
    assert.equal(parseLinks(last.headers.link).next, undefined);
    assert.equal(parseLinks(last.headers.link).prev, '/api/movies?limit=10&offset=10');
  });

  it('reaches every movie exactly once by following rel="next", as the unpaged list has them', async () => {
    const seen: Movie[] = [];
    let next: string | undefined = '/api/movies/?limit=7';
    for (let hops = 0; next !== undefined && hops < 20; hops++) {
      const res: request.Response = await http().get(next).expect(200);
      seen.push(...(res.body as Movie[]));
      next = parseLinks(res.headers.link).next;
      // The path keeps the trailing slash the client used.
      if (next !== undefined) assert.match(next, /^\/api\/movies\/\?/);
    }
    assert.equal(next, undefined);
    assert.deepEqual(seen, (await http().get('/api/movies').expect(200)).body);
  });

  it('keeps title (and no other parameter) in the links, and counts only matches', async () => {
    const res = await http().get('/api/movies?title=movie%201&limit=4&offset=4&lang=en').expect(200);
    // "Movie 10".."Movie 19": ten titles contain "movie 1".
    assert.equal(res.headers['x-total-count'], '10');
    assert.deepEqual(
      (res.body as Movie[]).map((m) => m.title),
      ['Movie 14', 'Movie 15', 'Movie 16', 'Movie 17'],
    );
    assert.deepEqual(parseLinks(res.headers.link), {
      first: '/api/movies?title=movie+1&limit=4&offset=0',
      prev: '/api/movies?title=movie+1&limit=4&offset=0',
      next: '/api/movies?title=movie+1&limit=4&offset=8',
      last: '/api/movies?title=movie+1&limit=4&offset=8',
    });
    // The link's own title parameter means the same search.
    const next = await http().get(parseLinks(res.headers.link).next as string).expect(200);
    assert.deepEqual(
      (next.body as Movie[]).map((m) => m.title),
      ['Movie 18', 'Movie 19'],
    );
  });

  it('takes % and _ literally in a paged search too', async () => {
    const percent = await http().get('/api/movies').query({ title: '0%', limit: 5 }).expect(200);
    assert.deepEqual((percent.body as Movie[]).map((m) => m.title), ['100% Wolf']);
    assert.equal(percent.headers['x-total-count'], '1');
    const underscore = await http().get('/api/movies').query({ title: 'e_c', limit: 5 }).expect(200);
    assert.deepEqual((underscore.body as Movie[]).map((m) => m.title), ['snake_case']);
    assert.equal(underscore.headers['x-total-count'], '1');
  });

  it('uses a page size of 100 when only offset is given', async () => {
    const res = await http().get('/api/movies?offset=27').expect(200);
    assert.deepEqual(res.body, all.slice(27));
    assert.equal(res.headers['x-total-count'], '29');
    assert.equal(parseLinks(res.headers.link).first, '/api/movies?limit=100&offset=0');
  });

  it('answers an empty page past the end, with the total and a prev link to the last page', async () => {
    const res = await http().get('/api/movies?limit=10&offset=500').expect(200);
    assert.deepEqual(res.body, []);
    assert.equal(res.headers['x-total-count'], '29');
    const links = parseLinks(res.headers.link);
    assert.equal(links.prev, '/api/movies?limit=10&offset=20');
    assert.equal(links.next, undefined);
  });

  it('counts zero matches as zero, with one (empty) page', async () => {
    const res = await http().get('/api/movies?title=nothing-like-this&limit=10').expect(200);
    assert.deepEqual(res.body, []);
    assert.equal(res.headers['x-total-count'], '0');
    assert.deepEqual(parseLinks(res.headers.link), {
      first: '/api/movies?title=nothing-like-this&limit=10&offset=0',
      last: '/api/movies?title=nothing-like-this&limit=10&offset=0',
    });
  });

  it('keeps X-Total-Count exact after writes, filtered or not', async () => {
    const before = await http().get('/api/movies?title=wolf&limit=1').expect(200);
    assert.equal(before.headers['x-total-count'], '1'); // "100% Wolf"; "1000 Wolves" has no "wolf"
    await http().post('/api/movies').send({ title: 'Teen Wolf' }).expect(200);
    const after = await http().get('/api/movies?title=wolf&limit=1').expect(200);
    assert.equal(after.headers['x-total-count'], '2');

    await http().delete(`/api/movies/${all[0]!.id}`).expect(200);
    assert.equal((await http().get('/api/movies?limit=1').expect(200)).headers['x-total-count'], '29');
    await http().delete('/api/movies').expect(200);
    assert.equal((await http().get('/api/movies?limit=1').expect(200)).headers['x-total-count'], '0');
    assert.equal((await http().get('/api/movies?title=wolf&limit=1').expect(200)).headers['x-total-count'], '0');
  });

  it('accepts the largest page, 1000', async () => {
    const res = await http().get('/api/movies?limit=1000').expect(200);
    assert.equal((res.body as Movie[]).length, 29);
  });

  it('still answers the plain array without paging parameters: no Link, no X-Total-Count', async () => {
    const res = await http().get('/api/movies').expect(200);
    assert.deepEqual(res.body, all);
    assert.equal(res.headers.link, undefined);
    assert.equal(res.headers['x-total-count'], undefined);
  });

  const invalid: Array<[string, RegExp]> = [
    ['limit=0', /limit: must be a whole number from 1 to 1000/],
    ['limit=1001', /limit: must be a whole number from 1 to 1000/],
    ['limit=-1', /limit: must be a whole number/],
    ['limit=1.5', /limit: must be a whole number/],
    ['limit=1e3', /limit: must be a whole number/],
    ['limit=abc', /limit: must be a whole number/],
    ['limit=', /limit: must be a whole number/],
    ['limit=99999999999999999999', /limit: must be a whole number/],
    ['offset=-1', /offset: must be a whole number from 0/],
    ['offset=x', /offset: must be a whole number/],
    ['offset=2147483648', /offset: must be a whole number from 0 to 2147483647/],
    ['limit=5&limit=6', /limit: must be given once/],
    ['offset=1&offset=2', /offset: must be given once/],
    ['limit=0&offset=-1', /limit: .*; offset: /],
  ];
  for (const [query, message] of invalid) {
    it(`answers 400 validation_error for ?${query}`, async () => {
      expectValidationError(await http().get(`/api/movies?${query}`), message);
    });
  }
});

describe('movies paging links (unit)', () => {
  it('encodes the other parameters and puts limit and offset last', () => {
    const header = linkHeader({ path: '/api/movies', querystring: 'offset=3&title=a%26b%20c&limit=2', limit: 2, offset: 3, total: 9 });
    assert.deepEqual(parseLinks(header), {
      first: '/api/movies?title=a%26b+c&limit=2&offset=0',
      prev: '/api/movies?title=a%26b+c&limit=2&offset=1',
      next: '/api/movies?title=a%26b+c&limit=2&offset=5',
      last: '/api/movies?title=a%26b+c&limit=2&offset=8',
    });
  });
});

describe('inventory-app Link headers stay bounded', () => {
  it('echoes no unknown parameter, however long, into the Link header', async () => {
    const link = linkHeader({ path: '/api/movies', querystring: `title=x&limit=2&junk=${'a'.repeat(7000)}`, limit: 2, offset: 2, total: 10 });
    assert.ok(link.length < 400, `Link of ${link.length} characters`);
    assert.doesNotMatch(link, /junk/);
  });
});
