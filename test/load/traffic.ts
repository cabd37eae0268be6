/**
 * A bounded load generator over keep-alive connections: `connections` workers, each with its own
 * socket from one agent, send requests back to back (or at a fixed total rate) until the duration
 * or the request budget is spent, and every answer is classified. Loopback only.
 */
import http from 'node:http';

export interface RequestSpec {
  kind: string;
  method: 'GET' | 'POST';
  path: string;
  body?: string;
  headers?: Record<string, string>;
}

export interface Outcome {
  kind: string;
  /** 0: no HTTP answer (refused, reset, timed out). */
  status: number;
  /** ms since the run started. */
  at: number;
  latencyMs: number;
  retryAfter: string | undefined;
  /** The JSON error code of an error answer. */
  errorCode: string | undefined;
  /** message_id of a 200 order. */
  messageId: string | undefined;
  /** Why there was no answer. */
  failure: string | undefined;
}

export interface TrafficOptions {
  baseUrl: string;
  connections: number;
  durationMs: number;
  /** Upper bound on requests, whatever the duration. */
  maxRequests: number;
  /** Total requests per second across all connections; as fast as answers come when absent. */
  ratePerSec?: number;
  /** The i-th request. */
  next: (i: number) => RequestSpec;
  /** A request with no answer within this is counted as a failure (ms). */
  requestTimeoutMs?: number;
  /** Stop early when this resolves (the fault case ends traffic once recovery is seen). */
  stop?: Promise<unknown>;
  /**
   * At the deadline, hang up on the requests still waiting for an answer (as autocannon and
   * impatient clients do) instead of waiting for them; their outcomes are left out.
   */
  hangUpAtDeadline?: boolean;
}

export interface TrafficResult {
  outcomes: Outcome[];
  /** Requests the client hung up on at the deadline (hangUpAtDeadline). */
  abandoned: Outcome[];
  elapsedMs: number;
}

const MAX_BODY = 1 << 20;

function send(agent: http.Agent, baseUrl: string, spec: RequestSpec, timeoutMs: number, started: number): Promise<Outcome> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    let done = false;
    const finish = (o: Omit<Outcome, 'kind' | 'at' | 'latencyMs'>): void => {
      if (done) return;
      done = true;
      resolve({ kind: spec.kind, at: t0 - started, latencyMs: Date.now() - t0, ...o });
    };
    const headers: Record<string, string | number> = { ...(spec.headers ?? {}) };
    if (spec.body !== undefined) {
      headers['Content-Type'] = 'application/json';
      headers['Content-Length'] = Buffer.byteLength(spec.body);
    }
    const req = http.request(new URL(spec.path, baseUrl), { method: spec.method, headers, agent, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size <= MAX_BODY) chunks.push(chunk);
      });
      res.on('error', (err) => finish({ status: 0, retryAfter: undefined, errorCode: undefined, messageId: undefined, failure: `response: ${err.message}` }));
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        let errorCode: string | undefined;
        let messageId: string | undefined;
        if (status >= 400 || spec.kind === 'order') {
          try {
            const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { error?: { code?: string }; message_id?: string };
            errorCode = body.error?.code;
            messageId = body.message_id;
          } catch {
            errorCode = status >= 400 ? '(not JSON)' : undefined;
          }
        }
        const retryAfter = res.headers['retry-after'];
        finish({ status, retryAfter, errorCode, messageId, failure: undefined });
      });
    });
    req.on('timeout', () => {
      const where = req.socket?.connecting ? 'still connecting' : req.socket && req.socket.bytesRead > 0 ? 'answer started' : 'connected, nothing read';
      req.destroy(new Error(`no answer within ${timeoutMs} ms (${where})`));
    });
    req.on('error', (err: NodeJS.ErrnoException) =>
      finish({
        status: 0,
        retryAfter: undefined,
        errorCode: undefined,
        messageId: undefined,
        // "socket hang up" (closed without an answer) and "read ECONNRESET" (reset) share a code.
        failure: err.code && err.message !== `read ${err.code}` ? `${err.code}: ${err.message}` : (err.code ?? err.message),
      }),
    );
    req.end(spec.body);
  });
}

export async function runTraffic(options: TrafficOptions): Promise<TrafficResult> {
  const timeoutMs = options.requestTimeoutMs ?? 30_000;
  // A well-behaved keep-alive client: with a `timeout`, Node's agent honours the server's
  // `Keep-Alive: timeout=N` hint and drops a pooled socket one second before the server would
  // close it (without one it ignores the hint and reuses sockets the gateway is closing: the
  // HTTP/1.1 keep-alive race, ECONNRESET on a request that never reached the server; nodejs/node
  // #47130). Browsers, curl and undici do the same. The agent's timeout must differ from the
  // requests' own: Node re-arms a reused socket's timeout for the request only when they differ,
  // and would otherwise leave the 4 s idle timeout on it while the request waits for its answer.
  const agent = new http.Agent({
    keepAlive: true,
    maxSockets: options.connections,
    maxFreeSockets: options.connections,
    timeout: timeoutMs + 1_000,
  });
  const started = Date.now();
  const deadline = started + options.durationMs;
  const outcomes: Outcome[] = [];
  const abandoned: Outcome[] = [];
  let issued = 0;
  let stopped = false;
  let hungUp = false;
  void options.stop?.then(() => (stopped = true));
  const hangUp = options.hangUpAtDeadline
    ? setTimeout(() => {
        hungUp = true;
        agent.destroy();
      }, options.durationMs)
    : undefined;
  const worker = async (): Promise<void> => {
    while (!stopped && issued < options.maxRequests && Date.now() < deadline) {
      const i = issued++;
      if (options.ratePerSec !== undefined) {
        const due = started + (i * 1000) / options.ratePerSec;
        const wait = due - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        if (stopped || Date.now() >= deadline) break;
      }
      const outcome = await send(agent, options.baseUrl, options.next(i), timeoutMs, started);
      (hungUp && outcome.status === 0 ? abandoned : outcomes).push(outcome);
    }
  };
  try {
    await Promise.all(Array.from({ length: options.connections }, worker));
  } finally {
    clearTimeout(hangUp);
    agent.destroy();
  }
  if (process.env.LOAD_DEBUG === '1') {
    for (const o of outcomes.filter((x) => x.status === 0)) {
      console.error(`no answer: ${new Date(started + o.at).toISOString()} ${o.kind} after ${o.latencyMs} ms: ${o.failure}`);
    }
  }
  return { outcomes, abandoned, elapsedMs: Date.now() - started };
}

/** The p-th percentile (0-100) of `values`, 0 when empty. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;
}
