import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';

export interface CapturedLogs {
  logger: Logger;
  /** Every line written so far, parsed. */
  lines(): Array<Record<string, unknown>>;
}

/** A real pino logger whose JSON lines are kept in memory, for tests that read the logs. */
export function captureLogger(name: string): CapturedLogs {
  const raw: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      raw.push(...chunk.toString('utf8').split('\n').filter((line) => line.length > 0));
      callback();
    },
  });
  const logger = pino({ name, level: 'info' }, sink);
  return { logger, lines: () => raw.map((line) => JSON.parse(line) as Record<string, unknown>) };
}
