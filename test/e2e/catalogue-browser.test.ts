/**
 * The catalogue page at / in a real browser (Debian's headless Chromium, driven by
 * playwright-core), against the whole stack as processes: inventory, billing and the gateway from
 * their sources, on the harness's private PostgreSQL and RabbitMQ, with a million movies loaded
 * the way `npm run seed` loads them (COPY, about 10 s here).
 *
 * It searches, pages, creates, edits and deletes through the page and checks what the table and
 * the total then show; sees the API's own message for an invalid title; places an order and finds
 * its row in orders_db; runs axe-core for accessibility (no serious or critical violation, at
 * desktop and phone width); works the page from the keyboard; deletes every movie; and stops the
 * inventory to see the status strip and the table say so. It measures, in the browser, how long
 * each change takes to be painted and prints the figures (timing goals belong to the benchmark,
 * not to a test: the machine is shared). Screenshots go to .test-artifacts/.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import type { Page } from 'playwright-core';
import type { Knex } from '@crud-master/common';
import { inventorySchema } from '../../srcs/inventory-app/src/db/schema';
import { migratedDatabase } from '../support/databases';
import { bulkLoadMovies } from '../../srcs/inventory-app/src/movies/bulk-load';
import { freePort, sharedPostgres, sharedRabbit, waitFor } from '../harness/fixtures';
import type { ServiceProcess } from '../harness/processes';
import { RENDER_PROBE, renderCount as rendered, timedRender, waitRender as waitPainted, type Render } from '../support/catalogue-probe';
import { ARTIFACTS, launchChromium, type Chromium } from '../support/chromium';
import { newStackConfig, ordersDb, startBilling, startFromSources, wholeStackEnv, type StackConfig } from './billing-stack';

/** The catalogue size the issue asks the page to be fast at. CATALOGUE_TEST_MOVIES changes it. */
const MOVIES = Number(process.env.CATALOGUE_TEST_MOVIES ?? 1_000_000);
/** A word of the generated titles (fake-catalog.ts) that a few thousand of them contain. */
const WORD = 'crimson';

/** One line of measurement in the test output. */
function metric(what: string, values: Record<string, number | string>): void {
  const parts = Object.entries(values).map(([k, v]) => `${k}=${v}`);
  process.stdout.write(`      [catalogue metric] ${what}: ${parts.join(' ')}\n`);
}

interface Timing {
  what: string;
  fromInputMs: number;
  fromRequestMs: number;
}

