import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, findEnvFile, loadEnv } from '@crud-master/common';
import { readConfig as readInventoryConfig } from '../../../srcs/inventory-app/src/config';
import { readConfig as readGatewayConfig } from '../../../srcs/api-gateway/src/config';

const inventoryEnv = {
  INVENTORY_DB_HOST: '127.0.0.1',
  INVENTORY_DB_NAME: 'movies_db',
  INVENTORY_DB_USER: 'u',
  INVENTORY_DB_PASSWORD: 'p',
};

describe('configuration from the environment', () => {
  it('reads the committed .env completely for every service', () => {
    const env = loadEnv(findEnvFile(__dirname), {});
    const inventory = readInventoryConfig(env);
    assert.equal(inventory.port, 8080);
    assert.equal(inventory.db.database, 'movies_db');
    const gateway = readGatewayConfig(env);
    assert.equal(gateway.amqp.queue, 'billing_queue');
    assert.match(gateway.inventoryUrl, /^http:\/\/[^/]+:8080$/);
  });

  it('lets the process environment win over .env', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'env-'));
    try {
      const file = path.join(dir, '.env');
      fs.writeFileSync(file, 'INVENTORY_PORT=1111\nINVENTORY_DB_NAME=from_file\n');
      const { INVENTORY_DB_NAME: _unset, ...processEnv } = inventoryEnv;
      const env = loadEnv(file, { ...processEnv, INVENTORY_PORT: '2222', INVENTORY_DB_USER: undefined });
      const config = readInventoryConfig({ ...env, INVENTORY_DB_USER: 'u' });
      assert.equal(config.port, 2222, 'the process environment wins');
      assert.equal(config.db.database, 'from_file', 'the file fills what the environment lacks');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads the file CM_ENV_FILE names instead of .env, and refuses a relative or missing one', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'env-'));
    try {
      const file = path.join(dir, 'inventory.env');
      fs.writeFileSync(file, 'INVENTORY_DB_NAME=from_service_file\n', { mode: 0o400 });
      assert.equal(findEnvFile(__dirname, { CM_ENV_FILE: file }), file);
      assert.equal(loadEnv(findEnvFile(__dirname, { CM_ENV_FILE: file }), {}).INVENTORY_DB_NAME, 'from_service_file');
      assert.throws(() => findEnvFile(__dirname, { CM_ENV_FILE: 'inventory.env' }), /CM_ENV_FILE: must be an absolute path/);
      assert.throws(() => findEnvFile(__dirname, { CM_ENV_FILE: path.join(dir, 'none.env') }), /CM_ENV_FILE: .* does not exist/);
      assert.match(String(findEnvFile(__dirname, {})), /\/\.env$/, 'without it, the repository\'s .env');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names every missing variable', () => {
    assert.throws(
      () => readInventoryConfig({ INVENTORY_DB_HOST: 'h' }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.deepEqual(err.problems.sort(), [
          'INVENTORY_DB_NAME: missing',
          'INVENTORY_DB_PASSWORD: missing',
          'INVENTORY_DB_USER: missing',
        ]);
        return true;
      },
    );
  });

  it('names a malformed variable', () => {
    assert.throws(() => readInventoryConfig({ ...inventoryEnv, INVENTORY_PORT: 'eighty' }), /INVENTORY_PORT/);
    assert.throws(() => readInventoryConfig({ ...inventoryEnv, INVENTORY_DB_PORT: '70000' }), /INVENTORY_DB_PORT/);
    assert.throws(() => readInventoryConfig({ ...inventoryEnv, LOG_LEVEL: 'loud' }), /LOG_LEVEL/);
  });
});
