/**
 * How long the catalogue page (GET /) takes to paint what the user asked for, measured in the
 * browser: movies-view.js dispatches `catalogue:rendered` after each load has been painted, with
 * the request's start and the paint's time (performance.now()). Used by the browser test, which
 * prints the figures, and by the benchmark, which holds them to the 300 ms target.
 */
import type { Page } from 'playwright-core';

/** What the page reports after each painted load. */
export interface Render {
  url: string;
  status: number;
  requestStart: number;
  renderedAt: number;
}

export interface TimedRender {
  render: Render;
  /** From the user's last input event (click, key, change) to the paint. */
  fromInputMs: number;
  /** From the request's start to the paint. */
  fromRequestMs: number;
}

/**
 * Add with page.addInitScript: it runs before the page's own scripts (playwright injects it over
 * CDP, so the page's CSP does not apply) and keeps every catalogue:rendered event and the time of
 * the latest user input.
 */
export const RENDER_PROBE = `
  window.__renders = [];
  window.__lastInput = 0;
  document.addEventListener('catalogue:rendered', (e) => window.__renders.push(e.detail));
  for (const type of ['input', 'click', 'keydown', 'change']) {
    addEventListener(type, (e) => { window.__lastInput = e.timeStamp; }, true);
  }
`;

/** How many loads the page has painted since it was (re)loaded. */
export function renderCount(page: Page): Promise<number> {
  return page.evaluate('window.__renders.length') as Promise<number>;
}

/** Waits for the first painted load after the `from`th whose URL contains `needle`. */
export async function waitRender(page: Page, from: number, needle = '', timeoutMs = 30_000): Promise<Render> {
  // A function, not a string: the page's CSP forbids eval, which a string predicate needs.
  const handle = await page.waitForFunction(
    ([n, s]) => (globalThis as unknown as { __renders: Render[] }).__renders.slice(n).find((r) => r.url.includes(s)) ?? false,
    [from, needle] as [number, string],
    { timeout: timeoutMs },
  );
  return (await handle.jsonValue()) as Render;
}

/** Does `action`, waits for the load it causes (URL containing `needle`), and times it. */
export async function timedRender(page: Page, action: () => Promise<void>, needle = ''): Promise<TimedRender> {
  const from = await renderCount(page);
  await action();
  const render = await waitRender(page, from, needle);
  const lastInput = (await page.evaluate('window.__lastInput')) as number;
  return {
    render,
    fromInputMs: Math.round(render.renderedAt - lastInput),
    fromRequestMs: Math.round(render.renderedAt - render.requestStart),
  };
}