describe('catalogue page at / in headless Chromium (inventory, billing, gateway as processes)', function () {
  this.timeout(300_000);
  let stack: StackConfig;
  let moviesDbName: string;
  const services: Record<string, ServiceProcess> = {};
  let gatewayUrl: string;
  let orders: Knex;
  let chromium: Chromium | undefined;
  let page: Page;
  const timings: Timing[] = [];
  const problems: string[] = [];
  const requested: string[] = [];

  before(async () => {
    const [pgInstance, rabbit] = await Promise.all([sharedPostgres(), sharedRabbit()]);
    stack = await newStackConfig(rabbit, pgInstance);
    // The catalogue, migrated and loaded like `npm run seed -- --movies N` does it (as the owner).
    const created = await migratedDatabase(inventorySchema, pgInstance);
    moviesDbName = created.database;
    const movies = created.app;
    const client = new pg.Client(created.owner);
    await client.connect();
    const seedStarted = Date.now();
    try {
      const result = await bulkLoadMovies(client, { count: MOVIES });
      assert.equal(result.inserted, MOVIES);
    } finally {
      await client.end();
    }
    metric('catalogue seed', { movies: MOVIES, ms: Date.now() - seedStarted });

    const inventoryPort = await freePort();
    // Deleting a million movies takes seconds; the test wants the answer, not a 504.
    stack.extraEnv = { GATEWAY_UPSTREAM_TIMEOUT_MS: '30000', GATEWAY_IDLE_TIMEOUT_MS: '60000' };
    const env = wholeStackEnv(stack, movies, inventoryPort);
    const start = (name: string, dir: string, readyUrl: string) => startFromSources(name, dir, env, readyUrl);
    gatewayUrl = `http://127.0.0.1:${stack.gatewayPort}`;
    const [inventory, billing] = await Promise.all([
      start('inventory', 'inventory-app', `http://127.0.0.1:${inventoryPort}/health`),
      startBilling(stack),
    ]);
    Object.assign(services, { inventory, billing });
    services.gateway = await start('gateway', 'api-gateway', `${gatewayUrl}/health`);
    await waitFor(async () => (await fetch(`${gatewayUrl}/health`, { signal: AbortSignal.timeout(3000) })).status === 200, {
      timeoutMs: 30_000,
      description: 'every dependency of the gateway up',
    });
    orders = ordersDb(stack);

    chromium = await launchChromium({ width: 1280, height: 900 });
    page = chromium.context.pages()[0] ?? (await chromium.context.newPage());
    await page.addInitScript(RENDER_PROBE);
    page.on('request', (req) => requested.push(req.url()));
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    page.on('console', (msg) => {
      // The browser logs every 4xx/5xx answer it gets; the API's refusals are part of the test.
      if (msg.type() === 'error' && !/^Failed to load resource: the server responded with a status of [45]\d\d/.test(msg.text())) {
        problems.push(`console error: ${msg.text()}`);
      }
    });
    fs.mkdirSync(ARTIFACTS, { recursive: true });
  });

  after(async () => {
    if (timings.length > 0) {
      fs.mkdirSync(ARTIFACTS, { recursive: true });
      fs.writeFileSync(path.join(ARTIFACTS, 'catalogue-timings.json'), `${JSON.stringify({ movies: MOVIES, timings }, null, 2)}\n`);
    }
    await chromium?.close();
    await orders?.destroy();
    await Promise.all(Object.values(services).map((s) => s.stop()));
    // A million movies are a few hundred MB on the shared cluster: give them back.
    if (moviesDbName) await stack.pg.dropDatabase(moviesDbName);
    if (stack) await stack.pg.dropDatabase(stack.database);
  });

  // --- helpers ----------------------------------------------------------------------------------

  const renderCount = (): Promise<number> => rendered(page);
  const waitRender = (from: number, needle = ''): Promise<Render> => waitPainted(page, from, needle);

  /** Does `action`, waits for the load it causes, records how long it took to be painted. */
  async function timed(what: string, action: () => Promise<void>, needle = ''): Promise<Render> {
    const { render, fromInputMs, fromRequestMs } = await timedRender(page, action, needle);
    timings.push({ what, fromInputMs, fromRequestMs });
    metric('catalogue page', { what: `"${what}"`, movies: MOVIES, input_to_paint_ms: fromInputMs, request_to_paint_ms: fromRequestMs });
    return render;
  }

  const text = async (selector: string): Promise<string> => ((await page.locator(selector).first().textContent()) ?? '').trim();
  const totalShown = async (): Promise<number> => Number(/^[0-9,]+/.exec(await text('#total'))?.[0].replace(/,/g, '') ?? NaN);
  const titles = (): Promise<string[]> => page.locator('#movie-rows td.col-title').allTextContents();
  const ids = async (): Promise<number[]> => (await page.locator('#movie-rows tr[data-id]').evaluateAll((rows) => rows.map((r) => Number(r.getAttribute('data-id')))));
  const offsetOf = (render: Render): number => Number(new URL(render.url, gatewayUrl).searchParams.get('offset'));
  const status = (service: string, state = '') => page.locator(`#status-list li${state ? `.${state}` : ''}[data-service="${service}"]`);

  /** The API's own answer to a request, to compare the page's message with. */
  async function apiError(method: string, url: string, body: unknown): Promise<string> {
    const res = await fetch(`${gatewayUrl}${url}`, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    assert.equal(res.status, 400);
    return ((await res.json()) as { error: { message: string } }).error.message;
  }

  async function axeViolations(): Promise<string[]> {
    if (!(await page.evaluate('typeof window.axe !== "undefined"'))) {
      await page.evaluate(fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8'));
    }
    const violations = (await page.evaluate(
      `axe.run(document, { resultTypes: ['violations'] }).then((r) => r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.length })))`,
    )) as Array<{ id: string; impact: string; help: string; nodes: number }>;
    for (const v of violations) process.stdout.write(`      [axe] ${v.impact} ${v.id}: ${v.help} (${v.nodes} nodes)\n`);
    return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.impact} ${v.id}: ${v.help}`);
  }

  // --- the page ---------------------------------------------------------------------------------

  it('shows the first page of the catalogue, its total and every dependency up', async () => {
    await page.goto(`${gatewayUrl}/`, { waitUntil: 'load' });
    const first = await waitRender(0);
    // renderedAt counts from the navigation's start: HTML, modules, the API call and the paint.
    timings.push({ what: 'first page render (navigation to paint)', fromInputMs: Math.round(first.renderedAt), fromRequestMs: Math.round(first.renderedAt - first.requestStart) });
    metric('catalogue page', { what: '"first page render"', movies: MOVIES, navigation_to_paint_ms: Math.round(first.renderedAt) });
    assert.equal(first.status, 200);
    assert.equal(await totalShown(), MOVIES);
    assert.deepEqual(await ids(), Array.from({ length: 20 }, (_, i) => i + 1));
    assert.match(await text('#page-label'), new RegExp(`Page 1 of ${(MOVIES / 20).toLocaleString('en')}`));
    await status('inventory', 'up').waitFor({ timeout: 15_000 });
    await status('broker', 'up').waitFor({ timeout: 15_000 });
    assert.equal(await page.locator('#page-prev').isDisabled(), true);

    // Once more, as a visitor who comes back finds it (services and browser warm).
    await page.reload({ waitUntil: 'load' });
    const again = await waitRender(0);
    timings.push({ what: 'page reload (navigation to paint)', fromInputMs: Math.round(again.renderedAt), fromRequestMs: Math.round(again.renderedAt - again.requestStart) });
    metric('catalogue page', { what: '"page reload"', movies: MOVIES, navigation_to_paint_ms: Math.round(again.renderedAt) });
    assert.equal(await totalShown(), MOVIES);
  });

  it('narrows the table and the total as a title is typed', async () => {
    const render = await timed(`search "${WORD}"`, () => page.locator('#search').pressSequentially(WORD, { delay: 40 }), `title=${WORD}`);
    assert.equal(render.status, 200);
    const total = await totalShown();
    assert.ok(total > 20 && total < MOVIES / 10, `total ${total}`);
    assert.match(await text('#total'), new RegExp(`matching “${WORD}”`));
    const shown = await titles();
    assert.equal(shown.length, 20);
    for (const title of shown) assert.match(title, new RegExp(WORD, 'i'));
    // The API agrees on the total.
    const res = await fetch(`${gatewayUrl}/api/movies?title=${WORD}&limit=1`);
    assert.equal(Number(res.headers.get('x-total-count')), total);
    await page.screenshot({ path: path.join(ARTIFACTS, 'catalogue.png') });
  });

  it('moves through the results with next, last, prev and first', async () => {
    const total = await totalShown();
    const lastOffset = Math.floor((total - 1) / 20) * 20;
    const firstIds = await ids();
    let render = await timed('search: next page', () => page.locator('#page-next').click(), 'offset=20');
    assert.equal(offsetOf(render), 20);
    const nextIds = await ids();
    assert.ok(Math.min(...nextIds) > Math.max(...firstIds), 'the next page continues in id order');
    render = await timed('search: last page', () => page.locator('#page-last').click(), `offset=${lastOffset}`);
    assert.equal(offsetOf(render), lastOffset);
    assert.equal((await titles()).length, total - lastOffset);
    assert.equal(await page.locator('#page-next').isDisabled(), true);
    assert.match(await text('#page-label'), new RegExp(`Page ([0-9,]+) of \\1 `));
    render = await timed('search: previous page', () => page.locator('#page-prev').click(), `offset=${lastOffset - 20}`);
    assert.equal(offsetOf(render), lastOffset - 20);
    render = await timed('search: first page', () => page.locator('#page-first').click(), 'offset=0');
    assert.deepEqual(await ids(), firstIds);

    // The same over the whole catalogue, where the last page is the farthest one.
    await timed('clear search', () => page.locator('#search').fill(''), '?limit=20&offset=0');
    assert.equal(await totalShown(), MOVIES);
    render = await timed('all: next page', () => page.locator('#page-next').click(), 'offset=20');
    assert.deepEqual(await ids(), Array.from({ length: 20 }, (_, i) => i + 21));
    render = await timed('all: last page', () => page.locator('#page-last').click(), `offset=${MOVIES - 20}`);
    assert.deepEqual(await ids(), Array.from({ length: 20 }, (_, i) => MOVIES - 19 + i));
    render = await timed('all: previous page', () => page.locator('#page-prev').click(), `offset=${MOVIES - 40}`);
    assert.equal(offsetOf(render), MOVIES - 40);
    render = await timed('all: page size 50', async () => void (await page.locator('#page-size').selectOption('50')), 'limit=50');
    assert.equal((await ids()).length, 50);
    await timed('all: page size 20', async () => void (await page.locator('#page-size').selectOption('20')), 'limit=20');
    await timed('all: first page', () => page.locator('#page-first').click(), 'offset=0');
  });

  it('creates, edits and deletes a movie, and the table and the total follow', async () => {
    const title = `Browser test movie ${Date.now()}`;
    await page.locator('#add-title').fill(title);
    await page.locator('#add-description').fill('Added through the catalogue page');
    let from = await renderCount();
    await page.locator('#add-form button[type="submit"]').click();
    // The new movie has the highest id: the page shows the last page of the whole list.
    await waitRender(from, `offset=${MOVIES - (MOVIES % 20)}`);
    await page.locator('#add-message.ok').waitFor();
    assert.equal(await totalShown(), MOVIES + 1);
    const row = page.locator('#movie-rows tr.highlight');
    assert.equal(await row.locator('td.col-title').textContent(), title);
    const id = Number(await row.getAttribute('data-id'));
    assert.ok(id > MOVIES);

    // Edit in place: the cells become fields; Enter saves.
    await row.getByRole('button', { name: `Edit movie ${id}` }).click();
    const titleField = page.getByRole('textbox', { name: `Title of movie ${id}` });
    await titleField.fill(`${title} (edited)`);
    from = await renderCount();
    await titleField.press('Enter');
    await waitRender(from);
    assert.equal(await page.locator(`#movie-rows tr[data-id="${id}"] td.col-title`).textContent(), `${title} (edited)`);
    // The keyboard focus is back on the saved row.
    assert.equal(await page.evaluate('document.activeElement && document.activeElement.closest("tr") && document.activeElement.closest("tr").dataset.id'), String(id));
    const stored = (await (await fetch(`${gatewayUrl}/api/movies/${id}`)).json()) as { title: string };
    assert.equal(stored.title, `${title} (edited)`);

    // Delete, after a confirmation.
    await page.locator(`#movie-rows tr[data-id="${id}"]`).getByRole('button', { name: `Delete movie ${id}` }).click();
    const dialog = page.locator('#confirm-dialog');
    await dialog.waitFor({ state: 'visible' });
    assert.match((await dialog.textContent()) ?? '', new RegExp(`Movie ${id}`));
    from = await renderCount();
    await dialog.getByRole('button', { name: 'Delete movie' }).click();
    await waitRender(from);
    assert.equal(await page.locator(`#movie-rows tr[data-id="${id}"]`).count(), 0);
    assert.equal(await totalShown(), MOVIES);
    assert.equal((await fetch(`${gatewayUrl}/api/movies/${id}`)).status, 404);
    assert.match(await text('#table-message'), new RegExp(`Deleted movie ${id}`));
  });

  it('shows the API\'s own message when it refuses a title', async () => {
    // Blank: refused by the API, not by the browser (the forms do not validate on their own).
    const blank = await apiError('POST', '/api/movies', { title: '   ', description: '' });
    await page.locator('#add-title').fill('   ');
    await page.locator('#add-form button[type="submit"]').click();
    await page.locator('#add-message.error').waitFor();
    assert.equal(await text('#add-message'), `Not added: ${blank}`);

    // Too long, when editing in place.
    await timed('all: first page', () => page.locator('#page-first').click(), 'offset=0');
    const long = 'x'.repeat(256);
    const tooLong = await apiError('PUT', '/api/movies/1', { title: long });
    const row = page.locator('#movie-rows tr[data-id="1"]');
    await row.getByRole('button', { name: 'Edit movie 1' }).click();
    const field = page.getByRole('textbox', { name: 'Title of movie 1' });
    await field.fill(long);
    await field.press('Enter');
    await page.locator('#table-message.error').waitFor();
    assert.equal(await text('#table-message'), `Not saved: ${tooLong}`);
    await field.press('Escape');
    assert.notEqual(await text('#movie-rows tr[data-id="1"] td.col-title'), long);
  });

  it('places an order: "queued", and its row lands in orders_db under the key the page sent', async () => {
    const refused = await apiError('POST', '/api/billing', { user_id: 'abc', number_of_items: '2', total_amount: '19.90' });
    await page.locator('#order-user').fill('abc');
    await page.locator('#order-items').fill('2');
    await page.locator('#order-amount').fill('19.90');
    await page.locator('#order-form button[type="submit"]').click();
    await page.locator('#order-message.error').waitFor();
    assert.equal(await text('#order-message'), `Order not queued: ${refused}`);

    let sentKey: string | undefined;
    page.on('request', (req) => {
      if (req.url().endsWith('/api/billing') && req.method() === 'POST') sentKey = req.headers()['idempotency-key'];
    });
    await page.locator('#order-user').fill('42');
    await page.locator('#order-form button[type="submit"]').click();
    await page.locator('#order-message.ok').waitFor();
    assert.match(await text('#order-message'), /^Order queued \(id [0-9a-f-]{36}\)\.$/);
    assert.ok(sentKey, 'the page sent an Idempotency-Key');
    assert.match(await text('#order-message'), new RegExp(sentKey));
    const row = await waitFor(() => orders('orders').where({ message_id: sentKey }).first(), { timeoutMs: 20_000, description: 'the order in orders_db' });
    assert.deepEqual(
      { user_id: row.user_id, number_of_items: row.number_of_items, total_amount: row.total_amount },
      { user_id: 42, number_of_items: 2, total_amount: '19.90' },
    );
  });

  it('has no serious or critical accessibility violation (axe-core), at desktop and phone width', async () => {
    assert.deepEqual(await axeViolations(), []);
    await page.setViewportSize({ width: 390, height: 844 });
    try {
      await page.evaluate('window.scrollTo(0, 0)');
      // Readable at phone width: nothing wider than the screen.
      const overflow = (await page.evaluate('document.documentElement.scrollWidth')) as number;
      assert.ok(overflow <= 390, `the page is ${overflow}px wide on a 390px screen`);
      assert.deepEqual(await axeViolations(), []);
      await page.screenshot({ path: path.join(ARTIFACTS, 'catalogue-phone.png') });
    } finally {
      await page.setViewportSize({ width: 1280, height: 900 });
    }
  });

  it('works from the keyboard: search with Enter, page with Enter, a dialog that Escape closes', async () => {
    await page.locator('#search').focus();
    await page.keyboard.press('Control+A');
    await page.keyboard.type('ri'); // too short to search as one types: Enter searches anyway
    let render = await timed('search "ri" with Enter', () => page.keyboard.press('Enter'), 'title=ri');
    // Two letters give the trigram index nothing: on a big catalogue the API refuses the search,
    // and the page says why in the API's own words.
    const refusal = await fetch(`${gatewayUrl}/api/movies?title=ri&limit=20&offset=0`);
    assert.equal(render.status, refusal.status);
    if (refusal.status === 400) {
      const { error } = (await refusal.json()) as { error: { message: string } };
      assert.equal(await text('#movie-rows td.load-error'), `Movies could not be loaded: ${error.message}`);
    } else {
      assert.equal(render.status, 200);
      assert.ok((await totalShown()) > 0);
    }
    await timed('clear search', () => page.locator('#search').fill(''), '?limit=20&offset=0');
    await page.locator('#search').focus();
    // Tab from the search field reaches the pager.
    let focused = '';
    for (let i = 0; i < 20 && focused !== 'page-next'; i++) {
      await page.keyboard.press('Tab');
      focused = (await page.evaluate('document.activeElement && document.activeElement.id')) as string;
    }
    assert.equal(focused, 'page-next');
    render = await timed('keyboard: next page', () => page.keyboard.press('Enter'), 'offset=20');
    assert.equal(offsetOf(render), 20);
    // Last disables itself: the focus moves to Previous rather than to nowhere.
    await page.locator('#page-last').focus();
    await timed('keyboard: last page', () => page.keyboard.press('Enter'));
    assert.equal(await page.evaluate('document.activeElement && document.activeElement.id'), 'page-prev');
    await timed('keyboard: previous page', () => page.keyboard.press('Enter'));
    // A delete button opens the dialog with the focus inside it; Escape closes it, nothing is deleted.
    const totalBefore = await totalShown();
    await page.locator('#movie-rows button.danger').first().focus();
    await page.keyboard.press('Enter');
    await page.locator('#confirm-dialog').waitFor({ state: 'visible' });
    assert.equal(await page.evaluate('document.activeElement && document.activeElement.id'), 'confirm-cancel');
    await page.keyboard.press('Escape');
    await page.locator('#confirm-dialog').waitFor({ state: 'hidden' });
    assert.equal(await totalShown(), totalBefore);
  });

  it('deletes every movie only after the phrase is typed', async () => {
    await page.locator('#delete-all').click();
    const dialog = page.locator('#confirm-dialog');
    await dialog.waitFor({ state: 'visible' });
    const ok = dialog.getByRole('button', { name: 'Delete all movies' });
    assert.equal(await ok.isDisabled(), true);
    await dialog.getByRole('textbox').fill('delete');
    assert.equal(await ok.isDisabled(), true);
    await dialog.getByRole('textbox').fill('delete all');
    const from = await renderCount();
    const started = Date.now();
    await ok.click();
    await waitRender(from);
    metric('catalogue page', { what: '"delete all"', movies: MOVIES, ms: Date.now() - started });
    assert.equal(await text('#table-message'), `Deleted ${MOVIES.toLocaleString('en')} movies.`);
    assert.equal(await totalShown(), 0);
    assert.equal(await text('#movie-rows td.empty'), 'The catalogue is empty.');
    const res = await fetch(`${gatewayUrl}/api/movies?limit=1`);
    assert.equal(res.headers.get('x-total-count'), '0');
  });

  it('says the inventory is down, in the status strip and the table, instead of hanging', async () => {
    await services.inventory?.stop();
    const started = Date.now();
    await page.reload({ waitUntil: 'load' });
    const render = await waitRender(0);
    assert.equal(render.status, 502);
    await page.locator('#movie-rows td.load-error').waitFor({ timeout: 15_000 });
    assert.match(await text('#movie-rows td.load-error'), /^Movies could not be loaded: ./);
    assert.equal(await text('#total'), 'Movies unavailable');
    await status('inventory', 'down').waitFor({ timeout: 15_000 });
    assert.equal(await status('inventory').textContent(), 'inventory down');
    assert.equal(await status('broker').textContent(), 'broker up');
    metric('catalogue page', { what: '"inventory down shown"', ms: Date.now() - started });
    for (const rel of ['first', 'prev', 'next', 'last']) assert.equal(await page.locator(`#page-${rel}`).isDisabled(), true);
    await page.screenshot({ path: path.join(ARTIFACTS, 'catalogue-inventory-down.png') });

    // Nothing but the gateway was asked for anything, and nothing broke in the page.
    const origin = new URL(gatewayUrl).origin;
    assert.deepEqual(requested.filter((url) => !url.startsWith(`${origin}/`)), []);
    assert.deepEqual(problems, []);
  });
});
