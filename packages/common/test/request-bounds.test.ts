import assert from 'node:assert/strict';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import zlib from 'node:zlib';
import Koa from 'koa';
import request from 'supertest';
import { closeServer, listen } from '../src/http-server';
import { errorMiddleware } from '../src/error-middleware';
import { jsonBody, requestBody } from '../src/json-body';
import { stringifyJson } from '../src/lossless-json';
import { boundForLog, boundRequestTarget, canonicalPathOnly, isCanonicalPath } from '../src/request-bounds';
import { requestContext } from '../src/request-context';
import { captureLogger } from '../../../test/support/capture-logger';

/** A small app with the common middleware, echoing the parsed body (numbers as sent). */
function app(logs = captureLogger('test')) {
  const koa = new Koa();
  koa.silent = true;
  koa.use(requestContext(logs.logger));
  koa.use(errorMiddleware(logs.logger));
  koa.use(boundRequestTarget());
  koa.use(canonicalPathOnly());
  koa.use(jsonBody({ limit: '1kb' }));
  koa.use((ctx) => {
    ctx.body = { got: stringifyJson(requestBody(ctx)) };
  });
  return koa;
}

describe('common request bounds', () => {
  it('tells canonical paths from those parsers read differently', () => {
    const canonical = ['/', '/api/movies', '/api/movies/', '/api/movies/12', '/api/movies/12/', '/api/movies/a.b', '/api/movies/...'];
    const not = ['//api/movies', '/api//movies', '/api/movies//', '/api/movies/.', '/api/movies/..', '/api/movies/%2e%2E', '/api/movies/.%2e/x', '/api/movies%2F1', '/api/movies/1%5c', '/api\\movies'];
    assert.deepEqual(canonical.filter((p) => !isCanonicalPath(p)), []);
    assert.deepEqual(not.filter((p) => isCanonicalPath(p)), []);
  });

  it('cuts a long value for a log line and says how long it was', () => {
    assert.equal(boundForLog('short'), 'short');
    const cut = boundForLog('x'.repeat(5000));
    assert.equal(cut, `${'x'.repeat(256)}…(5000 chars)`);
  });

  it('answers 414 for a request target over 8192 characters, 404 for a path that is not canonical, and logs at most 256 characters of a path', async () => {
    const logs = captureLogger('test');
    const http = () => request(app(logs).callback());
    const res = await http().get(`/${'a'.repeat(9000)}`).expect(414);
    assert.equal(res.body.error.code, 'uri_too_long');
    await http().get('/api/movies/%2e%2e/metrics').expect(404);
    await http().get(`/${'b'.repeat(5000)}`).expect(200);
    const paths = logs.lines().filter((l) => l.msg === 'request').map((l) => String(l.path));
    assert.ok(paths.every((p) => p.length < 300), paths.map((p) => p.length).join(','));
  });

  it('takes application/json in UTF-8 only, uncompressed, each key once, numbers as sent', async () => {
    const http = () => request(app().callback());
    const post = (type: string | undefined, body: string | Buffer, encoding?: string) => {
      const r = http().post('/x');
      if (type) r.set('Content-Type', type);
      if (encoding) r.set('Content-Encoding', encoding);
      // As is: superagent would serialise a Buffer as JSON itself.
      return r.serialize((data: unknown) => data as string).send(body as string);
    };
    assert.equal((await post('application/json', '{"n":0.1000000000000000000001}').expect(200)).body.got, '{"n":0.1000000000000000000001}');
    await post('application/json; charset=UTF-8', '{}').expect(200);
    for (const type of ['application/json; charset=utf-16', 'application/merge-patch+json', 'text/plain', 'application/jsonx']) {
      assert.equal((await post(type, '{}').expect(415)).body.error.code, 'unsupported_media_type', type);
    }
    for (const encoding of ['gzip', 'deflate', 'br', 'x-unknown']) {
      await post('application/json', zlib.gzipSync('{}'), encoding).expect(415);
    }
    assert.equal((await post('application/json', '{"a":1,"a":2}').expect(400)).body.error.code, 'invalid_json');
    assert.equal((await post('application/json', Buffer.from([0x7b, 0xff, 0x7d])).expect(400)).body.error.code, 'invalid_json');
    assert.equal((await post('application/json', '['.repeat(500) + ']'.repeat(500)).expect(200)).status, 200);
    assert.equal((await post('application/json', `"${'x'.repeat(2000)}"`).expect(413)).body.error.code, 'payload_too_large');
  });

  it('discards the rest of a body past the limit, so the next request on the keep-alive connection is answered', async () => {
    const server = await listen(app().callback(), { host: '127.0.0.1', port: 0 });
    try {
      const answers = await new Promise<string>((resolve, reject) => {
        const socket = net.connect((server.address() as AddressInfo).port, '127.0.0.1', () => {
          const chunk = `{"pad":"${'x'.repeat(4_000_000)}"}`;
          socket.write(`POST /x HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`);
          socket.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n0\r\n\r\n`);
          socket.write('GET /next HTTP/1.1\r\nHost: x\r\n\r\n');
        });
        let data = '';
        socket.on('data', (c: Buffer) => {
          data += c.toString();
          if ((data.match(/HTTP\/1\.1 /g) ?? []).length >= 2 && data.endsWith('}')) socket.end();
        });
        socket.on('close', () => resolve(data));
        socket.on('error', reject);
        setTimeout(() => socket.destroy(), 3000).unref();
      });
      const statuses = [...answers.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]);
      assert.deepEqual(statuses, ['413', '200'], answers.slice(0, 300));
    } finally {
      await closeServer(server, 200);
    }
  });

  it('answers oversized headers with a JSON 431 and a request id, then closes the connection', async () => {
    const server = await listen(app().callback(), { host: '127.0.0.1', port: 0, maxHeaderSize: 4096 });
    try {
      const answer = await new Promise<string>((resolve, reject) => {
        const socket = net.connect((server.address() as AddressInfo).port, '127.0.0.1', () => {
          socket.write(`GET / HTTP/1.1\r\nHost: x\r\nX-Filler: ${'a'.repeat(8000)}\r\n\r\n`);
        });
        let data = '';
        socket.on('data', (chunk: Buffer) => (data += chunk.toString()));
        socket.on('close', () => resolve(data));
        socket.on('error', reject);
      });
      assert.match(answer, /^HTTP\/1\.1 431 /);
      assert.match(answer, /\r\nX-Request-Id: [0-9a-f-]{36}\r\n/);
      const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as { error: { code: string } };
      assert.equal(body.error.code, 'headers_too_large');
    } finally {
      await closeServer(server, 200);
    }
  });
});
