import { z } from 'zod';
import {
  envLogLevel,
  envNonNegativeInt,
  envPort,
  envPositiveInt,
  envString,
  parseEnv,
  serverLimitsEnvShape,
  serverLimitsFrom,
  type DatabaseConfig,
  type Env,
  type ServerLimits,
} from '@crud-master/common';

export interface InventoryConfig {
  listenHost: string;
  port: number;
  logLevel: z.infer<typeof envLogLevel>;
  db: DatabaseConfig;
  /** Largest JSON body accepted on POST/PUT. */
  bodyLimit: string;
  /** Above this many movies a title search needs 3 letters or digits in a row (see search-bounds.ts). */
  unindexedSearchMaxRows: number;
  /** An unpaged full list must be sent within this long (ms). */
  listDeadlineMs: number;
  /** The server's timeouts and connection cap. */
  limits: ServerLimits;
}

/**
 * An internal hop: its client is the gateway, whose agent keeps connections open and closes them
 * itself after 30 s idle, so the keep-alive here is longer (65 s) and a pooled connection is
 * never closed from this side while the gateway reuses it. Slow senders never reach it (the
 * gateway reads bodies whole first); the deadlines still bound anyone else.
 */
export const INVENTORY_SERVER_LIMITS: ServerLimits = {
  headersTimeoutMs: 20_000,
  requestTimeoutMs: 60_000,
  keepAliveTimeoutMs: 65_000,
  idleTimeoutMs: 0,
  maxConnections: 4_096,
};

const schema = z.object({
  INVENTORY_LISTEN_HOST: envString.default('0.0.0.0'),
  INVENTORY_PORT: envPort.default(8080),
  LOG_LEVEL: envLogLevel,
  INVENTORY_DB_HOST: envString,
  INVENTORY_DB_PORT: envPort.default(5432),
  INVENTORY_DB_NAME: envString,
  INVENTORY_DB_USER: envString,
  INVENTORY_DB_PASSWORD: envString,
  INVENTORY_DB_STATEMENT_TIMEOUT_MS: envNonNegativeInt.default(3000),
  INVENTORY_UNINDEXED_SEARCH_MAX_ROWS: envNonNegativeInt.default(50_000),
  INVENTORY_LIST_DEADLINE_MS: envPositiveInt.default(120_000),
  ...serverLimitsEnvShape('INVENTORY', INVENTORY_SERVER_LIMITS),
});

export function readConfig(env: Env): InventoryConfig {
  const vars = parseEnv(schema, env);
  return {
    listenHost: vars.INVENTORY_LISTEN_HOST,
    port: vars.INVENTORY_PORT,
    logLevel: vars.LOG_LEVEL,
    db: {
      host: vars.INVENTORY_DB_HOST,
      port: vars.INVENTORY_DB_PORT,
      database: vars.INVENTORY_DB_NAME,
      user: vars.INVENTORY_DB_USER,
      password: vars.INVENTORY_DB_PASSWORD,
      statementTimeoutMs: vars.INVENTORY_DB_STATEMENT_TIMEOUT_MS,
    },
    bodyLimit: '16kb',
    unindexedSearchMaxRows: vars.INVENTORY_UNINDEXED_SEARCH_MAX_ROWS,
    listDeadlineMs: vars.INVENTORY_LIST_DEADLINE_MS,
    limits: serverLimitsFrom('INVENTORY', vars),
  };
}
