import { AppError } from '@crud-master/common';

/** 422: a used Idempotency-Key came back with another order. */
export class IdempotencyKeyReusedError extends AppError {
  constructor() {
    super(
      422,
      'idempotency_key_reused',
      'This Idempotency-Key was already used for a different order; use a new key for a new order, or resend the same order unchanged',
    );
  }
}

export interface IdempotencyKeysOptions {
  /** Keys remembered at most; the oldest go first (default 100,000: a few MB). */
  maxEntries?: number;
  /** How long a key is remembered (ms, default 24 h). */
  ttlMs?: number;
  now?: () => number;
}

/**
 * The orders this gateway has queued under each Idempotency-Key, as fingerprints: a retry of the
 * same order is let through (the worker stores its message id once), the same key with another
 * order is refused with 422 before anything is queued.
 *
 * In memory, bounded in count and age: it forgets after a restart, after `ttlMs`, and what
 * another gateway saw. The durable guard is the worker's, which records every reused key whose
 * order differs from the stored one in `order_conflicts` (see billing-app's conflicts.ts).
 */
export class IdempotencyKeys {
  private readonly entries = new Map<string, { fingerprint: string; at: number }>();
  private readonly maxEntries: number;
  private readonly ttlMs: number;
  private readonly now: () => number;

  constructor(options: IdempotencyKeysOptions = {}) {
    this.maxEntries = options.maxEntries ?? 100_000;
    this.ttlMs = options.ttlMs ?? 24 * 3600 * 1000;
    this.now = options.now ?? Date.now;
  }

  /** Remembers `key` for `fingerprint`, or throws IdempotencyKeyReusedError when it holds another. */
  claim(key: string, fingerprint: string): void {
    const now = this.now();
    const known = this.entries.get(key);
    if (known && now - known.at < this.ttlMs) {
      if (known.fingerprint !== fingerprint) throw new IdempotencyKeyReusedError();
      return;
    }
    // Map iteration is insertion order: the first entries are the oldest.
    this.entries.delete(key);
    this.entries.set(key, { fingerprint, at: now });
    for (const [oldKey, entry] of this.entries) {
      if (this.entries.size <= this.maxEntries && now - entry.at < this.ttlMs) break;
      this.entries.delete(oldKey);
    }
  }

  get size(): number {
    return this.entries.size;
  }
}
