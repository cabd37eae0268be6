import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import YAML from 'yaml';
import { createApp, type Gateway } from '../src/app';
import { CATALOGUE_CSP, createCatalogueRouter, defaultPublicDir, loadCatalogueAssets } from '../src/catalogue';
import { createDocsRouter } from '../src/docs';
import { silentLogger } from '../../../test/support/silent-logger';
import { contractRequest, SPEC_PATH } from '../../../test/support/contract';

describe('api-gateway catalogue page: GET / and /catalogue/:file', () => {
  let agent: http.Agent;
  let app: Gateway;

  before(() => {
    agent = new http.Agent();
    app = createApp({
      // Nothing listens on port 9: the page itself must not depend on the inventory.
      config: { inventoryUrl: 'http://127.0.0.1:9', upstreamTimeoutMs: 1000 },
      logger: silentLogger(),
      inventoryAgent: agent,
      routers: [createDocsRouter({ specFile: SPEC_PATH }), createCatalogueRouter()],
    });
  });
  after(() => agent.destroy());

  const client = () => contractRequest(app.callback());

  it('serves the page at / with a CSP that allows this origin only and no inline code', async () => {
    const res = await client().get('/').expect(200);
    assert.match(String(res.headers['content-type']), /^text\/html/);
    assert.equal(res.headers['content-security-policy'], CATALOGUE_CSP);
    assert.match(CATALOGUE_CSP, /default-src 'none'/);
    assert.doesNotMatch(CATALOGUE_CSP, /unsafe-inline|unsafe-eval|https?:|\*/);
    assert.equal(res.headers['cache-control'], 'no-cache');
    // No inline script, style or event handler: the CSP would block them.
    assert.doesNotMatch(res.text, /<script(?![^>]*\bsrc=)[^>]*>/);
    assert.doesNotMatch(res.text, /<style|\sstyle=|\son[a-z]+=/i);
    await client().head('/').expect(200);
  });

  it('serves every file the page and its modules load, from the gateway itself', async () => {
    const page = (await client().get('/').expect(200)).text;
    const wanted = new Set([...page.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1] as string));
    for (const name of fs.readdirSync(defaultPublicDir()).filter((f) => f.endsWith('.js'))) {
      const source = fs.readFileSync(path.join(defaultPublicDir(), name), 'utf8');
      for (const m of source.matchAll(/^import .* from '\.\/([a-z0-9-]+\.js)';$/gm)) wanted.add(`/catalogue/${m[1]}`);
    }
    assert.ok(wanted.size >= 8, [...wanted].join(' '));
    for (const url of wanted) {
      assert.match(url, /^\/catalogue\/[a-z0-9-]+\.(js|css|svg)$/, `${url} is a file of the gateway's own`);
      const res = await client().get(url).expect(200);
      assert.equal(res.headers['cache-control'], 'no-cache');
      if (url.endsWith('.js')) assert.match(String(res.headers['content-type']), /^text\/javascript/);
    }
  });

  it('lists in openapi.yaml exactly the files it serves', () => {
    const spec = YAML.parse(fs.readFileSync(SPEC_PATH, 'utf8'));
    const documented = spec.paths['/catalogue/{file}'].get.parameters[0].schema.enum as string[];
    assert.deepEqual([...documented].sort(), [...loadCatalogueAssets(defaultPublicDir()).keys()].sort());
  });

  it('answers 404 JSON for a file it does not have, and 405 for other methods', async () => {
    for (const url of ['/catalogue/index.html', '/catalogue/..%2F..%2Fpackage.json', '/catalogue/nope.js', '/catalogue/']) {
      const res = await client().get(url).expect(404);
      assert.equal(res.body.error.code, 'not_found');
    }
    const res = await client().post('/').send({}).expect(405);
    assert.equal(res.body.error.code, 'method_not_allowed');
    await client().delete('/catalogue/main.js').expect(405);
  });

  it('leaves the other routes as they were', async () => {
    await client().get('/api/docs').expect(200);
    await client().get('/openapi.yaml').expect(200);
    const health = await client().get('/health').expect(503);
    assert.equal(health.body.checks.inventory.status, 'down');
    await client().get('/nothing-here').expect(404);
  });
});
