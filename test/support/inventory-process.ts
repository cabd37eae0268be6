/**
 * An inventory-app process of the test's own: its source run as `main.ts`, configured entirely
 * from here (no .env: CM_ENV_FILE is empty), on 127.0.0.1:`port`, connected as the app role of a
 * migrated database; resolves once its /health answers.
 */
import path from 'node:path';
import { runDir, startService } from '../harness/fixtures';
import type { PgConnectionConfig } from '../harness/postgres';
import type { ServiceProcess } from '../harness/processes';

const ROOT = path.resolve(__dirname, '..', '..');

export interface InventoryProcessOptions {
  name: string;
  /** The app role's connection (`migratedDatabase(...).app`). */
  db: PgConnectionConfig;
  port: number;
  /** More variables, or ones to override. */
  env?: Record<string, string>;
}

export function startInventoryProcess({ name, db, port, env = {} }: InventoryProcessOptions): Promise<ServiceProcess> {
  return startService({
    name,
    script: path.join(ROOT, 'srcs/inventory-app/src/main.ts'),
    env: {
      CM_ENV_FILE: '/dev/null',
      NODE_ENV: 'test',
      LOG_LEVEL: 'info',
      INVENTORY_LISTEN_HOST: '127.0.0.1',
      INVENTORY_PORT: String(port),
      INVENTORY_DB_HOST: db.host,
      INVENTORY_DB_PORT: String(db.port),
      INVENTORY_DB_NAME: db.database,
      INVENTORY_DB_USER: db.user,
      INVENTORY_DB_PASSWORD: db.password,
      ...env,
    },
    runDir: runDir(),
    cwd: ROOT,
    readyUrl: `http://127.0.0.1:${port}/health`,
    readyTimeoutMs: 30_000,
  });
}
