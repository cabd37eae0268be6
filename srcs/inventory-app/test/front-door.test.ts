import assert from 'node:assert/strict';
import type http from 'node:http';
import type { Context, Next } from 'koa';
import { addressOf, closeServer, createDatabase, createHttpMetrics, listen, type HttpMetrics } from '@crud-master/common';
import { createApp, type InventoryApp } from '../src/app';
import { inventorySchema } from '../src/db/schema';
import { freshDatabase, type TestDatabase } from '../../../test/support/databases';
import { captureLogger, type CapturedLogs } from '../../../test/support/capture-logger';
import { rawRequest, type RawRequest, type RawResponse } from '../../../test/support/http';
import { freePort } from '../../../test/harness/processes';

/** One inventory app served twice: through its front door (`callback()`) and through the Koa stack alone. */
interface Pair {
  app: InventoryApp;
  /** Paths the Koa stack saw. */
  seen: string[];
  front: { server: http.Server; url: string; logs: CapturedLogs; metrics: HttpMetrics };
  stack: { server: http.Server; url: string; logs: CapturedLogs; metrics: HttpMetrics };
}

async function servePair(db: TestDatabase['db']): Promise<Pair> {
  const side = async (useFrontDoor: boolean, seen: string[]) => {
    const logs = captureLogger('inventory-app');
    const metrics = createHttpMetrics({ service: 'inventory-app' });
    const app = createApp({ db, config: { bodyLimit: '16kb' }, logger: logs.logger, metrics });
    // Koa composes its middleware when the handler is made: this one sees every request Koa handles.
    app.middleware.unshift((ctx: Context, next: Next) => {
      seen.push(ctx.path);
      return next();
    });
    const handler = (useFrontDoor ? app.callback() : app.stackCallback()) as http.RequestListener;
    const server = await listen(handler, { host: '127.0.0.1', port: 0 });
    return { app, server, url: addressOf(server), logs, metrics };
  };
  const seen: string[] = [];
  const front = await side(true, seen);
  const stack = await side(false, []);
  return { app: front.app, seen, front, stack };
}

/** The response as it came off the wire, minus what differs by nature between two answers (Date). */
function wire(res: RawResponse): { status: number; headers: string[]; body: string } {
  const headers: string[] = [];
  for (let i = 0; i < res.rawHeaders.length; i += 2) {
    if (res.rawHeaders[i]?.toLowerCase() === 'date') continue;
    headers.push(`${res.rawHeaders[i]}: ${res.rawHeaders[i + 1]}`);
  }
  return { status: res.status, headers, body: res.body.toString('utf8') };
}

/** Access lines without the fields that differ by nature (time, duration, process). */
function accessLines(logs: CapturedLogs): Array<Record<string, unknown>> {
  return logs.lines().map(({ time: _t, durationMs: _d, pid: _p, hostname: _h, ...rest }) => rest);
}

async function requestCounts(metrics: HttpMetrics): Promise<string[]> {
  const text = await metrics.registry.metrics();
  return text.split('\n').filter((l) => l.startsWith('http_requests_total{') || l.startsWith('http_request_duration_seconds_count{'));
}

