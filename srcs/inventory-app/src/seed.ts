import { parseArgs } from 'node:util';
import pg from 'pg';
import { ConfigError, createDatabase, findEnvFile, loadEnv, migrateAndGrant } from '@crud-master/common';
import { readConfig } from './config';
import { inventorySchema } from './db/schema';
import { bulkLoadMovies } from './movies/bulk-load';

const USAGE = `Usage: npm run seed -- --movies N [--truncate] [--seed S]

Loads N generated movies into the inventory's database (movies_db) with COPY, in one
transaction, as the database's owner (INVENTORY_DB_OWNER: a bulk load drops and rebuilds the
title index, which the app role may not). Connection settings come from the inventory's .env
(CM_ENV_FILE names another file); variables set in the environment win. The migrations and
grants run first, as migrate.js runs them.

  --movies N    how many movies to add (required)
  --truncate    delete every movie first
  --seed S      PRNG seed (default 1): the same seed loads the same movies
`;

function fail(message: string): never {
  process.stderr.write(`seed: ${message}\n\n${USAGE}`);
  process.exit(2);
}

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        movies: { type: 'string' },
        truncate: { type: 'boolean', default: false },
        seed: { type: 'string', default: '1' },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
    }));
  } catch (err) {
    fail(err instanceof Error ? err.message : String(err));
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  if (values.movies === undefined) fail('--movies is required');
  if (!/^[0-9]+$/.test(values.movies)) fail(`--movies must be a whole number, got "${values.movies}"`);
  if (!/^[0-9]+$/.test(values.seed)) fail(`--seed must be a whole number, got "${values.seed}"`);
  const count = Number(values.movies);

  const env = loadEnv(findEnvFile(__dirname));
  const config = readConfig(env);
  if (!env.INVENTORY_DB_OWNER || !env.INVENTORY_DB_OWNER_PASSWORD) throw new ConfigError(['INVENTORY_DB_OWNER and INVENTORY_DB_OWNER_PASSWORD: missing']);
  const owner = { ...config.db, user: env.INVENTORY_DB_OWNER, password: env.INVENTORY_DB_OWNER_PASSWORD };
  const target = `${owner.user}@${owner.host}:${owner.port}/${owner.database}`;

  const db = createDatabase(owner, { poolMax: 1 });
  try {
    await migrateAndGrant(db, inventorySchema, config.db.user);
  } finally {
    await db.destroy();
  }

  const client = new pg.Client({ ...owner, connectionTimeoutMillis: 5000 });
  await client.connect();
  const started = Date.now();
  try {
    process.stdout.write(`seed: loading ${count.toLocaleString('en')} movies into ${target}\n`);
    const result = await bulkLoadMovies(client, {
      count,
      seed: Number(values.seed),
      truncate: values.truncate,
      onProgress: (n) => process.stdout.write(`seed:   ${n.toLocaleString('en')} rows\n`),
    });
    const seconds = (Date.now() - started) / 1000;
    const rebuilt = result.rebuiltIndexes.length > 0 ? `, rebuilt ${result.rebuiltIndexes.join(', ')} in ${result.indexMs} ms` : '';
    process.stdout.write(
      `seed: ${result.inserted.toLocaleString('en')} movies in ${seconds.toFixed(1)} s ` +
        `(COPY ${result.copyMs} ms${result.frozen ? ', frozen' : ''}${rebuilt})\n`,
    );
  } finally {
    await client.end();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`seed: failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
