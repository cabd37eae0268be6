/**
 * Slow clients over raw sockets: senders that dribble their headers or their body one byte per
 * interval, and readers that take at most one chunk of their answer per interval. Each records
 * when the server cut it; a socket the server never cut is closed by the test at `maxMs`.
 */
import net from 'node:net';

export interface SlowResult {
  /** ms from connecting until the server closed the socket; undefined when it never did. */
  cutAfterMs: number | undefined;
  /** The answer's status line, when one came. */
  statusLine: string | undefined;
  /** The socket could not be opened, or failed otherwise than by a server close. */
  error: string | undefined;
}

export type SlowKind = 'headers' | 'body' | 'reader';

export interface SlowOptions {
  port: number;
  kind: SlowKind;
  /** The reader's request path. */
  path: string;
  intervalMs: number;
  /** The test gives up on the socket (and destroys it) after this. */
  maxMs: number;
}

export function slowClient(options: SlowOptions): Promise<SlowResult> {
  return new Promise((resolve) => {
    const started = Date.now();
    let head = '';
    let error: string | undefined;
    let timer: NodeJS.Timeout | undefined;
    let connected = false;
    const socket = net.connect(options.port, '127.0.0.1');
    const giveUp = setTimeout(() => {
      finished = true;
      socket.destroy();
      clearInterval(timer);
      resolve({ cutAfterMs: undefined, statusLine: statusLine(), error });
    }, options.maxMs);
    let finished = false;
    const statusLine = (): string | undefined => (head.includes('\r\n') ? head.slice(0, head.indexOf('\r\n')) : undefined);
    socket.on('error', (err: NodeJS.ErrnoException) => {
      // Once connected, a reset is one way for the server to cut the socket; before, it is a failure.
      if (!connected) error = err.code ?? err.message;
    });
    socket.on('close', () => {
      clearInterval(timer);
      clearTimeout(giveUp);
      if (finished) return;
      finished = true;
      resolve({ cutAfterMs: connected ? Date.now() - started : undefined, statusLine: statusLine(), error });
    });
    socket.on('data', (chunk: Buffer) => {
      if (head.length < 200) head += chunk.toString('latin1', 0, Math.min(chunk.length, 200));
      if (options.kind === 'reader') socket.pause();
    });
    socket.on('connect', () => {
      connected = true;
      if (options.kind === 'reader') {
        socket.write(`GET ${options.path} HTTP/1.1\r\nHost: load\r\n\r\n`);
        // One chunk per interval: the rest stays in the kernel's buffers, as with a slow network.
        timer = setInterval(() => socket.resume(), options.intervalMs);
        return;
      }
      const dribble =
        options.kind === 'headers'
          ? { start: 'GET /api/movies/1 HTTP/1.1\r\nHost: load\r\n', byte: 'X-Slow: y\r\n' }
          : { start: 'POST /api/movies HTTP/1.1\r\nHost: load\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n', byte: ' ' };
      socket.write(dribble.start);
      let sent = 0;
      timer = setInterval(() => {
        if (!socket.writable) return;
        // Headers go a line at a time (a byte is too little for the server's parser to notice),
        // a body one byte at a time.
        socket.write(options.kind === 'headers' ? dribble.byte : dribble.byte.slice(0, 1));
        sent++;
        if (options.kind === 'body' && sent >= 999) clearInterval(timer);
      }, options.intervalMs);
    });
  });
}
