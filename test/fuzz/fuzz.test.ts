/**
 * The fuzz suite (issue 11): requests generated from openapi.yaml for every operation, and the
 * hostile input classes, sent to the gateway and straight to the inventory, both real processes
 * on the run's private PostgreSQL and RabbitMQ. For every answer:
 *   - it came (no reset, no hang) and is not a 5xx (no dependency fails here, so none is deliberate);
 *   - openapi.yaml documents it for that operation (status, headers, body schema);
 *   - an error has the JSON error shape; the response headers stay under 8 KiB;
 *   - an order is taken (200) exactly when the independent oracle says its text is a valid order;
 *   - a movie answered 200 is stored exactly as sent (trimmed title), with no forbidden character.
 * After each batch: both services answer /health 200 and never restarted; the movies table holds
 * exactly the rows the 200s created minus those deleted, each one valid; the queue holds exactly
 * one message per confirmed order, each one a valid order with the client's own number texts.
 *
 * Bounded and reproducible: FUZZ_RUNS requests per operation and per class (default 120), from
 * FUZZ_SEED (default 11; printed), four at a time, loopback only.
 *   FUZZ_RUNS=2000 FUZZ_SEED=$RANDOM npm test -- --grep fuzz
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import fc from 'fast-check';
import { parse as losslessParse, stringify as losslessStringify } from 'lossless-json';
import { createDatabase, type Knex } from '@crud-master/common';
import { freePort, runDir, sharedPostgres, sharedRabbit, startService, uniqueName } from '../harness/fixtures';
import { migratedDatabase } from '../support/databases';
import { billingBroker } from '../support/billing-broker';
import { inventorySchema } from '../../srcs/inventory-app/src/db/schema';
import type { ServiceProcess } from '../harness/processes';
import { contract, type Api } from '../support/contract';
import { amqpClient } from '../e2e/billing-stack';
import { DESCRIPTION_FORBIDDEN, isValidOrderText, orderIdentity, TITLE_FORBIDDEN } from './oracle';
import { hostileRequests, operationRequests, type FuzzRequest } from './requests';
import { SpecArbitraries } from './spec-arbitraries';

const ROOT = path.resolve(__dirname, '..', '..');
const RUNS = Number(process.env.FUZZ_RUNS ?? '120');
const SEED = Number(process.env.FUZZ_SEED ?? '11');
const CONCURRENCY = 4;
const MAX_RESPONSE_HEADER_BYTES = 8 * 1024;

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  headerBytes: number;
  body: Buffer;
  error?: string;
}

/** One request over a keep-alive agent; a network failure is status 0. Bounded by 15 s. */
function send(base: string, agent: http.Agent, req: FuzzRequest): Promise<Answer> {
  return new Promise((resolve) => {
    let outgoing: http.ClientRequest;
    try {
      const url = new URL(base);
      outgoing = http.request(
        {
          host: url.hostname,
          port: url.port,
          method: req.method,
          path: req.path,
          headers: { ...req.headers, ...(req.body && !req.headers['Transfer-Encoding'] ? { 'Content-Length': String(req.body.length) } : {}) },
          agent,
          timeout: 15_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size < 4 * 1024 * 1024) chunks.push(c);
          });
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              headerBytes: res.rawHeaders.reduce((n, h) => n + h.length + 2, 0),
              body: Buffer.concat(chunks),
            }),
          );
          res.on('error', (err) => resolve({ status: 0, headers: {}, headerBytes: 0, body: Buffer.alloc(0), error: String(err) }));
        },
      );
    } catch (err) {
      resolve({ status: -1, headers: {}, headerBytes: 0, body: Buffer.alloc(0), error: `not sendable: ${String(err)}` });
      return;
    }
    outgoing.on('timeout', () => outgoing.destroy(new Error('no answer within 15 s')));
    outgoing.on('error', (err) => resolve({ status: 0, headers: {}, headerBytes: 0, body: Buffer.alloc(0), error: String(err) }));
    outgoing.end(req.body);
  });
}

