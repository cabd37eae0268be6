import assert from 'node:assert/strict';
import { ReconnectingSession, type AmqpSession } from '../src/amqp-session';
import { sharedRabbit, uniqueName, waitFor, type RabbitInstance } from '../../../test/harness/fixtures';
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
    loop = new ReconnectingSession(
      { amqp: { ...rabbit.connectionConfig(), queue: 'unused' }, logger: silentLogger(), reconnectBackoff: { initialMs: 10, maxMs: 20 } },
      'test-session',
      async (session) => {
        attempts++;
        if (attempts < 3) throw new Error(`setup failed ${attempts}`);
        return { n: attempts, session };
      },
    );
    loop.start();
    await waitFor(() => /setup failed/.test(loop?.lastError ?? ''), { description: 'the failure in lastError' });
    const open = await waitFor(() => loop?.current, { description: 'a session after two failed setups' });
    assert.equal(open.n, 3);
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
});
