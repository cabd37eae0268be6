import { ServiceUnavailableError } from '@crud-master/common';

/** Seconds a shed client is asked to wait before it tries again. */
export const RETRY_AFTER_S = 1;

/** The deliberate answer to overload: 503 `overloaded` with `Retry-After`, never a reset connection. */
export class OverloadedError extends ServiceUnavailableError {
  constructor() {
    super('The gateway is at capacity; retry after Retry-After seconds', 'overloaded', { 'Retry-After': String(RETRY_AFTER_S) });
  }
}

export interface LimiterOptions {
  /** Requests that may hold a slot at once. */
  max: number;
  /** Requests that may wait for a slot; beyond that a request is shed at once. */
  queue: number;
  /** A request that waited this long for a slot is shed (ms). */
  queueTimeoutMs: number;
}

/** Frees the slot; calling it again does nothing. */
export type Release = () => void;

export interface Limiter {
  /** Resolves with the slot's release once the request may go; rejects with OverloadedError when it is shed. */
  acquire(): Promise<Release>;
  /** A slot at once if one is free (no promise, for the common case), else undefined: then acquire(). */
  tryAcquire(): Release | undefined;
  /** Requests that may hold a slot at once. */
  readonly max: number;
  readonly active: number;
  readonly waiting: number;
}

interface Waiter {
  grant: (release: Release) => void;
  timer: NodeJS.Timeout;
}

/**
 * A concurrency limit with a bounded, time-limited FIFO queue in front of it. The gateway holds
 * one for its connections to the inventory, as large as its agent's `maxSockets`, so a request
 * never waits unbounded inside the agent: it waits here, a bounded time, then is answered 503.
 */
export function createLimiter({ max, queue, queueTimeoutMs }: LimiterOptions): Limiter {
  let active = 0;
  const waiters: Waiter[] = [];

  const slot = (): Release => {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = waiters.shift();
      if (next) {
        // The slot passes straight to the oldest waiter: `active` does not change.
        clearTimeout(next.timer);
        next.grant(slot());
      } else {
        active--;
      }
    };
  };

  return {
    max,
    tryAcquire(): Release | undefined {
      if (active >= max) return undefined;
      active++;
      return slot();
    },
    acquire(): Promise<Release> {
      if (active < max) {
        active++;
        return Promise.resolve(slot());
      }
      if (waiters.length >= queue) return Promise.reject(new OverloadedError());
      return new Promise<Release>((resolve, reject) => {
        const waiter: Waiter = {
          grant: resolve,
          timer: setTimeout(() => {
            const i = waiters.indexOf(waiter);
            if (i >= 0) waiters.splice(i, 1);
            reject(new OverloadedError());
          }, queueTimeoutMs),
        };
        waiters.push(waiter);
      });
    },
    get active() {
      return active;
    },
    get waiting() {
      return waiters.length;
    },
  };
}
