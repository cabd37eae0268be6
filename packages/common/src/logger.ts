import pino, { type DestinationStream, type Logger, type LevelWithSilent } from 'pino';
import { LineBuffer } from './log-destination';

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
 * pino's `timestamp` option: `,"time":"<ISO 8601, UTC>"`, the string made once per millisecond.
 * pino's stdTimeFunctions.isoTime builds and formats a Date for every line (1.3-1.9 % of each
 * service's busy time under load, in the benchmark's profiles); at thousands of lines a second
 * most lines share their millisecond with the line before. One per logger: no shared state.
 */
export function isoTimeOncePerMs(now: () => number = Date.now): () => string {
  let lastMs = Number.NaN;
  let last = '';
  return () => {
    const ms = now();
    if (ms !== lastMs) {
      lastMs = ms;
      last = `,"time":"${new Date(ms).toISOString()}"`;
    }
    return last;
  };
}

/** Lines gather in memory up to this many bytes before a write (about 60 access lines)... */
const BUFFER_BYTES = 16 * 1024;
/** ...or for at most this long (ms), so that a quiet service's lines still show up at once. */
const BUFFER_MS = 100;
/** A reader (PM2's daemon) that stops reading costs at most this much memory; later lines are dropped and counted. */
const BUFFER_MAX_BYTES = 16 * 1024 * 1024;

/**
 * An asynchronous, buffered destination (LineBuffer, log-destination.ts): a line is appended to a
 * buffer and the process goes on; the buffer is written when it holds BUFFER_BYTES, or BUFFER_MS
 * after its first line. Under load one write(2), and one chunk for PM2's daemon to read and
 * write to its file, carries dozens of lines instead of one. handleShutdown() flushes it as its last step
 * (flushLogger), and what is left is written synchronously on any process exit, a crash included;
 * only a SIGKILL loses the lines of the last BUFFER_MS.
 */
export function bufferedDestination(dest: number | string): DestinationStream {
  return LineBuffer.open(dest, { minBytes: BUFFER_BYTES, maxDelayMs: BUFFER_MS, maxBytes: BUFFER_MAX_BYTES });
}

/**
 * Structured JSON logs on stdout (PM2 collects them) through bufferedDestination(); a `password`
 * is redacted wherever it appears, in a line's fields and in a child logger's bindings.
 */
export function createLogger(options: LoggerOptions): Logger {
  const logger = pino(
    {
      name: options.name,
      level: options.level,
      // "time":"2026-12-04T21:00:00.000Z": readable in `pm2 logs` as it is (PM2 adds no time).
      timestamp: isoTimeOncePerMs(),
      formatters: {
        bindings: (bindings) => redactPasswords(bindings),
        log: (object) => redactPasswords(object),
      },
    },
    // A silent logger (tests) writes nothing: no buffer, no flush timer.
    options.destination ?? (options.level === 'silent' ? pino.destination({ dest: 1, sync: true }) : bufferedDestination(1)),
  );
  // pino gives a child's own bindings no formatter; children inherit this method (pino makes
  // each child with Object.create(parent)), so every generation's bindings are redacted.
  const child = logger.child;
  logger.child = function redactedChild(this: Logger, bindings, childOptions) {
    return child.call(this, redactPasswords(bindings), childOptions);
  } as typeof logger.child;
  return logger;
}

/**
 * Resolves once every line logged so far has been handed to the kernel (at most `timeoutMs`):
 * pino's flush() calls the destination's flush(), which writes its buffer and calls back.
 */
export function flushLogger(logger: Logger, timeoutMs = 2000): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    try {
      logger.flush(() => {
        clearTimeout(timer);
        resolve();
      });
    } catch {
      clearTimeout(timer);
      resolve();
    }
  });
}
