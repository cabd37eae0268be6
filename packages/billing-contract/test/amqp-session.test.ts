import assert from 'node:assert/strict';
import * as net from 'node:net';
import { ReconnectingSession, type AmqpSession } from '../src/amqp-session';
import { freePort, sharedRabbit, uniqueName, waitFor, type RabbitInstance } from '../../../test/harness/fixtures';
import { silentLogger } from '../../../test/support/silent-logger';

describe('billing-contract: ReconnectingSession (real broker)', () => {
  let rabbit: RabbitInstance;
  let loop: ReconnectingSession<{ n: number; session: AmqpSession }> | undefined;
  before(async () => {
    rabbit = await sharedRabbit();
  });
  afterEach(async () => {
    await loop?.close();
    loop = undefined;
  });

  it('runs setup on every new session, and reconnects by itself when the session ends', async () => {
    const queue = uniqueName('session');
    let setups = 0;
    loop = new ReconnectingSession(
      { amqp: { ...rabbit.connectionConfig(), queue }, logger: silentLogger(), reconnectBackoff: { initialMs: 10, maxMs: 50 } },
      'test-session',
      async (session) => {
        await session.channel.assertQueue(queue, { durable: false, autoDelete: true });
        return { n: ++setups, session };
      },
    );
    assert.equal(loop.current, undefined);
    loop.start();
    const first = await waitFor(() => loop?.current, { description: 'the first session' });
    assert.equal(first.n, 1);
    assert.equal(loop.lastError, undefined);

    first.session.end('test ends it');
    assert.ok(first.session.ended.aborted, 'the session knows it ended');
    assert.equal(loop.current, undefined, 'an ended session is not current');
    const second = await waitFor(() => (loop?.current?.n === 2 ? loop.current : undefined), { description: 'a second session' });
    assert.notEqual(second.session.connection, first.session.connection, 'on a fresh connection');
  });

  it('counts a failed setup as a failed attempt, names it, and tries again', async () => {
    let attempts = 0;
    // What lastError said when the third attempt began: the failures last only the 10-20 ms
    // backoff, too short for waitFor to see them reliably from outside.
    let errorBeforeThird: string | undefined;
    loop = new ReconnectingSession(
      { amqp: { ...rabbit.connectionConfig(), queue: 'unused' }, logger: silentLogger(), reconnectBackoff: { initialMs: 10, maxMs: 20 } },
      'test-session',
      async (session) => {
        attempts++;
        if (attempts < 3) throw new Error(`setup failed ${attempts}`);
        errorBeforeThird = loop?.lastError;
        return { n: attempts, session };
      },
    );
    loop.start();
    const open = await waitFor(() => loop?.current, { description: 'a session after two failed setups' });
    assert.equal(open.n, 3);
    assert.match(errorBeforeThird ?? '', /setup failed 2/, 'the second failure, named, in lastError');
    assert.equal(loop.lastError, undefined, 'cleared once a setup succeeds');
  });

  it('close() hands the open session to beforeClose, then closes it and stops reconnecting', async () => {
    loop = new ReconnectingSession(
      { amqp: { ...rabbit.connectionConfig(), queue: 'unused' }, logger: silentLogger(), reconnectBackoff: { initialMs: 10, maxMs: 20 } },
      'test-session',
      async (session) => ({ n: 1, session }),
    );
    loop.start();
    const open = await waitFor(() => loop?.current, { description: 'a session' });
    let drained: boolean | undefined;
    await loop.close(async (state) => {
      drained = !state.session.ended.aborted;
    });
    assert.equal(drained, true, 'beforeClose ran while the session was still open');
    assert.ok(open.session.ended.aborted);
    assert.equal(loop.current, undefined);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(loop.current, undefined, 'no new session after close()');
  });

  it('connects to the first node that answers, and after a loss to the next node in RABBITMQ_HOST order', async () => {
    // Two loopback relays to the one broker stand for two nodes; a dead port for a third.
    const relays = await Promise.all([relay(rabbit.port), relay(rabbit.port)]);
    const dead = await freePort();
    try {
      const [a, b] = relays as [Relay, Relay];
      const nodes = [{ host: '127.0.0.1', port: dead }, { host: '127.0.0.1', port: a.port }, { host: '127.0.0.1', port: b.port }];
      loop = new ReconnectingSession(
        { amqp: { ...rabbit.connectionConfig(), nodes, queue: 'unused' }, logger: silentLogger(), reconnectBackoff: { initialMs: 10, maxMs: 20 } },
        'test-session',
        async (session) => ({ n: 0, session }),
      );
      loop.start();
      const first = await waitFor(() => loop?.current, { description: 'a session past the dead node' });
      assert.deepEqual([a.connections, b.connections], [1, 0], 'the dead node skipped, the second node taken');
      first.session.end('node lost');
      const second = await waitFor(() => (loop?.current && loop.current !== first ? loop.current : undefined), { description: 'a second session' });
      assert.deepEqual([a.connections, b.connections], [1, 1], 'after the loss, the node after the lost one');
      second.session.end('node lost');
      await waitFor(() => (loop?.current && loop.current !== second ? loop.current : undefined), { description: 'a third session' });
      assert.deepEqual([a.connections, b.connections], [2, 1], 'wrapping around past the dead node');
    } finally {
      await loop?.close();
      loop = undefined;
      for (const r of relays) await r.close();
    }
  });
});

interface Relay {
  port: number;
  /** Connections accepted so far. */
  connections: number;
  close(): Promise<void>;
}

/** A TCP relay on 127.0.0.1 to `target`, counting the connections it accepts. */
async function relay(target: number): Promise<Relay> {
  const sockets = new Set<net.Socket>();
  const state = { connections: 0 };
  const server = net.createServer((client) => {
    state.connections++;
    const upstream = net.connect({ host: '127.0.0.1', port: target });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => sockets.delete(s));
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    get connections() {
      return state.connections;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
