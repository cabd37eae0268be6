import type http from 'node:http';
import type { Dispatcher } from 'undici';
import { boundForLog, type HttpMetrics, type Logger } from '@crud-master/common';
import { answerError, recordAccess, type AccessRecord } from './access-line';
import { forwardedHeaders, writeForwardedHead } from './forwarded-headers';
import type { Release } from './shed';
import { classifyClientError, isTimeout, mayRetry, meansDown } from './upstream/failure';
import type { Upstream, UpstreamPool } from './upstream/pool';

/** What every exchange of one proxy shares. */
export interface ProxyShared {
  pool: UpstreamPool;
  /** One undici Pool per inventory instance (inventory-proxy.ts). */
  clients: Map<Upstream, Dispatcher>;
  logger: Logger;
  metrics: HttpMetrics;
  /** No answer from the inventory within this long: 504. */
  timeoutMs: number;
}

type Controller = Dispatcher.DispatchController;

const CLIENT_GONE = 'the client went away';

/**
 * One proxied request, from its headers to its access line: it is the undici dispatch handler of
 * its attempts at the inventory (one, or two when the first one's connection failed), and it
 * writes the answer, the access line and the metrics. One object per request, its methods on the
 * prototype: nothing per request that could be made once.
 */
export class Exchange implements Dispatcher.DispatchHandler, AccessRecord {
  readonly started = performance.now();
  body: Buffer | undefined;
  release: Release | undefined;
  private upstream: Upstream | undefined;
  private controller: Controller | undefined;
  private retried = false;
  private complete = false;
  private onDrain: (() => void) | undefined;

  /**
   * `recorded`: the request already has its id, access line and metrics (the Koa stack's, for a
   * movies path only Koa can read, front-door.ts); otherwise this exchange gives them.
   */
  constructor(
    private readonly shared: ProxyShared,
    readonly req: http.IncomingMessage,
    readonly res: http.ServerResponse,
    readonly path: string,
    readonly route: string,
    readonly requestId: string,
    recorded: boolean,
  ) {
    res.once('close', recorded ? this.onClientGone : this.onClose);
  }

  /** Sends the request to the next inventory instance that is up, other than `failed`. */
  forward(failed?: Upstream): void {
    const { pool, clients } = this.shared;
    const upstream = pool.pick(failed);
    if (!upstream) {
      this.shared.logger.warn({ requestId: this.requestId, path: boundForLog(this.path) }, 'no inventory instance is up');
      this.freeSlot();
      return this.fail(502, 'bad_gateway', 'The inventory service is unreachable: no instance is up');
    }
    this.upstream = upstream;
    const req = this.req;
    (clients.get(upstream) as Dispatcher).dispatch(
      { path: req.url as string, method: req.method as Dispatcher.HttpMethod, headers: forwardedHeaders(req), body: this.body ?? null },
      this,
    );
  }

  onRequestStart(controller: Controller): void {
    this.controller = controller;
    // The client left before undici took the request (its close found no controller to abort).
    if (this.res.destroyed) controller.abort(new Error(CLIENT_GONE));
  }

  onResponseStart(controller: Controller, statusCode: number, headers: http.IncomingHttpHeaders, statusMessage?: string): void {
    if (this.res.destroyed) return controller.abort(new Error(CLIENT_GONE));
    if (statusCode < 200) return; // an interim 1xx: the final answer follows
    writeForwardedHead(this.res, this.req, statusCode, statusMessage, headers, this.requestId);
  }

  onResponseData(controller: Controller, chunk: Buffer): void {
    // Nobody to write to: a pause here would wait for a 'drain' that never comes and hold the
    // inventory connection for good.
    if (this.res.destroyed) return controller.abort(new Error(CLIENT_GONE));
    // Backpressure: a client that reads slowly pauses the inventory's answer, never buffers it here.
    if (!this.res.write(chunk)) {
      controller.pause();
      this.onDrain ??= () => this.controller?.resume();
      this.res.once('drain', this.onDrain);
    }
  }

  onResponseEnd(): void {
    this.complete = true;
    this.freeSlot(); // the inventory's answer is all here: its connection is free
    this.res.end();
  }

  onResponseError(_controller: Controller, err: Error): void {
    this.complete = true;
    const res = this.res;
    if (res.destroyed) return this.freeSlot(); // the client went away: nothing to answer, nothing learnt
    if (res.headersSent) {
      // The inventory's answer had started (a list stream cut midway): cut the client's too, so
      // it cannot take a partial body for a whole one.
      this.freeSlot();
      res.destroy();
      return;
    }
    const failure = classifyClientError(err);
    const upstream = this.upstream as Upstream;
    const { pool, logger, timeoutMs } = this.shared;
    if (meansDown(failure)) pool.markDown(upstream, (err as NodeJS.ErrnoException).code ?? err.message);
    if (!this.retried && mayRetry(this.req.method, failure) && pool.instances.length > 1) {
      // Once more, in the same slot, to another instance (upstream/failure.ts says when that is safe).
      this.retried = true;
      this.complete = false;
      logger.warn({ requestId: this.requestId, path: boundForLog(this.path), instance: upstream.url, failure }, 'retrying on another inventory instance');
      return this.forward(upstream);
    }
    this.freeSlot();
    if (isTimeout(err)) {
      logger.warn({ requestId: this.requestId, path: boundForLog(this.path), timeoutMs }, 'inventory timed out');
      this.fail(504, 'gateway_timeout', `The inventory did not answer within ${timeoutMs} ms`);
    } else {
      logger.warn({ requestId: this.requestId, path: boundForLog(this.path), err: (err as NodeJS.ErrnoException).code ?? err.message }, 'inventory unreachable');
      this.fail(502, 'bad_gateway', 'The inventory service is unreachable');
    }
  }

  /** Answers with the contract's JSON error, in one write. */
  fail(status: number, code: string, message: string, headers?: Record<string, string>): void {
    answerError(this.res, this.requestId, status, code, message, headers);
  }

  private freeSlot(): void {
    const release = this.release;
    this.release = undefined;
    release?.();
  }

  /** The client's connection is done with this request: answered, or gone first. */
  private readonly onClientGone = (): void => {
    this.freeSlot();
    // A client that went away mid-answer must not hold the inventory's connection.
    if (!this.complete) this.controller?.abort(new Error(CLIENT_GONE));
  };

  /** onClientGone, then the access line and the metrics, as the Koa stack writes them. */
  private readonly onClose = (): void => {
    this.onClientGone();
    recordAccess(this.shared, this);
  };
}
