import type http from 'node:http';

/** Headers about one connection, never forwarded by a proxy (RFC 9110 §7.6.1). */
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade'];

/** Removes the hop-by-hop headers of an upstream answer, and those its `Connection` names. */
export function dropHopByHop(headers: http.IncomingHttpHeaders): void {
  const named = String(headers.connection ?? '')
    .split(',')
    .map((name) => name.trim().toLowerCase())
    .filter((name) => name !== '');
  for (const name of [...HOP_BY_HOP, ...named]) delete headers[name];
}
