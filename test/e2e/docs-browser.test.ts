/**
 * The Swagger UI page in a real browser: Debian's headless Chromium driven by playwright-core.
 * It opens /api/docs on a gateway in front of a real inventory, sees every documented operation
 * listed, runs "Try it out" on GET /api/movies and sees a 200, and loads nothing from anywhere
 * but the gateway. A screenshot is kept in .test-artifacts/ (gitignored).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { addressOf, closeServer, listen } from '@crud-master/common';
import { createApp as createInventoryApp } from '../../srcs/inventory-app/src/app';
import { inventorySchema } from '../../srcs/inventory-app/src/db/schema';
import { createApp as createGatewayApp } from '../../srcs/api-gateway/src/app';
import { createDocsRouter } from '../../srcs/api-gateway/src/docs';
import { freshDatabase, type TestDatabase } from '../support/databases';
import { silentLogger } from '../support/silent-logger';
import { contract, SPEC_PATH } from '../support/contract';
import { ARTIFACTS, launchChromium, type Chromium } from '../support/chromium';

describe('Swagger UI at /api/docs in headless Chromium', function () {
  this.timeout(120_000);
  let testDb: TestDatabase;
  let inventory: http.Server;
  let gateway: http.Server;
  let agent: http.Agent;
  let gatewayUrl: string;
  let chromium: Chromium | undefined;

  before(async function () {
    testDb = await freshDatabase(inventorySchema);
    inventory = await listen(createInventoryApp({ db: testDb.db, config: { bodyLimit: '16kb' }, logger: silentLogger() }).callback(), {
      host: '127.0.0.1',
      port: 0,
    });
    agent = new http.Agent({ keepAlive: true });
    const app = createGatewayApp({
      config: { inventoryUrl: addressOf(inventory), upstreamTimeoutMs: 5000 },
      logger: silentLogger(),
      inventoryAgent: agent,
      routers: [createDocsRouter({ specFile: SPEC_PATH })],
    });
    gateway = await listen(app.callback(), { host: '127.0.0.1', port: 0 });
    gatewayUrl = addressOf(gateway);
    const created = await fetch(`${gatewayUrl}/api/movies`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ title: 'Seen through Swagger UI', description: 'Created by the browser test' }),
    });
    assert.equal(created.status, 200);

    chromium = await launchChromium();
  });

  after(async () => {
    await chromium?.close();
    agent?.destroy();
    if (gateway) await closeServer(gateway, 200);
    if (inventory) await closeServer(inventory, 200);
    await testDb?.db.destroy();
  });

  it('lists every operation of openapi.yaml and runs "Try it out" on GET /api/movies: 200', async () => {
    assert.ok(chromium);
    const page = chromium.context.pages()[0] ?? (await chromium.context.newPage());
    const requested: string[] = [];
    const problems: string[] = [];
    page.on('request', (req) => requested.push(req.url()));
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error') problems.push(`console error: ${msg.text()}`);
    });

    await page.goto(`${gatewayUrl}/api/docs`, { waitUntil: 'load' });
    const expected = contract().operations();
    await page.waitForFunction(`document.querySelectorAll('.opblock').length >= ${expected.length}`, undefined, { timeout: 30_000 });

    // Every operation is listed with its method and path.
    const listed = await page.$$eval('.opblock', (blocks) =>
      blocks.map((block) => {
        const method = block.querySelector('.opblock-summary-method')?.textContent?.trim() ?? '';
        const pathEl = block.querySelector('.opblock-summary-path');
        return `${method} ${pathEl?.getAttribute('data-path') ?? pathEl?.textContent?.trim() ?? ''}`;
      }),
    );
    assert.deepEqual([...listed].sort(), expected.map((op) => `${op.method} ${op.path}`).sort());

    // Try it out: GET /api/movies, executed from the page against this gateway.
    const operation = page.locator('#operations-movies-listMovies');
    await operation.locator('.opblock-summary').first().click();
    await operation.locator('button.try-out__btn').click();
    await operation.locator('button.execute').click();
    const status = operation.locator('.live-responses-table .response .response-col_status').first();
    await status.waitFor({ timeout: 30_000 });
    assert.equal((await status.textContent())?.trim(), '200');
    const shown = await operation.locator('.live-responses-table').first().textContent();
    assert.match(shown ?? '', /Seen through Swagger UI/, 'the response body shown is the movie list');

    fs.mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'docs-browser.png'), fullPage: true });

    // Nothing but the gateway was asked for anything (no CDN, no online validator).
    const origin = new URL(gatewayUrl).origin;
    const foreign = requested.filter((url) => !url.startsWith(`${origin}/`) && !url.startsWith('data:'));
    assert.deepEqual(foreign, [], 'requests to anything but the gateway');
    assert.ok(requested.includes(`${origin}/openapi.yaml`), 'the page loaded /openapi.yaml');
    assert.deepEqual(problems, []);
  });
});
