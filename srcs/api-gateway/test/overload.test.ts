import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { addressOf, closeServer, listen } from '@crud-master/common';
import { createApp } from '../src/app';
import { GATEWAY_SERVER_LIMITS } from '../src/config';
import { createLimiter, type LimiterOptions } from '../src/shed';
import { silentLogger } from '../../../test/support/silent-logger';
import { rawRequest, json } from '../../../test/support/http';

/** A stand-in inventory: answers every request with a small JSON body after `delayMs`, counting connections. */
async function fakeInventory(delayMs: number) {
  let connections = 0;
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      requests.push(`${req.method} ${req.url}`);
      setTimeout(() => {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end('{"id":1,"title":"t","description":""}');
      }, delayMs);
    });
  });
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: addressOf(server),
    requests,
    get connections() {
      return connections;
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

interface GatewayOptions {
  inventoryUrl: string;
  agentSockets: number;
  upstream: LimiterOptions;
  bodyTimeoutMs?: number;
}

async function startGateway(options: GatewayOptions) {
  const inventoryAgent = new http.Agent({ keepAlive: true, maxSockets: options.agentSockets });
  const limiter = createLimiter(options.upstream);
  const app = createApp({
    config: { inventoryUrl: options.inventoryUrl, upstreamTimeoutMs: 5000, bodyTimeoutMs: options.bodyTimeoutMs ?? 10_000 },
    logger: silentLogger(),
    inventoryAgent,
    upstreamLimiter: limiter,
  });
  const server = await listen(app.callback(), { host: '127.0.0.1', port: 0, limits: GATEWAY_SERVER_LIMITS });
  return {
    url: addressOf(server),
    port: (server.address() as net.AddressInfo).port,
    limiter,
    async close() {
      inventoryAgent.destroy();
      await closeServer(server, 200);
    },
  };
}

/** Opens a socket that sends a POST's headers and the first byte of a 1,000-byte body, then nothing. */
function slowSender(port: number): Promise<{ socket: net.Socket; answer: Promise<string> }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write('POST /api/movies HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{');
      const answer = new Promise<string>((done) => {
        let text = '';
        socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
        socket.on('close', () => done(text));
      });
      resolve({ socket, answer });
    });
    socket.on('error', () => undefined);
    socket.once('error', reject);
  });
}

