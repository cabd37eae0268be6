import assert from 'node:assert/strict';
import request from 'supertest';
import type Koa from 'koa';
import { createApp } from '../src/app';
import { inventorySchema } from '../src/db/schema';
import { ifNoneMatchMatches, listTag, rowTag } from '../src/movies/conditional';
import { freshDatabase, type TestDatabase } from '../../../test/support/databases';
import { silentLogger } from '../../../test/support/silent-logger';
import { contractRequest } from '../../../test/support/contract';

const STRONG_TAG = /^"[\x21\x23-\x7e]+"$/;

describe('inventory-app conditional GET (ETag, If-None-Match, Cache-Control)', () => {
  let testDb: TestDatabase;
  let app: Koa;

  before(async () => {
    testDb = await freshDatabase(inventorySchema);
    app = createApp({ db: testDb.db, config: { bodyLimit: '16kb' }, logger: silentLogger() });
  });
  after(async () => {
    await testDb?.db.destroy();
  });
  beforeEach(async () => {
    await testDb.truncate('movies');
  });

  const http = () => contractRequest(app.callback(), 'inventory');
  const create = async (title: string) => (await http().post('/api/movies').send({ title, description: `About ${title}` }).expect(200)).body;

  function expectNotModified(res: request.Response, etag: string): void {
    assert.equal(res.status, 304, `expected 304, got ${res.status}: ${res.text}`);
    assert.equal(res.headers.etag, etag);
    assert.equal(res.headers['cache-control'], 'no-cache');
    assert.ok(!res.text, 'a 304 has no body');
    assert.equal(res.headers['content-type'], undefined);
    assert.equal(res.headers['content-length'], undefined);
  }

  describe('GET /api/movies/:id', () => {
    it('sends a strong ETag and Cache-Control: no-cache, the same for GET and HEAD', async () => {
      const movie = await create('Heat');
      const get = await http().get(`/api/movies/${movie.id}`).expect(200);
      assert.match(get.headers.etag, STRONG_TAG);
      assert.equal(get.headers['cache-control'], 'no-cache');
      assert.deepEqual(get.body, movie);
      const again = await http().get(`/api/movies/${movie.id}/`).expect(200);
      assert.equal(again.headers.etag, get.headers.etag);
      const head = await http().head(`/api/movies/${movie.id}`).expect(200);
      assert.equal(head.headers.etag, get.headers.etag);
      assert.equal(head.headers['content-length'], get.headers['content-length']);
    });

    it('answers 304 without a body when If-None-Match holds the current tag, also weak or in a list', async () => {
      const movie = await create('Heat');
      const etag = (await http().get(`/api/movies/${movie.id}`).expect(200)).headers.etag as string;
      for (const header of [etag, `W/${etag}`, `"nope", ${etag}`, `"a",W/"b" ,  ${etag}`, '*']) {
        expectNotModified(await http().get(`/api/movies/${movie.id}`).set('If-None-Match', header), etag);
        expectNotModified(await http().head(`/api/movies/${movie.id}`).set('If-None-Match', header), etag);
      }
    });

    it('answers 200 with the new movie and a new tag once it changed', async () => {
      const movie = await create('Heat');
      const etag = (await http().get(`/api/movies/${movie.id}`).expect(200)).headers.etag as string;
      await http().put(`/api/movies/${movie.id}`).send({ description: 'changed' }).expect(200);
      const res = await http().get(`/api/movies/${movie.id}`).set('If-None-Match', etag).expect(200);
      assert.equal(res.body.description, 'changed');
      assert.notEqual(res.headers.etag, etag);
      // Another movie with other content has another tag.
      const other = await create('Ronin');
      const otherTag = (await http().get(`/api/movies/${other.id}`).expect(200)).headers.etag;
      assert.notEqual(otherTag, res.headers.etag);
    });

    it('gives a movie recreated under the same id (table emptied, ids restarted) a new tag', async () => {
      const movie = await create('Heat');
      const etag = (await http().get(`/api/movies/${movie.id}`).expect(200)).headers.etag as string;
      await testDb.truncate('movies');
      const again = await create('Ronin');
      assert.equal(again.id, 1);
      assert.equal(movie.id, 1);
      const res = await http().get(`/api/movies/${again.id}`).set('If-None-Match', etag).expect(200);
      assert.equal(res.body.title, 'Ronin');
      assert.notEqual(res.headers.etag, etag);
    });

    it('answers 404, not 304, for a missing movie even with If-None-Match: *', async () => {
      const res = await http().get('/api/movies/424242').set('If-None-Match', '*');
      assert.equal(res.status, 404);
      assert.equal(res.body.error.code, 'not_found');
      assert.equal(res.headers.etag, undefined);
    });

    it('ignores an If-None-Match that matches nothing or is malformed', async () => {
      const movie = await create('Heat');
      for (const header of ['"other"', 'W/"other"', 'garbage', '', '**']) {
        const res = await http().get(`/api/movies/${movie.id}`).set('If-None-Match', header);
        assert.equal(res.status, 200, `If-None-Match: ${header}`);
        assert.deepEqual(res.body, movie);
      }
    });
  });

  describe('GET /api/movies (whole list and pages)', () => {
    it('tags the list and answers 304 until any movie changes', async () => {
      await create('Heat');
      const first = await http().get('/api/movies').expect(200);
      const etag = first.headers.etag as string;
      assert.match(etag, STRONG_TAG);
      assert.equal(first.headers['cache-control'], 'no-cache');
      expectNotModified(await http().get('/api/movies').set('If-None-Match', etag), etag);
      expectNotModified(await http().head('/api/movies/').set('If-None-Match', `W/${etag}`), etag);
      expectNotModified(await http().get('/api/movies?title=he').set('If-None-Match', '*'), etag);

      for (const write of [
        () => create('Ronin'),
        async () => http().put(`/api/movies/${first.body[0].id}`).send({ title: 'Heat (1995)' }).expect(200),
        async () => http().delete(`/api/movies/${first.body[0].id}`).expect(200),
        async () => http().delete('/api/movies').expect(200),
      ]) {
        const before = (await http().get('/api/movies').expect(200)).headers.etag as string;
        await write();
        const after = await http().get('/api/movies').set('If-None-Match', before);
        assert.equal(after.status, 200);
        assert.notEqual(after.headers.etag, before);
      }
    });

    it('answers a page with a tag, and 304 without Link or X-Total-Count when it is current', async () => {
      for (const title of ['A', 'B', 'C']) await create(title);
      const page = await http().get('/api/movies?limit=2').expect(200);
      const etag = page.headers.etag as string;
      assert.match(etag, STRONG_TAG);
      assert.ok(page.headers.link);
      const res = await http().get('/api/movies?limit=2').set('If-None-Match', etag);
      expectNotModified(res, etag);
      assert.equal(res.headers.link, undefined);
      assert.equal(res.headers['x-total-count'], undefined);
      await create('D');
      const changed = await http().get('/api/movies?limit=2').set('If-None-Match', etag).expect(200);
      assert.equal(changed.headers['x-total-count'], '4');
    });

    it('puts no ETag on errors', async () => {
      const res = await http().get('/api/movies?limit=0').set('If-None-Match', '*');
      assert.equal(res.status, 400);
      assert.equal(res.headers.etag, undefined);
    });
  });
});

