import http from 'node:http';

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** Header names and values exactly as they came off the wire, in order. */
  rawHeaders: string[];
  body: Buffer;
}

export interface RawRequest {
  method?: string;
  path: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

/**
 * One HTTP request with Node's own client, no normalisation: what the tests compare byte for
 * byte between the inventory and the gateway. Bounded by `timeoutMs`.
 */
export function rawRequest(baseUrl: string, req: RawRequest, timeoutMs = 10_000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const url = new URL(req.path, baseUrl);
    const headers: Record<string, string | number> = { ...(req.headers ?? {}) };
    if (req.body !== undefined) headers['Content-Length'] = Buffer.byteLength(req.body);
    const outgoing = http.request(
      url,
      { method: req.method ?? 'GET', headers, agent: false, timeout: timeoutMs },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks) }),
        );
        res.on('error', reject);
      },
    );
    outgoing.on('timeout', () => outgoing.destroy(new Error(`no answer from ${url.href} within ${timeoutMs} ms`)));
    outgoing.on('error', reject);
    outgoing.end(req.body);
  });
}

/** Headers that describe one TCP connection rather than the response (RFC 9110 §7.6.1). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'date']);

/** End-to-end headers in wire order, names lower-cased: what must survive a proxy unchanged. */
export function endToEndHeaders(res: RawResponse): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  for (let i = 0; i < res.rawHeaders.length; i += 2) {
    const name = (res.rawHeaders[i] ?? '').toLowerCase();
    if (!HOP_BY_HOP.has(name)) pairs.push([name, res.rawHeaders[i + 1] ?? '']);
  }
  return pairs;
}

export function json(res: RawResponse): unknown {
  return JSON.parse(res.body.toString('utf8'));
}
