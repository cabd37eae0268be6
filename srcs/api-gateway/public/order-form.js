// The order form: POST /api/billing with an Idempotency-Key of its own. The key stays the same
// while the same order is sent again (after a 503 or no answer, as the API asks), so a retry is
// stored once; a queued order or a changed form gets a new key.

import { ApiError, newIdempotencyKey, request } from './api.js';

/**
 * @param {{ form: HTMLFormElement, message: HTMLElement, onUnavailable: () => void }} deps
 */
export function createOrderForm({ form, message, onUnavailable }) {
  const fields = /** @type {const} */ (['user_id', 'number_of_items', 'total_amount']);
  const submit = /** @type {HTMLButtonElement} */ (form.querySelector('button[type="submit"]'));
  let key = newIdempotencyKey();

  /** @param {string} text @param {'error' | 'ok' | ''} kind */
  function say(text, kind) {
    message.textContent = text;
    message.className = `message ${kind}`.trim();
  }

  // Another order (any field changed) is another key.
  form.addEventListener('input', () => {
    key = newIdempotencyKey();
  });

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    /** @type {Record<string, string>} */
    const order = {};
    for (const name of fields) {
      const input = /** @type {HTMLInputElement} */ (form.elements.namedItem(name));
      order[name] = input.value.trim();
    }
    submit.disabled = true;
    say('Sending…', '');
    try {
      const res = await request('/api/billing', { method: 'POST', body: order, headers: { 'Idempotency-Key': key } });
      const body = /** @type {{ status: string, message_id: string }} */ (await res.json());
      say(`Order ${body.status} (id ${body.message_id}).`, 'ok');
      form.dataset.lastKey = body.message_id;
      key = newIdempotencyKey();
    } catch (err) {
      const e = err instanceof ApiError ? err : new ApiError(String(err), 0, 'network');
      const retry = e.retryAfter !== undefined ? ` Retry after ${e.retryAfter} s: sending again is safe, it is stored once.` : '';
      say(`Order not queued: ${e.message}${retry}`, 'error');
      if (e.status >= 500 || e.status === 0) onUnavailable();
    } finally {
      submit.disabled = false;
    }
  });
}
