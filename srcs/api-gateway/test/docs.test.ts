import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { createApp, type Gateway } from '../src/app';
import { createDocsRouter, findSpecFile } from '../src/docs';
import { silentLogger } from '../../../test/support/silent-logger';
import { contractRequest } from '../../../test/support/contract';

const SPEC = path.resolve(__dirname, '..', '..', '..', 'openapi.yaml');

describe('api-gateway documentation: /openapi.yaml and /api/docs', () => {
  let agent: http.Agent;
  let app: Gateway;

  before(() => {
    agent = new http.Agent();
    app = createApp({
      // Nothing listens on port 9: the documentation must not depend on the inventory.
      config: { inventoryUrl: 'http://127.0.0.1:9', upstreamTimeoutMs: 1000 },
      logger: silentLogger(),
      inventoryAgent: agent,
      routers: [createDocsRouter({ specFile: SPEC })],
    });
  });
  after(() => agent.destroy());

  const client = () => contractRequest(app.callback());

  it('finds openapi.yaml at the repository root from the gateway\'s folders', () => {
    assert.equal(findSpecFile(path.resolve(__dirname, '..', 'src')), SPEC);
    assert.equal(findSpecFile(path.resolve(__dirname, '..', 'dist')), SPEC);
  });

  it('serves openapi.yaml byte for byte, as YAML, to be revalidated', async () => {
    const res = await client().get('/openapi.yaml').buffer(true).parse((r, done) => {
      const chunks: Buffer[] = [];
      r.on('data', (c: Buffer) => chunks.push(c));
      r.on('end', () => done(null, Buffer.concat(chunks)));
    }).expect(200);
    assert.match(String(res.headers['content-type']), /^application\/yaml/);
    assert.equal(res.headers['cache-control'], 'no-cache');
    assert.ok(Buffer.isBuffer(res.body) && res.body.equals(fs.readFileSync(SPEC)), 'the body is openapi.yaml');
  });

  it('serves the Swagger UI page, with and without a trailing slash, loading only files of its own', async () => {
    for (const url of ['/api/docs', '/api/docs/']) {
      const res = await client().get(url).expect(200);
      assert.match(String(res.headers['content-type']), /^text\/html/);
      assert.match(String(res.headers['content-security-policy']), /default-src 'self'/);
      const urls = [...res.text.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1] as string);
      assert.ok(urls.length >= 4, res.text);
      for (const asset of urls) {
        assert.match(asset, /^\/api\/docs\/[a-z0-9.-]+$/, `${asset} is a file of the gateway's own`);
        const file = await client().get(asset).expect(200);
        assert.equal(file.headers['cache-control'], 'public, max-age=86400');
      }
    }
  });

  it('points Swagger UI at /openapi.yaml, with the online validator off', async () => {
    const res = await client().get('/api/docs/swagger-initializer.js').expect(200);
    assert.match(String(res.headers['content-type']), /^text\/javascript/);
    assert.match(res.text, /url: '\/openapi.yaml'/);
    assert.match(res.text, /validatorUrl: null/);
  });

  it('answers 404 JSON for a file it does not have, and 405 for other methods', async () => {
    const res = await client().get('/api/docs/../../.env').expect(404);
    assert.equal(res.body.error.code, 'not_found');
    await client().get('/api/docs/index.html').expect(404);
    await client().post('/api/docs').expect(405);
  });
});
