import assert from 'node:assert/strict';
import request from 'supertest';
import type Koa from 'koa';
import { createApp } from '../src/app';
import { inventorySchema } from '../src/db/schema';
import { freshDatabase, type TestDatabase } from '../../../test/support/databases';
import { silentLogger } from '../../../test/support/silent-logger';
import { contractRequest } from '../../../test/support/contract';

describe('inventory-app movies API', () => {
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
  const create = async (movie: Record<string, unknown>) => (await http().post('/api/movies').send(movie).expect(200)).body;
  const countRows = async () => Number((await testDb.db('movies').count({ n: '*' }))[0]?.n);

  function expectError(res: request.Response, status: number, code: string): void {
    assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${res.text}`);
    assert.match(String(res.headers['content-type']), /^application\/json/);
    assert.equal(res.body.error.code, code);
    assert.equal(typeof res.body.error.message, 'string');
    assert.ok(res.body.error.message.length > 0);
  }

  describe('POST /api/movies', () => {
    it('answers 200 with the created movie and a Location header', async () => {
      const res = await http()
        .post('/api/movies/')
        .send({ title: 'A new movie', description: 'Very short description' })
        .expect(200);
      assert.equal(res.body.title, 'A new movie');
      assert.equal(res.body.description, 'Very short description');
      assert.ok(Number.isInteger(res.body.id) && res.body.id > 0);
      assert.equal(res.headers.location, `/api/movies/${res.body.id}`);
      const row = await testDb.db('movies').where({ id: res.body.id }).first();
      assert.equal(row.title, 'A new movie');
    });

    it('stores an empty description when none is given, and trims the title', async () => {
      const movie = await create({ title: '  Alien  ' });
      assert.deepEqual(movie, { id: movie.id, title: 'Alien', description: '' });
    });

    const invalid: Array<[string, unknown, RegExp]> = [
      ['a missing title', { description: 'x' }, /title: is required/],
      ['an empty title', { title: '' }, /title: must not be empty/],
      ['a blank title', { title: '   ' }, /title: must not be empty/],
      ['a title that is not a string', { title: 42 }, /title: must be a string/],
      ['a title over 255 characters', { title: 'x'.repeat(256) }, /title: must be at most 255/],
      ['a description that is not a string', { title: 'T', description: ['no'] }, /description: must be a string/],
      ['an unknown field', { title: 'T', rating: 5 }, /rating: unknown field/],
      ['a JSON array', [{ title: 'T' }], /must be a JSON object/],
      ['a JSON null', null, /must be a JSON object/],
    ];
    for (const [what, body, message] of invalid) {
      it(`answers 400 for ${what} and writes nothing`, async () => {
        const res = await http().post('/api/movies').set('Content-Type', 'application/json').send(JSON.stringify(body));
        expectError(res, 400, 'validation_error');
        assert.match(res.body.error.message, message);
        assert.equal(await countRows(), 0);
      });
    }

    it('answers 400 invalid_json for malformed JSON', async () => {
      const res = await http().post('/api/movies').set('Content-Type', 'application/json').send('{"title": "oops"');
      expectError(res, 400, 'invalid_json');
      assert.equal(await countRows(), 0);
    });

    it('answers 400 when there is no body at all', async () => {
      const res = await http().post('/api/movies');
      expectError(res, 400, 'validation_error');
    });

    it('answers 415 for a body that is not JSON', async () => {
      const res = await http().post('/api/movies').set('Content-Type', 'text/plain').send('title=Alien');
      expectError(res, 415, 'unsupported_media_type');
      assert.equal(await countRows(), 0);
    });

    it('answers 413 for a body over the 16 kB limit', async () => {
      const res = await http()
        .post('/api/movies')
        .set('Content-Type', 'application/json')
        .send(JSON.stringify({ title: 'Big', description: 'x'.repeat(20_000) }));
      expectError(res, 413, 'payload_too_large');
      assert.equal(await countRows(), 0);
    });
  });

  describe('GET /api/movies', () => {
    it('lists every movie in id order, with and without a trailing slash', async () => {
      const a = await create({ title: 'Heat', description: '1995' });
      const b = await create({ title: 'Ronin', description: '1998' });
      for (const path of ['/api/movies', '/api/movies/']) {
        const res = await http().get(path).expect(200);
        assert.deepEqual(res.body, [a, b]);
      }
    });

    it('answers an empty array when there are no movies', async () => {
      const res = await http().get('/api/movies').expect(200);
      assert.deepEqual(res.body, []);
    });

    it('filters by ?title= case-insensitively, anywhere in the title', async () => {
      const godfather = await create({ title: 'The Godfather' });
      const part2 = await create({ title: 'The Godfather Part II' });
      await create({ title: 'Goodfellas' });
      const res = await http().get('/api/movies').query({ title: 'GODFATHER' }).expect(200);
      assert.deepEqual(res.body, [godfather, part2]);
      const inner = await http().get('/api/movies/').query({ title: 'father p' }).expect(200);
      assert.deepEqual(inner.body, [part2]);
    });

    it('takes % and _ in ?title= literally, not as wildcards', async () => {
      const percent = await create({ title: '100% Wolf' });
      const underscore = await create({ title: 'snake_case' });
      await create({ title: '1000 Wolves' });
      await create({ title: 'snakeXcase' });
      assert.deepEqual((await http().get('/api/movies').query({ title: '0%' }).expect(200)).body, [percent]);
      assert.deepEqual((await http().get('/api/movies').query({ title: 'e_c' }).expect(200)).body, [underscore]);
      assert.deepEqual((await http().get('/api/movies').query({ title: '%' }).expect(200)).body, [percent]);
      assert.deepEqual((await http().get('/api/movies').query({ title: '\\' }).expect(200)).body, []);
    });

    it('answers 400 when ?title= is given twice', async () => {
      const res = await http().get('/api/movies?title=a&title=b');
      expectError(res, 400, 'validation_error');
    });

    it('answers HEAD like GET, without a body', async () => {
      await create({ title: 'Heat' });
      const get = await http().get('/api/movies').expect(200);
      const head = await http().head('/api/movies').expect(200);
      assert.equal(head.headers['content-length'], get.headers['content-length']);
      assert.equal(head.text, undefined);
    });
  });

  describe('DELETE /api/movies', () => {
    it('deletes every movie and says how many', async () => {
      await create({ title: 'One' });
      await create({ title: 'Two' });
      const res = await http().delete('/api/movies/').expect(200);
      assert.deepEqual(res.body, { deleted: 2 });
      assert.equal(await countRows(), 0);
    });
  });

  describe('GET /api/movies/:id', () => {
    it('returns the movie, with and without a trailing slash', async () => {
      const movie = await create({ title: 'Heat', description: 'Mann' });
      assert.deepEqual((await http().get(`/api/movies/${movie.id}`).expect(200)).body, movie);
      assert.deepEqual((await http().get(`/api/movies/${movie.id}/`).expect(200)).body, movie);
      await http().head(`/api/movies/${movie.id}`).expect(200);
    });

    it('answers 404 for a movie that does not exist', async () => {
      const res = await http().get('/api/movies/999999');
      expectError(res, 404, 'not_found');
      assert.match(res.body.error.message, /999999/);
    });

    it('answers 404 for an id beyond the integer column, without a database error', async () => {
      expectError(await http().get('/api/movies/99999999999999999999'), 404, 'not_found');
      expectError(await http().put('/api/movies/2147483648').send({ title: 'x' }), 404, 'not_found');
      expectError(await http().delete('/api/movies/2147483648'), 404, 'not_found');
    });

    for (const bad of ['abc', '0', '-1', '1.5', '1e3', '01', '%20']) {
      it(`answers 400 for the id "${bad}"`, async () => {
        expectError(await http().get(`/api/movies/${bad}`), 400, 'validation_error');
      });
    }
  });

  describe('PUT /api/movies/:id', () => {
    it('updates only the fields given', async () => {
      const movie = await create({ title: 'Heat', description: 'old' });
      const res = await http().put(`/api/movies/${movie.id}`).send({ description: 'new' }).expect(200);
      assert.deepEqual(res.body, { id: movie.id, title: 'Heat', description: 'new' });
      const again = await http().put(`/api/movies/${movie.id}/`).send({ title: 'Heat (1995)' }).expect(200);
      assert.deepEqual(again.body, { id: movie.id, title: 'Heat (1995)', description: 'new' });
      assert.deepEqual((await http().get(`/api/movies/${movie.id}`)).body, again.body);
    });

    it('validates what it is given and changes nothing on 400', async () => {
      const movie = await create({ title: 'Heat', description: 'old' });
      expectError(await http().put(`/api/movies/${movie.id}`).send({ title: '' }), 400, 'validation_error');
      expectError(await http().put(`/api/movies/${movie.id}`).send({ year: 1995 }), 400, 'validation_error');
      expectError(await http().put(`/api/movies/${movie.id}`).send({}), 400, 'validation_error');
      expectError(
        await http().put(`/api/movies/${movie.id}`).set('Content-Type', 'text/plain').send('x'),
        415,
        'unsupported_media_type',
      );
      assert.deepEqual((await http().get(`/api/movies/${movie.id}`)).body, movie);
    });

    it('answers 404 for a movie that does not exist', async () => {
      expectError(await http().put('/api/movies/424242').send({ title: 'x' }), 404, 'not_found');
    });
  });

  describe('DELETE /api/movies/:id', () => {
    it('deletes the movie and returns it; a second delete is 404', async () => {
      const keep = await create({ title: 'Keep' });
      const movie = await create({ title: 'Gone' });
      assert.deepEqual((await http().delete(`/api/movies/${movie.id}`).expect(200)).body, movie);
      expectError(await http().delete(`/api/movies/${movie.id}`), 404, 'not_found');
      assert.deepEqual((await http().get('/api/movies')).body, [keep]);
    });
  });

  describe('methods and paths that do not exist', () => {
    it('answers 405 with Allow for a method the collection does not support', async () => {
      const res = await http().patch('/api/movies');
      expectError(res, 405, 'method_not_allowed');
      assert.deepEqual(String(res.headers.allow).split(/,\s*/).sort(), ['DELETE', 'GET', 'HEAD', 'POST']);
    });

    it('answers 405 with Allow for a method one movie does not support', async () => {
      const res = await http().post('/api/movies/1');
      expectError(res, 405, 'method_not_allowed');
      assert.deepEqual(String(res.headers.allow).split(/,\s*/).sort(), ['DELETE', 'GET', 'HEAD', 'PUT']);
    });

    it('answers 404 JSON for an unknown path', async () => {
      expectError(await http().get('/api/nothing'), 404, 'not_found');
      expectError(await http().get('/api/movies/1/extra'), 404, 'not_found');
    });
  });
});
