import pino, { type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

export interface LoggerOptions {
  name: string;
  level: LevelWithSilent;
}

/** Structured JSON logs on stdout (PM2 collects them); credentials are redacted wherever they appear. */
export function createLogger(options: LoggerOptions): Logger {
  return pino({
    name: options.name,
    level: options.level,
    redact: {
      paths: ['password', '*.password', '*.*.password', '*.*.*.password'],
      censor: '[redacted]',
    },
  });
}
