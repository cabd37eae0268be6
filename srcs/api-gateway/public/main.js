// The catalogue page's entry point: wires the status strip, the movies table and the order form.
// Plain ES modules served by the gateway (no build step, nothing from elsewhere).

import { createConfirm } from './confirm-dialog.js';
import { createMoviesView } from './movies-view.js';
import { createOrderForm } from './order-form.js';
import { createStatusStrip } from './status-strip.js';

const byId = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));

const status = createStatusStrip({ list: byId('status-list'), time: byId('status-time') });
// A failed request is a reason to look at /health again at once rather than at the next tick.
const onUnavailable = () => void status.refresh();

const movies = createMoviesView({
  confirm: createConfirm(/** @type {HTMLDialogElement} */ (byId('confirm-dialog'))),
  onUnavailable,
});
createOrderForm({ form: /** @type {HTMLFormElement} */ (byId('order-form')), message: byId('order-message'), onUnavailable });

// The table first: /health asks the inventory and the broker, and need not compete with it.
void movies.start().finally(() => void status.refresh());
