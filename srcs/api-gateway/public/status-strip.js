// The status strip: the gateway's GET /health, one item per dependency, up or down.

const REFRESH_MS = 10_000;
const HEALTH_TIMEOUT_MS = 5_000;

/**
 * @param {{ list: HTMLElement, time: HTMLElement }} elements
 * @returns {{ refresh(): Promise<void> }}
 */
export function createStatusStrip({ list, time }) {
  let inFlight = /** @type {Promise<void> | undefined} */ (undefined);

  /** @param {Array<[string, boolean, string]>} items name, up, detail */
  function show(items) {
    list.replaceChildren(
      ...items.map(([name, up, detail]) => {
        const li = document.createElement('li');
        li.className = up ? 'up' : 'down';
        li.dataset.service = name;
        li.textContent = `${name} ${up ? 'up' : 'down'}`;
        if (detail) li.title = detail;
        return li;
      }),
    );
    time.textContent = `checked ${new Date().toLocaleTimeString()}`;
  }

  async function check() {
    try {
      // 200 when every dependency is up, 503 (with the same report) when one is down.
      const res = await fetch('/health', {
        headers: { Accept: 'application/json' },
        credentials: 'omit',
        cache: 'no-store',
        signal: AbortSignal.timeout(HEALTH_TIMEOUT_MS),
      });
      const report = await res.json();
      /** @type {Array<[string, boolean, string]>} */
      const items = [['gateway', true, '']];
      for (const [name, result] of Object.entries(report.checks ?? {})) {
        const r = /** @type {{ status?: string, error?: string }} */ (result);
        items.push([name, r.status === 'up', r.error ?? '']);
      }
      show(items);
    } catch (err) {
      show([['gateway', false, err instanceof Error ? err.message : String(err)]]);
    }
  }

  function refresh() {
    inFlight ??= check().finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  }

  setInterval(() => void refresh(), REFRESH_MS);
  return { refresh };
}
