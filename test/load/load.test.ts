import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { faultCase, mixedCase, slowCase, soakCase, type Row } from './cases';
import { logRotationCase } from './logrotate';
import { loadProfile } from './profile';
import { renderTable, rowFails } from './report';
import { LoadStack } from './stack';

/*
 * The load suite against the stack as users run it (PM2, production settings, access logs on) on
 * private PostgreSQL and RabbitMQ. `npm test` runs the short profile; `npm run test:load` the
 * full one (CM_LOAD_PROFILE=full, about 15 minutes). Each case adds rows to one table, printed at
 * the end (and written to LOAD_RESULTS_FILE when set); a case fails when one of its rows does.
 *
 * File descriptors: 2,000 client sockets here plus 2,000 at the gateway and its inventory
 * connections. Node raises its own soft RLIMIT_NOFILE to the hard limit at start, for this
 * process as for the services PM2 starts; a hard limit below 8,192 is reported as the reason.
 */
describe('load: the PM2 stack under load, slow clients and faults', function () {
  const profile = loadProfile();
  this.timeout(profile.name === 'full' ? 30 * 60_000 : 180_000);
  const stack = new LoadStack(profile.env);
  const table: Row[] = [];
  let ids: number[] = [];

  const check = (rows: Row[]): void => {
    table.push(...rows);
    const failed = rows.filter((r) => rowFails(r, profile));
    assert.equal(failed.length, 0, failed.map((r) => `${r.figure}: ${r.value} (limit ${r.limit})`).join('\n'));
  };

  before(async function () {
    this.timeout(240_000);
    await stack.start();
    ids = await stack.seedMovies(profile.movies);
  });
  after(async function () {
    this.timeout(120_000);
    await stack.destroy();
    if (table.length === 0) return;
    const rendered = renderTable(table, profile);
    process.stdout.write(`\n${rendered}\n\n`);
    const file = process.env.LOAD_RESULTS_FILE;
    if (file) fs.writeFileSync(path.resolve(file), `${rendered}\n`);
  });

  it('(a) many keep-alive connections on GET, search, POST movie and POST order: no restart, no connection error, 2xx or 503 + Retry-After, every 200 order stored once', async () => {
    check(await mixedCase(stack, profile, ids));
  });

  it('(b) slow senders and slow readers beside normal traffic: normal GETs answered, slow sockets cut by the documented timeouts', async () => {
    check(await slowCase(stack, profile, ids));
  });

  it('(c) a soak at a steady rate: no error, memory and file descriptors of every service flat', async () => {
    check(await soakCase(stack, profile, ids));
  });

  it('(d) the inventory killed, PostgreSQL and RabbitMQ restarted under load: clear 502/503, recovery by itself, no confirmed order lost', async () => {
    check(await faultCase(stack, profile, ids));
  });

  it("(e) PM2's logs rotated by the installed logrotate configuration while traffic runs, PM2 writing on", async () => {
    check(await logRotationCase(stack, ids));
  });
});
