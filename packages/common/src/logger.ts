import pino, { type DestinationStream, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

export interface LoggerOptions {
  name: string;
  level: LevelWithSilent;
  /** Where lines go; stdout through an asynchronous buffer when not given (see below). */
  destination?: DestinationStream;
}

const CENSOR = '[redacted]';
/** How deep below the logged object a `password` is still found (`*.*.*.password`). */
const REDACT_DEPTH = 3;

/**
 * `obj` with every `password` property, at any depth up to REDACT_DEPTH, replaced by the censor.
 * Copies only the objects on the way to a password and returns `obj` itself when there is none,
 * so the common line (an access line: a few flat fields) costs one pass over its keys. pino's
 * `redact` option does the same with wildcard paths, at about twice the cost of the whole line.
 */
export function redactPasswords<T>(obj: T, depth = 0): T {
  if (typeof obj !== 'object' || obj === null || obj instanceof Error || Buffer.isBuffer(obj)) return obj;
  let copy: Record<string, unknown> | unknown[] | undefined;
  const source = obj as Record<string, unknown>;
  for (const key of Object.keys(source)) {
    const value = source[key];
    const next = key === 'password' ? CENSOR : depth < REDACT_DEPTH ? redactPasswords(value, depth + 1) : value;
    if (next !== value) {
      copy ??= Array.isArray(obj) ? [...obj] : { ...source };
      (copy as Record<string, unknown>)[key] = next;
    }
  }
  return (copy ?? obj) as T;
}

/**
 * Structured JSON logs on stdout (PM2 collects them); a `password` is redacted wherever it
 * appears, in a line's fields and in a child logger's bindings.
 *
 * Lines are written asynchronously (sonic-boom, `sync: false`): a line is queued and the process
 * goes on; while one write is in flight the lines that follow gather and go out in the next write,
 * so under load one syscall (and one chunk for PM2's daemon to read) carries many lines, and a
 * quiet service still writes each line at once. Nothing is lost on a clean stop: handleShutdown()
 * flushes the logger as its last step, and pino flushes synchronously on process exit.
 * https://github.com/pinojs/pino/blob/main/docs/asynchronous.md
 */
export function createLogger(options: LoggerOptions): Logger {
  const logger = pino(
    {
      name: options.name,
      level: options.level,
      formatters: {
        bindings: (bindings) => redactPasswords(bindings),
        log: (object) => redactPasswords(object),
      },
    },
    options.destination ?? pino.destination({ dest: 1, sync: false }),
  );
  // pino gives a child's own bindings no formatter; children inherit this method (pino makes
  // each child with Object.create(parent)), so every generation's bindings are redacted.
  const child = logger.child;
  logger.child = function redactedChild(this: Logger, bindings, childOptions) {
    return child.call(this, redactPasswords(bindings), childOptions);
  } as typeof logger.child;
  return logger;
}

/** The part of sonic-boom's stream flushLogger() relies on. */
interface AsyncDestination {
  /** True while an asynchronous write is in flight; the lines queued meanwhile follow it. */
  _writing?: boolean;
  once(event: 'drain', listener: () => void): unknown;
  off(event: 'drain', listener: () => void): unknown;
}

/**
 * Resolves once every line logged so far has been handed to the kernel (at most `timeoutMs`).
 * sonic-boom emits 'drain' when its last queued write has completed; pino's own exit hook then
 * has nothing left to write synchronously.
 */
export function flushLogger(logger: Logger, timeoutMs = 2000): Promise<void> {
  const stream = (logger as unknown as Record<symbol, AsyncDestination | undefined>)[pino.symbols.streamSym];
  if (!stream?._writing) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      stream.off('drain', done);
      resolve();
    };
    const timer = setTimeout(done, timeoutMs);
    stream.once('drain', done);
  });
}