function describeRequest(req: FuzzRequest): string {
  const body = req.body ? ` body=${JSON.stringify(req.body.toString('utf8').slice(0, 200))}` : '';
  const headers = JSON.stringify(req.headers, (_k, v: unknown) => (typeof v === 'string' && v.length > 120 ? `${v.slice(0, 40)}...(${v.length})` : v));
  return `${req.method} ${req.path.length > 200 ? `${req.path.slice(0, 200)}...(${req.path.length})` : req.path} ${headers}${body}`;
}

/** Per class: how many requests, and how many got each status. */
class Tally {
  readonly byKind = new Map<string, Map<number, number>>();
  add(kind: string, status: number): void {
    const statuses = this.byKind.get(kind) ?? new Map<number, number>();
    statuses.set(status, (statuses.get(status) ?? 0) + 1);
    this.byKind.set(kind, statuses);
  }
  report(title: string): void {
    process.stdout.write(`      [fuzz] ${title} (seed ${SEED}, ${RUNS} runs per class)\n`);
    for (const [kind, statuses] of [...this.byKind].sort()) {
      const total = [...statuses.values()].reduce((a, b) => a + b, 0);
      const parts = [...statuses].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}:${n}`);
      process.stdout.write(`      [fuzz]   ${kind.padEnd(34)} ${String(total).padStart(5)}  ${parts.join(' ')}\n`);
    }
  }
}

describe('fuzz: generated and hostile requests through the gateway and straight to the inventory (processes)', function () {
  this.timeout(600_000);
  let db: Knex;
  let inventory: ServiceProcess | undefined;
  let gateway: ServiceProcess | undefined;
  let inventoryUrl: string;
  let gatewayUrl: string;
  let queue: string;
  let mq: Awaited<ReturnType<typeof amqpClient>>;
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const spec = new SpecArbitraries(contract().document);
  let ids: number[] = [];
  const currentIds = () => ids;
  // What the answers say happened, to compare with the table and the queue.
  let created = 0;
  let deleted = 0;
  const confirmedOrders: string[] = [];
  /** Idempotency-Key -> the order first taken under it (fuzz-key-* keys only). */
  const keyOrders = new Map<string, string>();
  const tally = new Tally();

  before(async () => {
    process.stdout.write(`      [fuzz] FUZZ_SEED=${SEED} FUZZ_RUNS=${RUNS}\n`);
    const pg = await sharedPostgres();
    const rabbit = await sharedRabbit();
    // Each service with its own credentials, as on the hosts: the inventory as movies_db's app
    // role, the gateway as the publishing RabbitMQ user; the test reads as the superuser.
    const movies = await migratedDatabase(inventorySchema, pg);
    const dbConfig = movies.app;
    db = createDatabase(pg.connectionConfig(movies.database), { poolMax: 2 });
    const broker = await billingBroker(rabbit, { queue: uniqueName('fuzz_queue') });
    queue = broker.queue;
    const mqConfig = broker.gateway;
    const [inventoryPort, gatewayPort] = [await freePort(), await freePort()];
    const base = { CM_ENV_FILE: '/dev/null', NODE_ENV: 'production', LOG_LEVEL: 'warn' };
    inventory = await startService({
      name: 'fuzz-inventory',
      script: path.join(ROOT, 'srcs/inventory-app/src/main.ts'),
      env: {
        ...base,
        INVENTORY_LISTEN_HOST: '127.0.0.1',
        INVENTORY_PORT: String(inventoryPort),
        INVENTORY_DB_HOST: dbConfig.host,
        INVENTORY_DB_PORT: String(dbConfig.port),
        INVENTORY_DB_NAME: dbConfig.database,
        INVENTORY_DB_USER: dbConfig.user,
        INVENTORY_DB_PASSWORD: dbConfig.password,
      },
      runDir: runDir(),
      cwd: ROOT,
      readyUrl: `http://127.0.0.1:${inventoryPort}/health`,
      readyTimeoutMs: 30_000,
    });
    inventoryUrl = `http://127.0.0.1:${inventoryPort}`;
    gateway = await startService({
      name: 'fuzz-gateway',
      script: path.join(ROOT, 'srcs/api-gateway/src/main.ts'),
      env: {
        ...base,
        GATEWAY_LISTEN_HOST: '127.0.0.1',
        GATEWAY_PORT: String(gatewayPort),
        GATEWAY_ADMIN_PORT: String(await freePort()),
        INVENTORY_HOST: '127.0.0.1',
        INVENTORY_PORT: String(inventoryPort),
        RABBITMQ_HOST: mqConfig.host,
        RABBITMQ_PORT: String(mqConfig.port),
        RABBITMQ_GATEWAY_USER: mqConfig.user,
        RABBITMQ_GATEWAY_PASSWORD: mqConfig.password,
        RABBITMQ_VHOST: mqConfig.vhost,
        RABBITMQ_QUEUE: queue,
      },
      runDir: runDir(),
      cwd: ROOT,
      readyUrl: `http://127.0.0.1:${gatewayPort}/openapi.yaml`,
      readyTimeoutMs: 30_000,
    });
    gatewayUrl = `http://127.0.0.1:${gatewayPort}`;
    mq = await amqpClient(rabbit);
    // The gateway finds the queue (declared above as billing would) once it reaches RabbitMQ: wait for its /health to say so.
    for (let i = 0; i < 100; i++) {
      const res = await fetch(`${gatewayUrl}/health`).catch(() => undefined);
      if (res?.status === 200) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    await reseed();
  });

  after(async () => {
    tally.report('answers per input class');
    agent.destroy();
    await Promise.all([gateway?.stop(), inventory?.stop()]);
    await mq?.close();
    await db?.destroy();
  });

  async function reseed(): Promise<void> {
    for (let i = 0; i < 10; i++) {
      const res = await send(inventoryUrl, agent, { kind: 'seed', method: 'POST', path: '/api/movies', headers: { 'Content-Type': 'application/json' }, body: Buffer.from(JSON.stringify({ title: `Seed movie ${i}`, description: 'seeded' })) });
      assert.equal(res.status, 200, res.body.toString());
      created++;
    }
    ids = ((await db('movies').select('id').orderBy('id', 'desc').limit(10)) as Array<{ id: number }>).map((r) => r.id);
  }

  /** The problems of one answer; empty when it is right. */
  async function judge(req: FuzzRequest, res: Answer, api: Api): Promise<string[]> {
    const problems: string[] = [];
    if (res.status === -1) return []; // the client library refused to send it: nothing to judge
    if (res.status === 0) return [`no answer: ${res.error}`];
    if (res.status >= 500) problems.push(`a ${res.status} although every dependency works`);
    const observed = { method: req.method, url: req.path, status: res.status, headers: res.headers, body: res.body };
    problems.push(...contract().check(observed, api));
    if (res.status >= 400 && req.method !== 'HEAD') {
      try {
        const body = JSON.parse(res.body.toString('utf8')) as { error?: { code?: unknown; message?: unknown } };
        if (typeof body.error?.code !== 'string' || typeof body.error.message !== 'string') problems.push('error body is not {"error":{"code","message"}}');
      } catch {
        problems.push(`error body is not JSON: ${JSON.stringify(res.body.toString('utf8').slice(0, 100))}`);
      }
    }
    if (res.headerBytes > MAX_RESPONSE_HEADER_BYTES) problems.push(`response headers of ${res.headerBytes} bytes`);

    const plainJson = req.headers['Content-Type'] === 'application/json' && req.headers['Content-Encoding'] === undefined;
    if (req.order && plainJson && req.headers['Idempotency-Key'] === undefined && /^\/api\/billing\/?$/.test(req.path)) {
      const valid = isValidOrderText(req.order.text);
      if (valid && res.status !== 200) problems.push(`a valid order answered ${res.status}`);
      if (!valid && res.status === 200) problems.push('an invalid order was queued (200)');
    }
    const key = req.headers['Idempotency-Key'];
    if (req.order && plainJson && key?.startsWith('fuzz-key-')) {
      const identity = orderIdentity(req.order.text);
      const first = keyOrders.get(key);
      const expected = identity === undefined ? 400 : first === undefined || first === identity ? 200 : 422;
      if (res.status !== expected) problems.push(`Idempotency-Key ${key} (first order ${first ?? 'none'}, this ${identity ?? 'invalid'}) answered ${res.status}, not ${expected}`);
      if (res.status === 200 && identity !== undefined && first === undefined) keyOrders.set(key, identity);
    }
    if (res.status === 200 && req.method === 'POST' && /^\/api\/billing\/?$/.test(req.path) && req.body) confirmedOrders.push(req.body.toString('utf8'));

    if (res.status === 200 && req.method === 'POST' && /^\/api\/movies\/?$/.test(req.path)) {
      created++;
      const movie = JSON.parse(res.body.toString('utf8')) as { id: number; title: string; description: string };
      const sent = JSON.parse(req.body?.toString('utf8').replace(/^\ufeff/, '') ?? '{}') as { title?: unknown; description?: unknown };
      if (typeof sent.title !== 'string' || movie.title !== sent.title.trim()) problems.push('the stored title is not the title sent, trimmed');
      if ((sent.description ?? '') !== movie.description) problems.push('the stored description is not the one sent');
      if (TITLE_FORBIDDEN.test(movie.title) || DESCRIPTION_FORBIDDEN.test(movie.description)) problems.push(`a forbidden character was stored: ${JSON.stringify(movie)}`);
      const row = (await db('movies').where({ id: movie.id }).first()) as { title: string; description: string } | undefined;
      if (!row || row.title !== movie.title || row.description !== movie.description) problems.push(`the row differs from the answer: ${JSON.stringify(row)}`);
    }
    if (res.status === 200 && req.method === 'PUT') {
      const movie = JSON.parse(res.body.toString('utf8')) as { title: string; description: string };
      if (TITLE_FORBIDDEN.test(movie.title) || DESCRIPTION_FORBIDDEN.test(movie.description)) problems.push(`a forbidden character was stored: ${JSON.stringify(movie)}`);
    }
    if (res.status === 200 && req.method === 'DELETE') {
      const body = JSON.parse(res.body.toString('utf8')) as { deleted?: number };
      deleted += typeof body.deleted === 'number' ? body.deleted : 1;
    }
    return problems;
  }

  /** Sends `count` samples of `arb`, CONCURRENCY at a time; fails naming the first problems. */
  async function run(title: string, arb: fc.Arbitrary<FuzzRequest>, base: string, api: Api, seed: number, count = RUNS, concurrency = CONCURRENCY): Promise<void> {
    // Orders, docs and the gateway's own /health and /metrics are the gateway's alone: the
    // inventory is held to the movie routes (its /health has a shape of its own).
    const gatewayOnly = /^\/(api\/billing|api\/docs|openapi\.yaml|health|metrics)(\/|\?|$)/;
    const samples = fc.sample(arb, { seed, numRuns: count }).filter((r) => api === 'gateway' || !gatewayOnly.test(r.path));
    const failures: string[] = [];
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < samples.length) {
        const req = samples[next++] as FuzzRequest;
        const res = await send(base, agent, req);
        tally.add(`${api === 'gateway' ? 'gw' : 'inv'} ${req.kind}`, res.status);
        const problems = await judge(req, res, api).catch((err: unknown) => [`the answer could not be checked: ${String(err)}`]);
        if (problems.length > 0 && failures.length < 15) {
          failures.push(`${describeRequest(req)}\n    -> ${res.status} ${res.body.toString('utf8').slice(0, 200)}\n    ${problems.join('\n    ')}`);
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    if (ids.length === 0 || (await db('movies').count<{ count: string }[]>({ count: '*' }))[0]?.count === '0') await reseed();
    assert.deepEqual(failures, [], `${title} (FUZZ_SEED=${seed}, FUZZ_RUNS=${count}):\n${failures.join('\n')}`);
  }

  const seedOf = (name: string): number => {
    let h = SEED;
    for (const c of name) h = (Math.imul(h, 31) + c.charCodeAt(0)) | 0;
    return h;
  };

  for (const op of contract().operations()) {
    const name = `${op.method} ${op.path}`;
    it(`gateway: ${name} (${op.operationId}) from its schemas`, async () => {
      await run(name, operationRequests(spec, op, currentIds), gatewayUrl, 'gateway', seedOf(`gw ${name}`));
    });
    if (op.path.startsWith('/api/movies')) {
      it(`inventory: ${name} (${op.operationId}) from its schemas`, async () => {
        await run(name, operationRequests(spec, op, currentIds), inventoryUrl, 'inventory', seedOf(`inv ${name}`));
      });
    }
  }

  for (const kind of Object.keys(hostileRequests(currentIds))) {
    it(`gateway: ${kind}`, async () => {
      // One at a time where the answer depends on the order of requests (a key's first order).
      const concurrency = kind === 'idempotency-reuse' ? 1 : CONCURRENCY;
      await run(kind, hostileRequests(currentIds)[kind] as fc.Arbitrary<FuzzRequest>, gatewayUrl, 'gateway', seedOf(`gw ${kind}`), RUNS, concurrency);
    });
    if (kind !== 'precise-numbers' && kind !== 'idempotency-reuse') {
      it(`inventory: ${kind}`, async () => {
        await run(kind, hostileRequests(currentIds)[kind] as fc.Arbitrary<FuzzRequest>, inventoryUrl, 'inventory', seedOf(`inv ${kind}`));
      });
    }
  }

  it('the services are healthy and never restarted; the table and the queue hold exactly what the answers said', async () => {
    for (const url of [gatewayUrl, inventoryUrl]) {
      const res = await fetch(`${url}/health`);
      assert.equal(res.status, 200, `${url}/health: ${await res.text()}`);
    }
    assert.ok(gateway?.running && inventory?.running, 'both processes still run');
    assert.doesNotMatch(gateway?.logs() ?? '', /"level":50|uncaught|ERR_HTTP_HEADERS_SENT/, 'no error in the gateway log');
    assert.doesNotMatch(inventory?.logs() ?? '', /"level":50|uncaught/, 'no error in the inventory log');

    const rows = (await db('movies').select('id', 'title', 'description')) as Array<{ id: number; title: string; description: string }>;
    assert.equal(rows.length, created - deleted, `rows: ${rows.length}, created ${created} - deleted ${deleted}`);
    for (const row of rows) {
      assert.ok(!TITLE_FORBIDDEN.test(row.title) && row.title === row.title.trim() && row.title.length >= 1 && row.title.length <= 255, `invalid title stored: ${JSON.stringify(row)}`);
      assert.ok(!DESCRIPTION_FORBIDDEN.test(row.description) && row.description.length <= 5000, `invalid description stored: ${JSON.stringify(row)}`);
    }

    const { messageCount } = await mq.channel.checkQueue(queue);
    assert.equal(messageCount, confirmedOrders.length, 'one message per confirmed order');
    const sent = new Map<string, number>();
    for (const text of confirmedOrders) {
      const key = losslessStringify(losslessParse(text)) ?? '';
      sent.set(key, (sent.get(key) ?? 0) + 1);
    }
    for (let i = 0; i < messageCount; i++) {
      const message = await mq.channel.get(queue, { noAck: false });
      assert.ok(message, 'a message');
      const text = message.content.toString('utf8');
      assert.ok(isValidOrderText(text), `an invalid order reached the queue: ${text}`);
      const key = losslessStringify(losslessParse(text)) ?? '';
      assert.ok((sent.get(key) ?? 0) > 0, `a queued order that no client sent as such (numbers changed?): ${text}`);
      sent.set(key, (sent.get(key) ?? 0) - 1);
      mq.channel.ack(message);
    }
    process.stdout.write(`      [fuzz] movies created ${created}, deleted ${deleted}, orders queued ${confirmedOrders.length}\n`);
  });
});
