/**
 * Mocha global fixtures (loaded through .mocharc.json `require`) and the shared, lazily started
 * PostgreSQL and RabbitMQ instances.
 *
 * - Lazy: a run that only needs unit tests (or `--grep` picks a few suites) never pays for booting
 *   a database (~1.5 s) or a broker (~6-10 s).
 * - Shared: booting once per run and giving every suite its own database / queue names keeps the
 *   suite fast. Suites that stop, kill or restart a server must not touch the shared ones: they
 *   create a dedicated instance with PostgresInstance.create / RabbitInstance.create and destroy
 *   it in `after` (teardown below destroys it anyway if they forget).
 *
 * Usage:
 *   import { sharedPostgres, sharedRabbit, runDir } from '../../test/harness/fixtures';
 *   const pg = await sharedPostgres(); const db = await pg.createDatabase();
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PostgresInstance } from './postgres';
import { killAllProcessesSync, killAllServices } from './processes';
import { RabbitInstance } from './rabbitmq';
import { destroyAllInstances } from './registry';

let runDirPath: string | undefined;
// True when this process made the run dir itself (no TEST_RUN_DIR): then it also removes it.
let ownsRunDir = false;

/**
 * The directory for everything this test run creates: TEST_RUN_DIR (made and finally removed by
 * scripts/test.sh, which also kills whatever is recorded in its pids/ subdirectory), or a fresh
 * /tmp/crud-master-test.* directory when mocha is run directly.
 */
export function runDir(): string {
  if (runDirPath !== undefined) return runDirPath;
  const fromEnv = process.env.TEST_RUN_DIR;
  let dir: string;
  if (fromEnv !== undefined && fromEnv !== '') {
    dir = fromEnv;
    fs.mkdirSync(dir, { recursive: true });
  } else {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'crud-master-test.'));
    ownsRunDir = true;
  }
  // PostgreSQL runs as the `postgres` user: it must be able to traverse into its own subdirectory.
  fs.chmodSync(dir, 0o711);
  fs.mkdirSync(path.join(dir, 'pids'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'logs'), { recursive: true });
  runDirPath = dir;
  return dir;
}

let postgresPromise: Promise<PostgresInstance> | undefined;
let rabbitPromise: Promise<RabbitInstance> | undefined;

/**
 * The run's shared PostgreSQL, started on first call. Do not stop or restart it; create a
 * database per suite (`await (await sharedPostgres()).createDatabase()`).
 * A failed start is remembered, so later suites fail fast with the same error.
 */
export function sharedPostgres(): Promise<PostgresInstance> {
  postgresPromise ??= (async () => {
    const instance = await PostgresInstance.create({ runDir: runDir(), name: 'shared_pg' });
    await instance.start();
    return instance;
  })();
  return postgresPromise;
}

/**
 * The run's shared RabbitMQ, started on first call. Do not stop or restart it; use unique queue
 * names per suite (uniqueName('queue')) or purge what you use.
 */
export function sharedRabbit(): Promise<RabbitInstance> {
  rabbitPromise ??= (async () => {
    const instance = await RabbitInstance.create({ runDir: runDir(), name: 'shared_rmq' });
    await instance.start();
    return instance;
  })();
  return rabbitPromise;
}

export function mochaGlobalSetup(): void {
  runDir();
}

export async function mochaGlobalTeardown(): Promise<void> {
  // Services a suite forgot to stop go first, so they do not flood their logs with reconnection
  // errors while the database and broker go down.
  await killAllServices();
  // Destroys the shared instances and every dedicated one a suite left behind.
  const errors = await destroyAllInstances();
  killAllProcessesSync(); // anything else still running
  postgresPromise = undefined;
  rabbitPromise = undefined;
  if (ownsRunDir && runDirPath !== undefined && process.env.TEST_KEEP_RUN_DIR !== '1') {
    fs.rmSync(runDirPath, { recursive: true, force: true });
  }
  for (const err of errors) process.stderr.write(`[harness] teardown: ${err.message}\n`);
}

export { PostgresInstance } from './postgres';
export { RabbitInstance } from './rabbitmq';
export { freePort, startService, uniqueName, waitFor } from './processes';
