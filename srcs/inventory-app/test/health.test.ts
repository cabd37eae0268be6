import assert from 'node:assert/strict';
import { createDatabase } from '@crud-master/common';
import { createApp } from '../src/app';
import { inventorySchema } from '../src/db/schema';
import { freshDatabase, type TestDatabase } from '../../../test/support/databases';
import { silentLogger } from '../../../test/support/silent-logger';
import { captureLogger } from '../../../test/support/capture-logger';
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

  it('answers 503 with the database down when it is unreachable: why goes to the log, not to the answer', async () => {
    const port = await freePort(); // nothing listens there
    const db = createDatabase({ ...testDb.config, port }, { acquireTimeoutMs: 1000 });
    try {
      const logs = captureLogger('inventory-app');
      const app = createApp({ db, config: { bodyLimit: '1kb' }, logger: logs.logger });
      const res = await contractRequest(app.callback(), 'inventory').get('/health').expect(503);
      assert.deepEqual(res.body, { status: 'unavailable', service: 'inventory-app', checks: { database: { status: 'down' } } });
      assert.ok(!JSON.stringify(res.body).includes(String(port)), 'no address in the answer');
      const line = logs.lines().find((l) => l.msg === 'health check down');
      assert.equal(line?.level, 40, 'a warning');
      assert.match(String(line?.err), /ECONNREFUSED|timeout/i);
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
