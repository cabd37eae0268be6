/** How a request to an inventory instance failed, judged before any byte of its answer arrived. */
export type UpstreamFailure =
  /** The instance never accepted the connection: nothing of the request can have reached it. */
  | 'not-connected'
  /** The connection broke before an answer (reset, closed): the instance may have seen the request. */
  | 'lost'
  /** Connected, but no answer within the upstream timeout: the instance is slow, not gone (504). */
  | 'slow'
  | 'other';

// Errors that connect() alone raises: no TCP connection existed, so no request byte was sent.
const NEVER_CONNECTED = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'ENOTFOUND', 'EAI_AGAIN']);
// UND_ERR_SOCKET: undici's "other side closed" (the connection ended before a complete answer).
const CONNECTION_LOST = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED', 'UND_ERR_SOCKET']);
// undici's timeouts: no connection, no headers, or a stall in the body within the upstream timeout.
const TIMEOUTS = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/** Whether an undici error is one of its timeouts (504, not 502). */
export function isTimeout(err: Error): boolean {
  return TIMEOUTS.has((err as NodeJS.ErrnoException).code ?? '');
}

/** classifyFailure for an error of the undici client that forwards requests to the inventory. */
export function classifyClientError(err: Error): UpstreamFailure {
  const code = (err as NodeJS.ErrnoException).code;
  return classifyFailure(err, isTimeout(err), code === 'UND_ERR_CONNECT_TIMEOUT');
}

/**
 * `timedOut`: the upstream timeout fired; `whileConnecting`: it fired before the socket connected
 * (a host that is off drops the SYN: nothing is sent until connect completes, so nothing was).
 */
export function classifyFailure(err: Error, timedOut: boolean, whileConnecting: boolean): UpstreamFailure {
  if (timedOut) return whileConnecting ? 'not-connected' : 'slow';
  const code = (err as NodeJS.ErrnoException).code ?? '';
  if (NEVER_CONNECTED.has(code)) return 'not-connected';
  if (CONNECTION_LOST.has(code)) return 'lost';
  return 'other';
}

/**
 * Whether a failed request may go once more, to another instance. GET and HEAD change nothing, so
 * a broken connection is safe to try again. A write is retried only when it provably never left
 * (`not-connected`): after a reset the instance may have committed it, and a blind retry would
 * create the movie twice; that request gets 502 and the client decides.
 */
export function mayRetry(method: string | undefined, failure: UpstreamFailure): boolean {
  if (failure === 'not-connected') return true;
  return failure === 'lost' && (method === 'GET' || method === 'HEAD');
}

/** Whether the failure says the instance is gone, so that no request should go there until a check passes. */
export function meansDown(failure: UpstreamFailure): boolean {
  return failure === 'not-connected' || failure === 'lost';
}
