import fs from 'node:fs';
import path from 'node:path';
import dotenv from 'dotenv';
import { z } from 'zod';

/** Thrown when the environment lacks a variable or holds a malformed one; names every culprit. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

export type Env = Record<string, string | undefined>;

/**
 * The env file a service reads: the absolute path in `CM_ENV_FILE` when set (on the hosts each
 * service gets its own file, holding only its own variables), else the repository's `.env`,
 * found by walking up from `startDir`.
 */
export function findEnvFile(startDir: string, env: Env = process.env): string | undefined {
  const named = env.CM_ENV_FILE;
  if (named !== undefined && named !== '') {
    if (!path.isAbsolute(named)) throw new ConfigError([`CM_ENV_FILE: must be an absolute path, got "${named}"`]);
    if (!fs.existsSync(named)) throw new ConfigError([`CM_ENV_FILE: ${named} does not exist`]);
    return named;
  }
  let dir = path.resolve(startDir);
  for (;;) {
    const candidate = path.join(dir, '.env');
    if (fs.existsSync(candidate)) return candidate;
    const parent = path.dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/**
 * The environment a service starts with: the values of the env file, overridden by whatever the
 * process environment already sets. It does not mutate `process.env`.
 */
export function loadEnv(envFile: string | undefined, processEnv: Env = process.env): Env {
  const fromFile = envFile && fs.existsSync(envFile) ? dotenv.parse(fs.readFileSync(envFile)) : {};
  const env: Env = { ...fromFile };
  for (const [name, value] of Object.entries(processEnv)) if (value !== undefined) env[name] = value;
  return env;
}

// Schemas for environment values: they arrive as strings and are coerced here, once.
export const envString = z.string().trim().min(1, 'must not be empty');
export const envPort = z.coerce.number().int().min(1).max(65535);
export const envPositiveInt = z.coerce.number().int().positive();
export const envNonNegativeInt = z.coerce.number().int().min(0);
export const envLogLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info');

/**
 * Validates `env` against a schema of variable names. A missing or malformed variable stops the
 * service at start, with a message naming each one.
 */
export function parseEnv<S extends z.ZodType>(schema: S, env: Env): z.infer<S> {
  const result = schema.safeParse(env);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const name = issue.path.join('.') || '(root)';
    const value = env[name];
    return value === undefined ? `${name}: missing` : `${name}: ${issue.message}`;
  });
  throw new ConfigError(problems);
}

export interface DatabaseConfig {
  host: string;
  port: number;
  database: string;
  user: string;
  password: string;
  /**
   * PostgreSQL's `statement_timeout` for every session of the pool (ms; 0 or absent: none). A
   * statement running longer is cancelled (SQLSTATE 57014) and answered 503 `query_timeout`.
   */
  statementTimeoutMs?: number;
}
