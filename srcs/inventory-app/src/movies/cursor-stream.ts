import type { Logger } from '@crud-master/common';
import { JsonArrayStream, type JsonArrayStreamOptions } from './list-stream';
import type { Movie } from './movie';
import type { MovieCursor } from './movie-cursor';

/** A cursor with its first batch read: a failure so far can still become an error response. */
export interface StartedCursor {
  readonly version: string;
  /** The list as a JSON stream; the stream closes the cursor whatever happens. */
  stream(options: JsonArrayStreamOptions): JsonArrayStream;
  close(): Promise<void>;
}

/** Reads the first batch of `cursor`, closing it when that fails. */
export async function startCursor(cursor: MovieCursor): Promise<StartedCursor> {
  let first: Movie[];
  try {
    first = await cursor.read();
  } catch (err) {
    await cursor.close();
    throw err;
  }
  return {
    version: cursor.version,
    stream: (options) => new JsonArrayStream(cursor, first, options),
    close: () => cursor.close(),
  };
}

/**
 * Logs a stream that failed after the headers went out (nothing else can report it). A client
 * that hangs up is routine, one that stops reading is its own problem; anything else cut a good
 * client's response short.
 */
export function logStreamFailure(stream: JsonArrayStream, logger: Logger | undefined, request: { path: string; query: string }): void {
  stream.once('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'ERR_STREAM_PREMATURE_CLOSE') return;
    const details = { err, ...request };
    if (err.code === 'ERR_CLIENT_STALLED' || err.code === 'ERR_STREAM_DEADLINE') logger?.warn(details, 'movie list client stalled, connection closed');
    else logger?.error(details, 'movie list stream failed, connection closed');
  });
}
