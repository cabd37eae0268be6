// The movies table: one page of GET /api/movies at a time (limit/offset), the total from
// X-Total-Count, the pager from the Link header, and add / edit in place / delete / delete all.

import { ApiError, parseLinks, request } from './api.js';

/** As-you-type search starts at this many characters: the trigram index serves 3 and more. */
export const MIN_TYPED_SEARCH = 3;
const SEARCH_DEBOUNCE_MS = 150;
const API = '/api/movies';

/**
 * @typedef {{ id: number, title: string, description: string }} Movie
 * @typedef {{ message(text: string, kind?: 'error' | 'ok' | ''): void }} Messages
 * @typedef {(o: { title: string, text: string, action: string, phrase?: string }) => Promise<boolean>} Confirm
 */

const format = new Intl.NumberFormat('en');

/**
 * @param {{ confirm: Confirm, onUnavailable: () => void }} deps
 */
export function createMoviesView({ confirm, onUnavailable }) {
  const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
  const table = $('movies');
  const rows = $('movie-rows');
  const total = $('total');
  const tableMessage = $('table-message');
  const pageLabel = $('page-label');
  const pageSize = /** @type {HTMLSelectElement} */ ($('page-size'));
  const search = /** @type {HTMLInputElement} */ ($('search'));
  const searchForm = /** @type {HTMLFormElement} */ ($('search-form'));
  const addForm = /** @type {HTMLFormElement} */ ($('add-form'));
  const addTitle = /** @type {HTMLInputElement} */ ($('add-title'));
  const addDescription = /** @type {HTMLTextAreaElement} */ ($('add-description'));
  const addMessage = $('add-message');
  /** @type {Record<string, HTMLButtonElement>} */
  const pager = {
    first: /** @type {HTMLButtonElement} */ ($('page-first')),
    prev: /** @type {HTMLButtonElement} */ ($('page-prev')),
    next: /** @type {HTMLButtonElement} */ ($('page-next')),
    last: /** @type {HTMLButtonElement} */ ($('page-last')),
  };

  /** What is shown: the filter and the page. */
  const view = { title: '', limit: Number(pageSize.value) || 20, offset: 0 };
  /** @type {Record<string, string>} */
  let links = {};
  let shownTotal = 0;
  /** @type {AbortController | undefined} */
  let loading;
  /** @type {number | undefined} */
  let highlightId;

  function pageUrl(offset = view.offset) {
    const params = new URLSearchParams();
    if (view.title !== '') params.set('title', view.title);
    params.set('limit', String(view.limit));
    params.set('offset', String(offset));
    return `${API}?${params}`;
  }

  /** @param {HTMLElement} el @param {string} text @param {'error' | 'ok' | ''} [kind] */
  function say(el, text, kind = '') {
    el.textContent = text;
    el.className = `message ${kind}`.trim();
  }

  /**
   * Loads and shows one page. A newer load cancels an older one still in flight, so typing fast
   * never shows an outdated answer last.
   * @param {string} url a page of /api/movies (ours, or a Link the API gave)
   */
  async function load(url) {
    loading?.abort();
    const controller = new AbortController();
    loading = controller;
    const requestStart = performance.now();
    table.setAttribute('aria-busy', 'true');
    try {
      const res = await request(url, { signal: controller.signal });
      const movies = /** @type {Movie[]} */ (await res.json());
      if (controller.signal.aborted) return;
      const params = new URL(url, window.location.origin).searchParams;
      view.title = params.get('title') ?? '';
      view.limit = Number(params.get('limit') ?? view.limit);
      view.offset = Number(params.get('offset') ?? 0);
      links = parseLinks(res.headers.get('Link'));
      shownTotal = Number(res.headers.get('X-Total-Count') ?? movies.length);
      // Deleting the last rows of the last page leaves an empty page behind: show the new last one.
      if (movies.length === 0 && view.offset > 0 && links.last && links.last !== url) {
        await load(links.last);
        return;
      }
      renderRows(movies);
      renderSummary(movies.length);
      rendered(url, requestStart, res.status);
    } catch (err) {
      if (controller.signal.aborted && !(err instanceof ApiError)) return;
      const message = err instanceof ApiError ? err.message : String(err);
      showLoadError(message);
      rendered(url, requestStart, err instanceof ApiError ? err.status : 0);
      onUnavailable();
    } finally {
      if (loading === controller) {
        loading = undefined;
        table.setAttribute('aria-busy', 'false');
      }
    }
  }

  /** Tells whoever listens (the browser test) when a load has been painted, and how long it took. */
  function rendered(/** @type {string} */ url, /** @type {number} */ requestStart, /** @type {number} */ status) {
    requestAnimationFrame(() =>
      setTimeout(() => {
        const detail = { url, status, requestStart, renderedAt: performance.now() };
        table.dataset.loaded = url;
        document.dispatchEvent(new CustomEvent('catalogue:rendered', { detail }));
      }, 0),
    );
  }

  /** @param {string} message */
  function showLoadError(message) {
    const tr = document.createElement('tr');
    const td = document.createElement('td');
    td.colSpan = 4;
    td.className = 'load-error';
    td.textContent = `Movies could not be loaded: ${message}`;
    tr.append(td);
    rows.replaceChildren(tr);
    total.textContent = 'Movies unavailable';
    pageLabel.textContent = '';
    links = {};
    for (const button of Object.values(pager)) button.disabled = true;
  }

  /** @param {number} count rows on this page */
  function renderSummary(count) {
    const what = view.title === '' ? '' : ` matching “${view.title}”`;
    total.textContent = `${format.format(shownTotal)} ${shownTotal === 1 ? 'movie' : 'movies'}${what}`;
    const pages = Math.max(1, Math.ceil(shownTotal / view.limit));
    const page = Math.floor(view.offset / view.limit) + 1;
    pageLabel.textContent =
      count === 0
        ? 'No movies'
        : `Page ${format.format(page)} of ${format.format(pages)} · ${format.format(view.offset + 1)}–${format.format(view.offset + count)}`;
    const lastOffset = links.last ? Number(new URL(links.last, window.location.origin).searchParams.get('offset')) : 0;
    const focused = document.activeElement;
    pager.first.disabled = view.offset === 0;
    pager.prev.disabled = !links.prev;
    pager.next.disabled = !links.next;
    pager.last.disabled = !links.last || view.offset >= lastOffset;
    // A button that disables itself (Last, or Next onto the last page) would drop the keyboard
    // focus to the document: hand it to the nearest button still usable.
    if (focused instanceof HTMLButtonElement && focused.disabled && Object.values(pager).includes(focused)) {
      const order = focused === pager.next || focused === pager.last ? ['prev', 'first', 'next', 'last'] : ['next', 'last', 'prev', 'first'];
      const target = order.map((rel) => pager[rel]).find((b) => b && !b.disabled);
      (target ?? search).focus();
    }
  }

  /** @param {Movie[]} movies */
  function renderRows(movies) {
    if (movies.length === 0) {
      const tr = document.createElement('tr');
      const td = document.createElement('td');
      td.colSpan = 4;
      td.className = 'empty';
      td.textContent = view.title === '' ? 'The catalogue is empty.' : 'No title matches this search.';
      tr.append(td);
      rows.replaceChildren(tr);
      return;
    }
    rows.replaceChildren(...movies.map(movieRow));
  }

  /** @param {Movie} movie */
  function movieRow(movie) {
    const tr = document.createElement('tr');
    tr.dataset.id = String(movie.id);
    if (movie.id === highlightId) tr.classList.add('highlight');
    tr.append(
      cell(String(movie.id), '#', 'col-id'),
      cell(movie.title, 'Title', 'col-title'),
      cell(movie.description, 'Description', 'col-description'),
    );
    const actions = cell('', 'Actions', 'col-actions');
    actions.append(
      button('Edit', `Edit movie ${movie.id}, ${movie.title}`, () => startEdit(tr, movie)),
      button('Delete', `Delete movie ${movie.id}, ${movie.title}`, () => void remove(movie), 'danger'),
    );
    tr.append(actions);
    return tr;
  }

  /** Puts the keyboard focus back on a (re-rendered) row's first button. */
  function focusRow(/** @type {number} */ id) {
    rows.querySelector(`tr[data-id="${id}"] button`)?.focus();
  }

  /** Edit in place: the row's cells become fields; Enter saves, Escape cancels. */
  function startEdit(/** @type {HTMLTableRowElement} */ tr, /** @type {Movie} */ movie) {
    for (const other of rows.querySelectorAll('tr.editing')) other.dispatchEvent(new Event('cancel-edit'));
    tr.classList.add('editing');
    const title = field('input', movie.title, `Title of movie ${movie.id}`);
    const description = field('textarea', movie.description, `Description of movie ${movie.id}`);
    const titleCell = /** @type {HTMLElement} */ (tr.querySelector('.col-title'));
    const descriptionCell = /** @type {HTMLElement} */ (tr.querySelector('.col-description'));
    const actions = /** @type {HTMLElement} */ (tr.querySelector('.col-actions'));
    titleCell.replaceChildren(title);
    descriptionCell.replaceChildren(description);
    const save = async () => {
      try {
        const res = await request(`${API}/${movie.id}`, { method: 'PUT', body: { title: title.value, description: description.value } });
        const updated = /** @type {Movie} */ (await res.json());
        say(tableMessage, `Saved movie ${updated.id}, “${updated.title}”.`, 'ok');
        highlightId = updated.id;
        await load(pageUrl());
        focusRow(updated.id);
      } catch (err) {
        say(tableMessage, `Not saved: ${errorText(err)}`, 'error');
        title.focus();
      }
    };
    const cancel = () => {
      tr.replaceWith(movieRow(movie));
      (rows.querySelector(`tr[data-id="${movie.id}"] button`) ?? search).focus();
    };
    tr.addEventListener('cancel-edit', cancel, { once: true });
    for (const el of [title, description]) {
      el.addEventListener('keydown', (e) => {
        const ke = /** @type {KeyboardEvent} */ (e);
        if (ke.key === 'Escape') cancel();
        else if (ke.key === 'Enter' && (el === title || ke.ctrlKey)) {
          ke.preventDefault();
          void save();
        }
      });
    }
    actions.replaceChildren(
      button('Save', `Save movie ${movie.id}`, () => void save()),
      button('Cancel', `Cancel editing movie ${movie.id}`, cancel),
    );
    title.focus();
  }

  /** @param {Movie} movie */
  async function remove(movie) {
    const yes = await confirm({
      title: 'Delete this movie?',
      text: `Movie ${movie.id}, “${movie.title}”, will be deleted.`,
      action: 'Delete movie',
    });
    if (!yes) return;
    try {
      await request(`${API}/${movie.id}`, { method: 'DELETE' });
      say(tableMessage, `Deleted movie ${movie.id}, “${movie.title}”.`, 'ok');
      await load(pageUrl());
      // The row and its button are gone: the message saying so takes the focus.
      tableMessage.focus();
    } catch (err) {
      say(tableMessage, `Not deleted: ${errorText(err)}`, 'error');
    }
  }

  async function removeAll() {
    const yes = await confirm({
      title: 'Delete every movie?',
      text:
        view.title === ''
          ? `All ${format.format(shownTotal)} movies of the catalogue will be deleted. This cannot be undone.`
          : 'Every movie of the catalogue will be deleted, not only those matching the search. This cannot be undone.',
      action: 'Delete all movies',
      phrase: 'delete all',
    });
    if (!yes) return;
    try {
      const res = await request(API, { method: 'DELETE' });
      const body = /** @type {{ deleted: number }} */ (await res.json());
      say(tableMessage, `Deleted ${format.format(body.deleted)} movies.`, 'ok');
      search.value = '';
      view.title = '';
      await load(pageUrl(0));
    } catch (err) {
      say(tableMessage, `Nothing deleted: ${errorText(err)}`, 'error');
    }
  }

  async function add() {
    try {
      const res = await request(API, { method: 'POST', body: { title: addTitle.value, description: addDescription.value } });
      const movie = /** @type {Movie} */ (await res.json());
      say(addMessage, `Added movie ${movie.id}, “${movie.title}”: shown on the last page.`, 'ok');
      addForm.reset();
      highlightId = movie.id;
      // New movies get the highest id, so they are on the last page of the whole list.
      search.value = '';
      view.title = '';
      await load(pageUrl(0));
      if (links.last && !pager.last.disabled) await load(links.last);
    } catch (err) {
      say(addMessage, `Not added: ${errorText(err)}`, 'error');
    }
  }

  // --- search ---------------------------------------------------------------------------------
  /** @type {number | undefined} */
  let debounce;
  function searchNow() {
    clearTimeout(debounce);
    view.title = search.value.trim() === '' ? '' : search.value;
    void load(pageUrl(0));
  }
  search.addEventListener('input', () => {
    clearTimeout(debounce);
    const length = search.value.trim().length;
    if (length !== 0 && length < MIN_TYPED_SEARCH) return; // Enter still searches
    debounce = window.setTimeout(searchNow, SEARCH_DEBOUNCE_MS);
  });
  searchForm.addEventListener('submit', (e) => {
    e.preventDefault();
    searchNow();
  });

  // --- pager, page size, forms ------------------------------------------------------------------
  for (const [rel, el] of Object.entries(pager)) {
    el.addEventListener('click', () => {
      const target = links[rel];
      if (target) void load(target);
    });
  }
  pageSize.addEventListener('change', () => {
    view.limit = Number(pageSize.value);
    void load(pageUrl(Math.floor(view.offset / view.limit) * view.limit));
  });
  addForm.addEventListener('submit', (e) => {
    e.preventDefault();
    void add();
  });
  $('delete-all').addEventListener('click', () => void removeAll());

  return {
    /** Shows the first page of the whole catalogue. */
    start: () => load(pageUrl(0)),
  };
}

/** @param {string} text @param {string} label for phone-width layouts @param {string} className */
function cell(text, label, className) {
  const td = document.createElement('td');
  td.textContent = text;
  td.dataset.label = label;
  td.className = className;
  return td;
}

/** @param {string} text @param {string} label @param {() => void} onClick @param {string} [className] */
function button(text, label, onClick, className) {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = text;
  b.setAttribute('aria-label', label);
  if (className) b.className = className;
  b.addEventListener('click', onClick);
  return b;
}

/** @param {'input' | 'textarea'} tag @param {string} value @param {string} label */
function field(tag, value, label) {
  const el = document.createElement(tag);
  el.value = value;
  el.setAttribute('aria-label', label);
  if (el instanceof HTMLTextAreaElement) el.rows = 2;
  else el.type = 'text';
  return el;
}

/** @param {unknown} err */
function errorText(err) {
  return err instanceof ApiError ? err.message : String(err);
}