describe('api-gateway under overload and slow clients (in process)', () => {
  let inventory: Awaited<ReturnType<typeof fakeInventory>>;
  let gateway: Awaited<ReturnType<typeof startGateway>> | undefined;

  afterEach(async () => {
    await gateway?.close();
    gateway = undefined;
    await inventory?.close();
  });

  it('answers a burst beyond its inventory connections, even with Connection: close, over no more connections than slots', async () => {
    // 40 requests at once for 4 slots: 36 wait in the limiter, none inside the client for the
    // inventory (where nothing bounds a wait), and half the clients close their connections
    // (the case that once threw ERR_HTTP_HEADERS_SENT from the proxy and ended the process).
    inventory = await fakeInventory(50);
    gateway = await startGateway({ inventoryUrl: inventory.url, agentSockets: 2, upstream: { max: 4, queue: 40, queueTimeoutMs: 5000 } });
    const url = gateway.url;
    const answers = await Promise.all(
      Array.from({ length: 40 }, (_, i) => rawRequest(url, { path: `/api/movies/${i + 1}`, headers: { Connection: i % 2 ? 'close' : 'keep-alive' } })),
    );
    assert.deepEqual([...new Set(answers.map((a) => a.status))], [200]);
    assert.ok(inventory.connections <= 4, `${inventory.connections} connections to the inventory`);
  });

  it('sheds what it cannot serve with 503 overloaded and Retry-After, as JSON, and serves the rest', async () => {
    inventory = await fakeInventory(300);
    gateway = await startGateway({ inventoryUrl: inventory.url, agentSockets: 2, upstream: { max: 2, queue: 2, queueTimeoutMs: 100 } });
    const url = gateway.url;
    const answers = await Promise.all(Array.from({ length: 10 }, () => rawRequest(url, { path: '/api/movies/1' })));
    const ok = answers.filter((a) => a.status === 200);
    const shed = answers.filter((a) => a.status === 503);
    assert.equal(ok.length + shed.length, 10, `statuses ${answers.map((a) => a.status)}`);
    assert.equal(ok.length, 2, 'the two slots; the two queued waited 100 ms, less than the 300 ms answer');
    for (const res of shed) {
      assert.equal(res.headers['retry-after'], '1');
      assert.match(String(res.headers['content-type']), /^application\/json/);
      assert.equal((json(res) as { error: { code: string } }).error.code, 'overloaded');
    }
  });

  it('cuts a body that does not arrive in time with 408 request_timeout, without ever opening an inventory connection for it', async () => {
    inventory = await fakeInventory(0);
    gateway = await startGateway({ inventoryUrl: inventory.url, agentSockets: 2, upstream: { max: 2, queue: 10, queueTimeoutMs: 1000 }, bodyTimeoutMs: 300 });
    const started = Date.now();
    const { answer } = await slowSender(gateway.port);
    const text = await answer;
    const elapsed = Date.now() - started;
    assert.match(text, /^HTTP\/1\.1 408 /);
    assert.match(text, /"code":"request_timeout"/);
    assert.ok(elapsed < 3000, `cut after ${elapsed} ms`);
    assert.equal(inventory.connections, 0);
  });

  it('keeps answering GETs while more slow senders than inventory sockets hang on', async () => {
    inventory = await fakeInventory(0);
    gateway = await startGateway({ inventoryUrl: inventory.url, agentSockets: 2, upstream: { max: 2, queue: 10, queueTimeoutMs: 1000 } });
    const senders = await Promise.all(Array.from({ length: 20 }, () => slowSender(gateway!.port)));
    try {
      const started = Date.now();
      const res = await rawRequest(gateway.url, { path: '/api/movies/1' }, 3000);
      assert.equal(res.status, 200);
      assert.ok(Date.now() - started < 2000);
      assert.deepEqual(inventory.requests, ['GET /api/movies/1'], 'no slow body reached the inventory');
    } finally {
      for (const s of senders) s.socket.destroy();
    }
  });

  it('frees the slot of a client that went away while it waited for one', async () => {
    inventory = await fakeInventory(200);
    gateway = await startGateway({ inventoryUrl: inventory.url, agentSockets: 1, upstream: { max: 1, queue: 10, queueTimeoutMs: 5000 } });
    const port = gateway.port;
    const first = rawRequest(gateway.url, { path: '/api/movies/1' });
    // Four clients queue behind the first and hang up before their turn.
    const quitters = Array.from({ length: 4 }, () => {
      const socket = net.connect(port, '127.0.0.1', () => socket.write('GET /api/movies/2 HTTP/1.1\r\nHost: x\r\n\r\n'));
      socket.on('error', () => undefined);
      return socket;
    });
    await new Promise((r) => setTimeout(r, 50));
    for (const s of quitters) s.destroy();
    assert.equal((await first).status, 200);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(gateway.limiter.active, 0, 'every slot is free again');
    assert.equal((await rawRequest(gateway.url, { path: '/api/movies/3' }, 3000)).status, 200);
  });

  it('refuses a body over the limit with 413 before reading it', async () => {
    inventory = await fakeInventory(0);
    gateway = await startGateway({ inventoryUrl: inventory.url, agentSockets: 2, upstream: { max: 2, queue: 10, queueTimeoutMs: 1000 } });
    const res = await rawRequest(gateway.url, {
      method: 'POST',
      path: '/api/movies',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ title: 'x', description: 'y'.repeat(20_000) }),
    });
    assert.equal(res.status, 413);
    assert.equal((json(res) as { error: { code: string } }).error.code, 'payload_too_large');
    assert.equal(inventory.requests.length, 0);
  });

  it('discards the rest of a chunked body past the limit, so the next request on that keep-alive connection is answered', async () => {
    inventory = await fakeInventory(0);
    gateway = await startGateway({ inventoryUrl: inventory.url, agentSockets: 2, upstream: { max: 2, queue: 10, queueTimeoutMs: 1000 } });
    const port = gateway.port;
    const answers = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        const chunk = `{"title":"x","description":"${'y'.repeat(400_000)}"}`;
        socket.write('POST /api/movies HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n');
        socket.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n0\r\n\r\n`);
        socket.write('GET /api/movies/1 HTTP/1.1\r\nHost: x\r\n\r\n');
      });
      let data = '';
      socket.on('data', (c: Buffer) => {
        data += c.toString('latin1');
        if ((data.match(/HTTP\/1\.1 /g) ?? []).length >= 2 && data.endsWith('}')) socket.destroy();
      });
      socket.on('close', () => resolve(data));
      socket.on('error', reject);
      setTimeout(() => socket.destroy(), 5000).unref();
    });
    const statuses = [...answers.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]);
    assert.deepEqual(statuses, ['413', '200'], answers.slice(0, 300));
    assert.deepEqual(inventory.requests, ['GET /api/movies/1']);
  });
});