describe('inventory-app front door: GET /api/movies/:id answered before Koa, as Koa would', () => {
  let testDb: TestDatabase;
  let pair: Pair;
  let id = 0;
  let etag = '';

  before(async () => {
    testDb = await freshDatabase(inventorySchema);
    pair = await servePair(testDb.db);
    const created = await rawRequest(pair.front.url, { method: 'POST', path: '/api/movies', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ title: 'Front "door"', description: 'Ünïcode\nand quotes' }) });
    id = (JSON.parse(created.body.toString('utf8')) as { id: number }).id;
    etag = String((await rawRequest(pair.front.url, { path: `/api/movies/${id}` })).headers.etag);
  });
  after(async () => {
    if (pair) for (const side of [pair.front, pair.stack]) await closeServer(side.server);
    await testDb?.db.destroy();
  });

  const both = async (req: RawRequest) => {
    const withId = { ...req, headers: { 'X-Request-Id': 'same-id-1', ...req.headers } };
    return [wire(await rawRequest(pair.front.url, withId)), wire(await rawRequest(pair.stack.url, withId))] as const;
  };

  it('answers byte for byte as the Koa stack: 200, 304, 404, a trailing slash, a query string, request ids', async () => {
    const cases: RawRequest[] = [
      { path: `/api/movies/${id}` },
      { path: `/api/movies/${id}/` },
      { path: `/api/movies/${id}?fields=all&x=%20` },
      { path: `/api/movies/${id}`, headers: { 'If-None-Match': etag } },
      { path: `/api/movies/${id}/`, headers: { 'If-None-Match': `"x", W/${etag}` } },
      { path: `/api/movies/${id}`, headers: { 'If-None-Match': '*' } },
      { path: `/api/movies/${id}`, headers: { 'If-None-Match': '"r1.other"' } },
      { path: `/api/movies/${id + 1000}` },
      { path: '/api/movies/2147483647' },
      { path: `/api/movies/${id}`, headers: { 'X-Request-Id': 'a.b_c:d@e-f' } },
    ];
    const before = pair.seen.length;
    for (const req of cases) {
      const [front, stack] = await both(req);
      assert.deepEqual(front, stack, `${req.path} ${JSON.stringify(req.headers ?? {})}`);
    }
    assert.equal(pair.seen.length, before, 'none of these reached the Koa stack behind the front door');
    const [ok] = await both({ path: `/api/movies/${id}` });
    assert.equal(ok.status, 200);
    assert.deepEqual(JSON.parse(ok.body), { id, title: 'Front "door"', description: 'Ünïcode\nand quotes' });
  });

  it('makes a request id for a missing or insane one, as the Koa stack does', async () => {
    for (const headers of [{} as Record<string, string>, { 'X-Request-Id': 'has space' }, { 'X-Request-Id': 'x'.repeat(129) }]) {
      const front = await rawRequest(pair.front.url, { path: `/api/movies/${id}`, headers });
      assert.match(String(front.headers['x-request-id']), /^[0-9a-f-]{36}$/);
    }
  });

  it('leaves every other form to the Koa stack: bad ids, other methods, long targets, odd paths', async () => {
    const paths = [`/api/movies/0${id}`, '/api/movies/abc', '/api/movies/12345678901', '/api/movies/3000000000', `/api/movies/${id}//`, `/api/movies/${id}?${'q'.repeat(9000)}`];
    for (const path of paths) {
      pair.seen.length = 0;
      const [front, stack] = await both({ path });
      assert.deepEqual(front, stack, path);
      assert.equal(pair.seen.length, 1, `${path} went to Koa`);
    }
    pair.seen.length = 0;
    const [front, stack] = await both({ method: 'HEAD', path: `/api/movies/${id}` });
    assert.deepEqual(front, stack);
    assert.equal(pair.seen.length, 1, 'HEAD went to Koa');
  });

  it('writes the same access lines and metrics as the Koa stack', async () => {
    const fresh = await servePair(testDb.db);
    try {
      for (const req of [{ path: `/api/movies/${id}` }, { path: `/api/movies/${id}/`, headers: { 'If-None-Match': etag } }, { path: '/api/movies/999999' }]) {
        const headers = { 'X-Request-Id': 'log-check', ...req.headers };
        await rawRequest(fresh.front.url, { ...req, headers });
        await rawRequest(fresh.stack.url, { ...req, headers });
      }
      // The access line is written on 'close', after the client has its answer.
      await new Promise((resolve) => setTimeout(resolve, 50));
      const lines = accessLines(fresh.front.logs);
      assert.equal(lines.length, 3);
      assert.deepEqual(lines, accessLines(fresh.stack.logs));
      assert.deepEqual(
        lines.map((l) => [l.route, l.status, l.path]),
        [['/api/movies/:id', 200, `/api/movies/${id}`], ['/api/movies/:id', 304, `/api/movies/${id}/`], ['/api/movies/:id', 404, '/api/movies/999999']],
      );
      const counts = await requestCounts(fresh.front.metrics);
      assert.equal(counts.length, 6, counts.join('\n'));
      assert.deepEqual(counts, await requestCounts(fresh.stack.metrics));
    } finally {
      for (const side of [fresh.front, fresh.stack]) await closeServer(side.server);
    }
  });

  it('answers the same JSON 503 and logs the same warning when the database is down', async () => {
    const port = await freePort(); // nothing listens there
    const dead = createDatabase({ ...testDb.config, port }, { acquireTimeoutMs: 1000 });
    try {
      const down = await servePair(dead);
      try {
        const [front, stack] = [
          wire(await rawRequest(down.front.url, { path: '/api/movies/1', headers: { 'X-Request-Id': 'down-1' } })),
          wire(await rawRequest(down.stack.url, { path: '/api/movies/1', headers: { 'X-Request-Id': 'down-1' } })),
        ];
        assert.equal(front.status, 503);
        assert.deepEqual(front, stack);
        const warning = (logs: CapturedLogs) => logs.lines().find((l) => l.msg === 'dependency unavailable');
        const [a, b] = [warning(down.front.logs), warning(down.stack.logs)];
        assert.ok(a && b, 'both warn');
        assert.deepEqual([a.level, a.requestId, a.method, a.path, a.status], [b.level, b.requestId, b.method, b.path, b.status]);
      } finally {
        for (const side of [down.front, down.stack]) await closeServer(side.server);
      }
    } finally {
      await dead.destroy();
    }
  });
});
