import type http from 'node:http';

/**
 * Request headers the gateway does not pass on: those about one connection (RFC 9110 §7.6.1),
 * the ones the client for the inventory sets itself (the body's length, from the body read
 * whole), `expect` (the gateway has already read the body), and the X-Forwarded-* ones it
 * rewrites.
 */
const NOT_FORWARDED = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'upgrade',
  'transfer-encoding',
  'content-length',
  'expect',
  'x-forwarded-for',
  'x-forwarded-port',
  'x-forwarded-proto',
  'x-forwarded-host',
]);

/** Response headers about one connection, never passed on (RFC 9110 §7.6.1). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade']);

function appended(existing: string | string[] | undefined, value: string): string {
  return existing === undefined ? value : `${String(existing)},${value}`;
}

/**
 * The request's headers for the inventory, as a flat [name, value, ...] list: the client's own
 * end-to-end headers (the request id among them, requestContext/Exchange set it), its Host, and
 * X-Forwarded-For/-Port/-Proto/-Host added to whatever it sent, as http-proxy's `xfwd` did.
 */
export function forwardedHeaders(req: http.IncomingMessage): string[] {
  const headers = req.headers;
  const out: string[] = [];
  for (const name in headers) {
    if (NOT_FORWARDED.has(name)) continue;
    const value = headers[name];
    if (value === undefined) continue;
    if (typeof value === 'string') out.push(name, value);
    else for (const one of value) out.push(name, one);
  }
  const socket = req.socket;
  out.push(
    'x-forwarded-for',
    appended(headers['x-forwarded-for'], socket.remoteAddress ?? ''),
    'x-forwarded-port',
    appended(headers['x-forwarded-port'], String(socket.localPort ?? '')),
    'x-forwarded-proto',
    appended(headers['x-forwarded-proto'], 'http'),
  );
  const host = headers['x-forwarded-host'] ?? headers.host;
  if (host !== undefined) out.push('x-forwarded-host', String(host));
  return out;
}

/**
 * Writes the inventory's status line and headers to the client as they came, in their order,
 * less the hop-by-hop ones and those its `Connection` names (they describe our connection to the
 * inventory: passed on, `keep-alive` told a client that sent `Connection: close` to reuse a
 * socket the server was closing; Node writes the client's own). `X-Request-Id` is the gateway's
 * (the inventory echoes the one it was sent, so it is the same). One writeHead with a flat list:
 * Node sends it with the first body chunk, in one write.
 */
export function writeForwardedHead(
  res: http.ServerResponse,
  req: http.IncomingMessage,
  statusCode: number,
  statusMessage: string | undefined,
  headers: http.IncomingHttpHeaders,
  requestId: string,
): void {
  const named = headers.connection;
  const dropNamed = named === undefined ? undefined : new Set(String(named).toLowerCase().split(',').map((n) => n.trim()));
  // HTTP/1.0 has no chunked coding: Node ends such a body by closing the connection instead.
  const oldClient = req.httpVersionMajor === 1 && req.httpVersionMinor === 0;
  const out: Array<string | string[]> = [];
  let hasId = false;
  for (const name in headers) {
    if (HOP_BY_HOP.has(name) || dropNamed?.has(name) || (oldClient && name === 'transfer-encoding')) continue;
    const value = headers[name];
    if (value === undefined) continue;
    if (name === 'x-request-id') {
      hasId = true;
      out.push(name, requestId);
    } else {
      out.push(name, value);
    }
  }
  if (!hasId) out.push('x-request-id', requestId);
  if (statusMessage) res.writeHead(statusCode, statusMessage, out as unknown as http.OutgoingHttpHeaders);
  else res.writeHead(statusCode, out as unknown as http.OutgoingHttpHeaders);
}
