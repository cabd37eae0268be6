import assert from 'node:assert/strict';
import { createDatabase } from '@crud-master/common';
import { createApp } from '../src/app';
import { inventorySchema } from '../src/db/schema';
import { freshDatabase, type TestDatabase } from '../../../test/support/databases';
import { silentLogger } from '../../../test/support/silent-logger';
import { contractRequest } from '../../../test/support/contract';
import { freePort } from '../../../test/harness/processes';

describe('inventory-app GET /health', () => {
  let testDb: TestDatabase;
  before(async () => {
    testDb = await freshDatabase(inventorySchema);
  });
  after(async () => {
    await testDb?.db.destroy();
  });

  it('answers 200 with the database up', async () => {
    const app = createApp({ db: testDb.db, config: { bodyLimit: '1kb' }, logger: silentLogger() });
    const res = await contractRequest(app.callback(), 'inventory').get('/health').expect(200);
    assert.equal(res.body.status, 'ok');
    assert.equal(res.body.checks.database.status, 'up');
  });

  it('answers 503 naming the database when it is unreachable', async () => {
    const port = await freePort(); // nothing listens there
    const db = createDatabase({ ...testDb.config, port }, { acquireTimeoutMs: 1000 });
    try {
      const app = createApp({ db, config: { bodyLimit: '1kb' }, logger: silentLogger() });
      const res = await contractRequest(app.callback(), 'inventory').get('/health').expect(503);
      assert.equal(res.body.status, 'unavailable');
      assert.equal(res.body.checks.database.status, 'down');
      assert.equal(typeof res.body.checks.database.error, 'string');
    } finally {
      await db.destroy();
    }
  });

  it('answers 503 JSON, not 500, when the database fails under a movie request', async () => {
    const port = await freePort();
    const db = createDatabase({ ...testDb.config, port }, { acquireTimeoutMs: 1000 });
    try {
      const app = createApp({ db, config: { bodyLimit: '1kb' }, logger: silentLogger() });
      for (const path of ['/api/movies', '/api/movies/1']) {
        const res = await contractRequest(app.callback(), 'inventory').get(path);
        assert.equal(res.status, 503, path);
        assert.equal(res.body.error.code, 'database_unavailable', path);
      }
    } finally {
      await db.destroy();
    }
  });
});
