/**
 * Settles like `promise`, or rejects with `onTimeout()` once `ms` have passed first. The timer is
 * cleared either way, so it never keeps the process alive.
 */
export async function withTimeout<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), Math.max(0, ms));
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** Waits for `promise` to settle, at most `ms`; never rejects. */
export async function settleWithin(promise: Promise<unknown>, ms: number): Promise<void> {
  await withTimeout(promise, ms, () => new Error('timed out')).catch(() => undefined);
}
