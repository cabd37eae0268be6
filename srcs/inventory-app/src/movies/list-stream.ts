import { Readable } from 'node:stream';
import type { Movie } from './movie';

/** Where the rows of a streamed list come from: a database cursor (see MoviesRepository). */
export interface MovieSource {
  /** The next rows in id order; an empty array at the end. */
  read(): Promise<Movie[]>;
  /** Frees the cursor and its connection; safe to call more than once. */
  close(): Promise<void>;
}

/** One movie as JSON, byte for byte what `JSON.stringify(movie)` writes, without building an object. */
export function movieJson(movie: Movie): string {
  return `{"id":${movie.id},"title":${JSON.stringify(movie.title)},"description":${JSON.stringify(movie.description)}}`;
}

export function moviesJson(movies: readonly Movie[]): string {
  let out = '';
  for (let i = 0; i < movies.length; i++) out += (i === 0 ? '' : ',') + movieJson(movies[i] as Movie);
  return out;
}

/** The client took nothing for too long; the stream gave up on it. */
export class StalledClientError extends Error {
  readonly code = 'ERR_CLIENT_STALLED';
}

/** The whole list was not taken within the deadline; the stream gave up on the client. */
export class StreamDeadlineError extends Error {
  readonly code = 'ERR_STREAM_DEADLINE';
}

export interface JsonArrayStreamOptions {
  /**
   * The client must take more bytes within this long whenever the stream has some ready, or the
   * stream is destroyed: a stalled client must not hold a database connection open forever.
   */
  stallTimeoutMs: number;
  /**
   * The whole list must be sent within this long (ms). A client reading a byte now and then
   * escapes the stall timeout but not this: no reader holds a stream slot and its database
   * connection for longer.
   */
  deadlineMs?: number;
}

/**
 * The movies of a cursor as one JSON array, written a batch at a time as the client reads, so
 * memory holds a batch or two whatever the table's size.
 *
 * A failure after the first byte cannot become an error response any more: the stream is
 * destroyed, Koa's pipeline destroys the socket, and the client sees the connection close before
 * the chunked body's end, never a shorter array that parses as complete. The source is closed in
 * every case (end, error, client gone), through `_destroy`.
 */
export class JsonArrayStream extends Readable {
  private pending: Movie[] | undefined;
  private reading = false;
  private stallTimer: NodeJS.Timeout | undefined;
  private readonly deadlineTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly source: MovieSource,
    first: Movie[],
    private readonly options: JsonArrayStreamOptions,
  ) {
    super({ highWaterMark: 64 * 1024 });
    this.pending = first;
    const { deadlineMs } = options;
    if (deadlineMs !== undefined) {
      this.deadlineTimer = setTimeout(() => this.destroy(new StreamDeadlineError(`list not taken within ${deadlineMs} ms`)), deadlineMs);
      this.deadlineTimer.unref();
    }
  }

  override _read(): void {
    this.clearStallTimer();
    if (this.pending) {
      const first = this.pending;
      this.pending = undefined;
      this.pushAndWatch(`[${moviesJson(first)}`);
      return;
    }
    if (this.reading) return;
    this.reading = true;
    this.source.read().then(
      (movies) => {
        this.reading = false;
        if (this.destroyed) return;
        if (movies.length === 0) {
          // Give the connection back now rather than when the client has read the last bytes.
          void this.source.close();
          this.push(']');
          this.push(null);
        } else {
          this.pushAndWatch(`,${moviesJson(movies)}`);
        }
      },
      (err: unknown) => {
        this.reading = false;
        this.destroy(err instanceof Error ? err : new Error(String(err)));
      },
    );
  }

  private pushAndWatch(chunk: string): void {
    if (!this.push(chunk)) {
      // The consumer is full: it has `stallTimeoutMs` to ask for more.
      this.stallTimer = setTimeout(() => {
        this.destroy(new StalledClientError(`client read nothing for ${this.options.stallTimeoutMs} ms`));
      }, this.options.stallTimeoutMs);
      this.stallTimer.unref();
    }
  }

  private clearStallTimer(): void {
    if (this.stallTimer) clearTimeout(this.stallTimer);
    this.stallTimer = undefined;
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.clearStallTimer();
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    this.source.close().then(
      () => callback(err),
      (closeErr: unknown) => callback(err ?? (closeErr instanceof Error ? closeErr : new Error(String(closeErr)))),
    );
  }
}
