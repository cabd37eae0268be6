import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { bufferedDestination, createLogger, flushLogger, isoTimeOncePerMs, LineBuffer, redactPasswords } from '@crud-master/common';

describe('createLogger: asynchronous lines, passwords redacted', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'logger-'));
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** A logger on a file through the buffered destination createLogger puts on stdout. */
  async function fileLogger(): Promise<{ logger: ReturnType<typeof createLogger>; lines: () => Array<Record<string, unknown>> }> {
    const file = path.join(dir, 'out.log');
    const destination = bufferedDestination(file);
    await new Promise((resolve) => (destination as unknown as NodeJS.EventEmitter).once('ready', resolve)); // stdout is open from the start
    const logger = createLogger({ name: 'test', level: 'info', destination });
    const lines = () =>
      fs
        .readFileSync(file, 'utf8')
        .split('\n')
        .filter((l) => l.length > 0)
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    return { logger, lines };
  }

  it('flushLogger resolves only once every line logged before it is in the file', async () => {
    const { logger, lines } = await fileLogger();
    for (let i = 0; i < 20_000; i++) logger.info({ i, path: `/api/movies/${i}` }, 'request');
    // Writes are asynchronous: right after logging, the file cannot hold every line yet.
    assert.ok(fs.readFileSync(path.join(dir, 'out.log'), 'utf8').split('\n').length < 20_000, 'lines were written synchronously');
    await flushLogger(logger);
    const written = lines();
    assert.equal(written.length, 20_000);
    assert.deepEqual(
      written.map((l) => l.i),
      Array.from({ length: 20_000 }, (_, i) => i),
      'every line, once, in order',
    );
  });

  it('stamps each line with its ISO 8601 time in UTC (PM2 adds none: ecosystem.config.js has time: false)', async () => {
    const { logger, lines } = await fileLogger();
    const before = Date.now();
    logger.info({ path: '/api/movies/1' }, 'request');
    await flushLogger(logger);
    const time = lines()[0]?.time;
    assert.equal(typeof time, 'string');
    assert.match(time as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    const at = Date.parse(time as string);
    assert.ok(at >= before - 1 && at <= Date.now(), `${time as string} is the time of logging`);
  });

  it('isoTimeOncePerMs formats a millisecond once, and each new millisecond anew', () => {
    let clock = Date.UTC(2026, 11, 4, 21, 0, 0, 5);
    const stamp = isoTimeOncePerMs(() => clock);
    const toISOString = Date.prototype.toISOString;
    let formatted = 0;
    Date.prototype.toISOString = function counted(this: Date): string {
      formatted++;
      return toISOString.call(this);
    };
    try {
      assert.equal(stamp(), ',"time":"2026-12-04T21:00:00.005Z"');
      assert.equal(stamp(), ',"time":"2026-12-04T21:00:00.005Z"');
      assert.equal(formatted, 1, 'one millisecond, one Date formatted');
      clock += 1;
      assert.equal(stamp(), ',"time":"2026-12-04T21:00:00.006Z"');
      clock += 86_400_000;
      assert.equal(stamp(), ',"time":"2026-12-05T21:00:00.006Z"');
      assert.equal(formatted, 3);
    } finally {
      Date.prototype.toISOString = toISOString;
    }
  });

  it('flushLogger resolves at once when nothing is being written', async () => {
    const { logger } = await fileLogger();
    await flushLogger(logger, 60_000);
  });

  it('writes a lone line without a flush, shortly after it was logged (a quiet service)', async () => {
    const { logger, lines } = await fileLogger();
    logger.info({ path: '/api/movies/1' }, 'request');
    assert.equal(lines().length, 0, 'buffered at first');
    const deadline = Date.now() + 5000;
    while (lines().length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(lines()[0]?.path, '/api/movies/1');
  });

  it('redacts a password in the fields of a line, three levels deep, and in child bindings', async () => {
    const { logger, lines } = await fileLogger();
    const config = { db: { host: 'h', password: 'secret1' } };
    logger.info({ password: 'secret0', config, deep: { a: { b: { password: 'secret3' } } }, list: [{ password: 'secret4' }] }, 'config');
    logger.child({ auth: { password: 'secret5' } }).info('child');
    await flushLogger(logger);
    const text = JSON.stringify(lines());
    assert.doesNotMatch(text, /secret/);
    const [first, second] = lines();
    assert.equal(first?.password, '[redacted]');
    assert.deepEqual(first?.config, { db: { host: 'h', password: '[redacted]' } });
    assert.deepEqual(first?.deep, { a: { b: { password: '[redacted]' } } });
    assert.deepEqual(first?.list, [{ password: '[redacted]' }]);
    assert.deepEqual(second?.auth, { password: '[redacted]' });
    assert.equal(config.db.password, 'secret1', "the caller's object is not changed");
  });

  it('redactPasswords returns an object without passwords as it is', () => {
    const line = { method: 'GET', path: '/api/movies/1', status: 200, nested: { a: [1, 2] } };
    assert.equal(redactPasswords(line), line);
  });
  it('writes the lines still buffered when the process crashes (an uncaught exception)', () => {
    const file = path.join(dir, 'crash.log');
    const script = `
      const { createLogger, bufferedDestination } = require(${JSON.stringify(require.resolve('@crud-master/common'))});
      const logger = createLogger({ name: 't', level: 'info', destination: bufferedDestination(${JSON.stringify(file)}) });
      for (let i = 0; i < 100; i++) logger.info({ i }, 'request');
      setImmediate(() => { throw new Error('boom'); });`;
    const run = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 15_000 });
    assert.match(run.stderr, /boom/);
    assert.notEqual(run.status, 0);
    const lines = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { i: number });
    assert.deepEqual(lines.map((l) => l.i), Array.from({ length: 100 }, (_, i) => i));
  });

  it('drops and counts the lines past maxBytes while nothing is written (a reader that stopped)', async () => {
    const file = path.join(dir, 'bounded.log');
    const buffer = LineBuffer.open(file, { minBytes: 1_000_000, maxDelayMs: 60_000, maxBytes: 1000 });
    const line = `${JSON.stringify({ msg: 'x'.repeat(80) })}\n`;
    for (let i = 0; i < 100; i++) buffer.write(line);
    await new Promise<void>((resolve) => buffer.flush(() => resolve()));
    const lines = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { msg: string; dropped?: number });
    const kept = lines.filter((l) => l.dropped === undefined).length;
    assert.ok(kept > 0 && kept < 100);
    assert.equal(lines.at(-1)?.dropped, 100 - kept);
  });
});
