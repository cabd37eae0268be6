import { isUtf8 } from 'node:buffer';
import type http from 'node:http';
import { InvalidJsonError, boundForLog, describeError, parseJsonText, pickRequestId, type HttpMetrics, type Logger } from '@crud-master/common';
import { answerError, answerJson, recordAccess, type AccessRecord } from '../access-line';
import { DeadlineQueue, type Deadlined } from '../deadline-queue';
import { cutSlowBody } from '../request-body';
import { queuedAnswer, type OrderDesk } from './order-desk';

/** The route template of every order, as the Koa router names it (access line, metrics). */
const ROUTE = '/api/billing';

/**
 * Content types the Koa stack's jsonBody takes without a doubt. Any other spelling (other
 * parameters, quoted charset, upper-case type) goes through Koa, which decides.
 */
const PLAIN_TYPES = new Set(['application/json', 'application/json; charset=utf-8', 'application/json;charset=utf-8', 'application/json; charset=UTF-8']);
/** A Content-Length of 1 to 9 digits without a leading zero (an empty body goes through Koa). */
const LENGTH = /^[1-9][0-9]{0,8}$/;
const LIMIT = /^([0-9]+)(b|kb|mb)?$/i;
const UNITS: Record<string, number> = { b: 1, kb: 1024, mb: 1024 * 1024 };

/** A body limit such as '16kb' in bytes, as raw-body reads it; 0 for a form this does not read (then no order takes the door). */
export function limitBytes(limit: string): number {
  const m = LIMIT.exec(limit.trim());
  return m ? Number(m[1]) * (UNITS[(m[2] ?? 'b').toLowerCase()] ?? 0) : 0;
}

export interface OrderDoorOptions {
  desk: OrderDesk;
  logger: Logger;
  /** Where the orders' requests are counted and timed (the Koa stack's registry). */
  metrics: HttpMetrics;
  /** The Koa route's body limit ('16kb'): a larger body goes through Koa, which answers 413. */
  bodyLimit: string;
  /** A body must have arrived this long after its headers, else 408 (request-body.ts). */
  bodyTimeoutMs: number;
}

/** `POST /api/billing` before the Koa stack (front-door.ts). */
export interface OrderDoor {
  /** Whether this request is an order in its common form, which the front door hands to `handle`. */
  accepts(req: http.IncomingMessage, url: string): boolean;
  /** Takes one order: `path` is its request target (`/api/billing` or `/api/billing/`). */
  handle(req: http.IncomingMessage, res: http.ServerResponse, path: string): void;
}

interface DoorShared extends OrderDoorOptions {
  readonly limit: number;
  /** The body deadline of every order still reading its body, on one timer. */
  readonly bodies: DeadlineQueue<OrderExchange>;
}

/**
 * The hot path of orders. Through Koa each order cost a context, a dozen middleware promises, a
 * child logger and two close listeners more (README, "Benchmark"). This door takes an order only
 * in the form the Koa stack would take it without a question: `POST` of exactly `/api/billing` or
 * `/api/billing/`, a plain JSON content type, no content or transfer encoding, a Content-Length
 * within the limit. Everything else (415, 413, a chunked body, a query string, another method)
 * goes through Koa, as before. What it answers, logs and counts is what the Koa stack would:
 * the request id, one access line, the HTTP metrics, the JSON errors, the 408 of a slow body.
 */
export function createOrderDoor(options: OrderDoorOptions): OrderDoor {
  const shared: DoorShared = { ...options, limit: limitBytes(options.bodyLimit), bodies: new DeadlineQueue() };
  return {
    accepts(req, url): boolean {
      if (req.method !== 'POST' || (url !== '/api/billing' && url !== '/api/billing/')) return false;
      const headers = req.headers;
      if (headers['transfer-encoding'] !== undefined || headers['content-encoding'] !== undefined) return false;
      const type = headers['content-type'];
      const length = headers['content-length'];
      return type !== undefined && PLAIN_TYPES.has(type) && length !== undefined && LENGTH.test(length) && Number(length) <= shared.limit;
    },
    handle(req, res, path): void {
      new OrderExchange(shared, req, res, path, pickRequestId(req.headers['x-request-id'] as string | undefined)).read();
    },
  };
}

/** A body's bytes as a parsed order, exactly as common's jsonBody reads them (UTF-8, a BOM dropped, lossless numbers). */
function parseOrderBytes(raw: Buffer): unknown {
  if (!isUtf8(raw)) throw new InvalidJsonError('Request body is not valid UTF-8');
  const text = raw.toString('utf8');
  return parseJsonText(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
}

/** One order through the door: one object, its methods on the prototype, its listeners made once. */
class OrderExchange implements AccessRecord, Deadlined {
  readonly started = performance.now();
  readonly route = ROUTE;
  /** When its body must have arrived (else 408). */
  readonly deadline: number;
  /** Its body arrived, or its connection is done: no deadline to keep. */
  settled = false;
  private body: Buffer | undefined;
  private chunks: Buffer[] | undefined;

  constructor(
    private readonly shared: DoorShared,
    readonly req: http.IncomingMessage,
    readonly res: http.ServerResponse,
    readonly path: string,
    readonly requestId: string,
  ) {
    this.deadline = Date.now() + shared.bodyTimeoutMs;
    res.on('close', this.onClose);
  }

  read(): void {
    const req = this.req;
    if (!req.complete) this.shared.bodies.add(this);
    else this.settled = true;
    req.on('data', this.onData);
    req.on('end', this.onEnd);
  }

  /** The body did not arrive in time: 408 (request-body.ts). */
  expire(): void {
    this.settled = true;
    cutSlowBody(this.req, this.res, this.shared.bodyTimeoutMs, this.onCut, this.requestId);
  }

  private done(): void {
    if (this.settled) return;
    this.settled = true;
    this.shared.bodies.settle();
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.body === undefined) this.body = chunk;
    else (this.chunks ??= [this.body]).push(chunk);
  };

  private readonly onEnd = (): void => {
    this.done();
    const res = this.res;
    // Cut by the deadline (408) or the client gone: no order is taken without its answer.
    if (res.headersSent || res.destroyed) return;
    let order: unknown;
    try {
      order = parseOrderBytes(this.chunks ? Buffer.concat(this.chunks) : (this.body as Buffer));
    } catch (err) {
      return this.onRefused(err);
    }
    const key = this.req.headers['idempotency-key'];
    this.shared.desk.take(order, typeof key === 'string' ? key : '', this.requestId).then(this.onQueued, this.onRefused);
  };

  private readonly onQueued = (messageId: string): void => {
    const res = this.res;
    if (res.writableEnded || res.destroyed) return; // the client went away meanwhile
    answerJson(res, this.requestId, 200, JSON.stringify(queuedAnswer(messageId)));
  };

  /** As common's errorMiddleware: the JSON error, and a 5xx logged with the request id. */
  private readonly onRefused = (err: unknown): void => {
    const { status, code, message, headers } = describeError(err);
    if (status >= 500) {
      const line = { requestId: this.requestId, err, method: this.req.method, path: boundForLog(this.path), status };
      if (status === 503) this.shared.logger.warn(line, 'dependency unavailable');
      else this.shared.logger.error(line, 'request failed');
    }
    answerError(this.res, this.requestId, status, code, message, headers);
  };

  private readonly onCut = (): void => {
    this.shared.logger.warn({ requestId: this.requestId, method: this.req.method, path: this.path, timeoutMs: this.shared.bodyTimeoutMs }, 'request body too slow: cut');
  };

  private readonly onClose = (): void => {
    this.done();
    recordAccess(this.shared, this);
  };
}
