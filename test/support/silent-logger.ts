import { createLogger, type Logger } from '@crud-master/common';

/** A real pino logger that writes nothing: tests assert on responses, not on log noise. */
export function silentLogger(): Logger {
  return createLogger({ name: 'test', level: 'silent' });
}