describe('movies entity tags (unit)', () => {
  it('compares weakly, as If-None-Match requires (RFC 9110 13.1.2)', () => {
    assert.equal(ifNoneMatchMatches('"abc"', '"abc"'), true);
    assert.equal(ifNoneMatchMatches('W/"abc"', '"abc"'), true);
    assert.equal(ifNoneMatchMatches('"abc"', 'W/"abc"'), true);
    assert.equal(ifNoneMatchMatches(' "x" ,W/"abc"', '"abc"'), true);
    assert.equal(ifNoneMatchMatches('*', '"abc"'), true);
    assert.equal(ifNoneMatchMatches('"abcd"', '"abc"'), false);
    assert.equal(ifNoneMatchMatches('abc', '"abc"'), false);
    assert.equal(ifNoneMatchMatches('"ab"c"', '"abc"'), false);
    assert.equal(ifNoneMatchMatches(undefined, '"abc"'), false);
    assert.equal(ifNoneMatchMatches('', '"abc"'), false);
  });

  it('makes strong tags: by row version for a movie, by table version for lists', () => {
    assert.match(rowTag(1, '0123abcd.745'), STRONG_TAG);
    assert.equal(rowTag(1, '0123abcd.745'), '"r1.1.0123abcd.745"');
    assert.notEqual(rowTag(1, '0123abcd.745'), rowTag(2, '0123abcd.745'));
    assert.equal(listTag('0123abcd.42'), '"l1.0123abcd.42"');
  });
});
