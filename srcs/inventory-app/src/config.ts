import { z } from 'zod';
import { envLogLevel, envPort, envString, parseEnv, type DatabaseConfig, type Env } from '@crud-master/common';

export interface InventoryConfig {
  listenHost: string;
  port: number;
  logLevel: z.infer<typeof envLogLevel>;
  db: DatabaseConfig;
  /** Largest JSON body accepted on POST/PUT. */
  bodyLimit: string;
}

const schema = z.object({
  INVENTORY_LISTEN_HOST: envString.default('0.0.0.0'),
  INVENTORY_PORT: envPort.default(8080),
  LOG_LEVEL: envLogLevel,
  INVENTORY_DB_HOST: envString,
  INVENTORY_DB_PORT: envPort.default(5432),
  INVENTORY_DB_NAME: envString,
  INVENTORY_DB_USER: envString,
  INVENTORY_DB_PASSWORD: envString,
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
    },
    bodyLimit: '16kb',
  };
}
