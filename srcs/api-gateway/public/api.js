// The page's only way to the gateway: same-origin fetch calls to the public API, each bounded in
// time, each failure turned into one readable sentence (the API's own message when it sent one).

/** No request may leave the page waiting longer than this (the gateway's own limit is 5 s). */
export const REQUEST_TIMEOUT_MS = 10_000;

/** What went wrong with a request: the API's refusal, or no usable answer at all. */
export class ApiError extends Error {
  /**
   * @param {string} message shown to the user as it is
   * @param {number} status the HTTP status, 0 when there was no answer
   * @param {string} code the API's error code, or 'network' / 'timeout'
   * @param {number | undefined} retryAfter seconds from Retry-After, when the API sent one
   */
  constructor(message, status, code, retryAfter) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

/**
 * Sends one request and resolves with the Response when it is 2xx (or 304); otherwise rejects
 * with an ApiError carrying the API's `{"error":{"message"}}`. `signal` cancels it (a newer
 * search replaces an older one); the timeout applies either way.
 * @param {string} url
 * @param {{ method?: string, body?: unknown, headers?: Record<string, string>, signal?: AbortSignal }} [options]
 * @returns {Promise<Response>}
 */
export async function request(url, { method = 'GET', body, headers = {}, signal } = {}) {
  const timeout = AbortSignal.timeout(REQUEST_TIMEOUT_MS);
  const init = {
    method,
    headers: { Accept: 'application/json', ...headers },
    signal: signal ? anySignal([signal, timeout]) : timeout,
    // No cookies exist or are needed: the API is anonymous.
    credentials: /** @type {RequestCredentials} */ ('omit'),
  };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(url, init);
  } catch (err) {
    if (signal?.aborted) throw err; // cancelled by the page itself: not an error to show
    if (timeout.aborted) throw new ApiError(`No answer from the gateway within ${REQUEST_TIMEOUT_MS / 1000} s.`, 0, 'timeout');
    throw new ApiError('The gateway cannot be reached.', 0, 'network');
  }
  if (res.ok || res.status === 304) return res;
  throw await errorOf(res);
}

/** @param {Response} res */
async function errorOf(res) {
  const retryAfter = parseRetryAfter(res.headers.get('Retry-After'));
  let message = `The gateway answered ${res.status} ${res.statusText}.`.replace(' .', '.');
  let code = 'http_' + res.status;
  try {
    const body = await res.json();
    if (body && body.error && typeof body.error.message === 'string') {
      message = body.error.message;
      code = String(body.error.code ?? code);
    }
  } catch {
    // Not JSON: keep the status line.
  }
  return new ApiError(message, res.status, code, retryAfter);
}

/** @param {string | null} value */
function parseRetryAfter(value) {
  if (value === null) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - Date.now()) / 1000));
}

/** AbortSignal.any where the browser has it, else a small equivalent. @param {AbortSignal[]} signals */
function anySignal(signals) {
  if (typeof AbortSignal.any === 'function') return AbortSignal.any(signals);
  const controller = new AbortController();
  for (const s of signals) {
    if (s.aborted) return AbortSignal.abort(s.reason);
    s.addEventListener('abort', () => controller.abort(s.reason), { once: true });
  }
  return controller.signal;
}

/**
 * RFC 8288 `Link` header -> { first, prev, next, last } URLs. Only same-origin targets are kept:
 * the page follows these links itself.
 * @param {string | null} header
 * @returns {Record<string, string>}
 */
export function parseLinks(header) {
  /** @type {Record<string, string>} */
  const links = {};
  if (!header) return links;
  for (const part of header.split(/,(?=\s*<)/)) {
    const match = /^\s*<([^>]*)>(.*)$/.exec(part);
    if (!match) continue;
    const rel = /;\s*rel="?([^";]+)"?/i.exec(match[2] ?? '');
    if (!rel) continue;
    const url = new URL(match[1] ?? '', window.location.origin);
    if (url.origin !== window.location.origin) continue;
    for (const name of (rel[1] ?? '').trim().split(/\s+/)) links[name.toLowerCase()] = url.pathname + url.search;
  }
  return links;
}

/**
 * A UUID (version 4) for `Idempotency-Key`. crypto.randomUUID exists in secure contexts only,
 * and the gateway is often opened over plain http on a VM's address; getRandomValues works in
 * every context.
 */
export function newIdempotencyKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x40;
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
