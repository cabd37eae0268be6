import * as amqp from 'amqplib';
import type { ChannelModel, ConfirmChannel } from 'amqplib';
import type { Logger } from '@crud-master/common';
import { RECONNECT_BACKOFF, backoffDelay, brokerNodesOf, connectOptions, describeError, sleep, type AmqpConfig, type BackoffOptions } from './amqp';
import { rotation } from './broker-nodes';

/** One connection to RabbitMQ and its confirm channel, until either closes. */
export interface AmqpSession {
  readonly connection: ChannelModel;
  readonly channel: ConfirmChannel;
  /** Aborted once the channel or the connection is gone: nothing on it is ours any more. */
  readonly ended: AbortSignal;
  /** Set while the broker blocks publishing on this connection (a resource alarm): its reason. */
  readonly blocked: string | undefined;
  /** Ends the session for `reason`, closing its connection; the loop then reconnects. */
  end(reason: string): void;
}

/** Where and how to reach RabbitMQ: the publisher's and the consumer's options share these. */
export interface BrokerOptions {
  amqp: AmqpConfig;
  logger: Logger;
  /** Delays between attempts to reach the broker. */
  reconnectBackoff?: BackoffOptions;
}

/**
 * Runs on every new session, as amqp-connection-manager's `setup(channel)` does: declares the
 * topology, sets the prefetch, starts consuming. What it returns is `current` until the session
 * ends; a failure ends the session and counts as a failed attempt.
 */
export type SessionSetup<T> = (session: AmqpSession) => Promise<T>;

/**
 * Thrown by a setup that no retry can fix (a queue declared with another type): the loop stops,
 * `fatal` resolves with it, and the service ends its start with the message.
 */
export class FatalSetupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FatalSetupError';
  }
}

class Session implements AmqpSession {
  readonly lost: Promise<string>;
  private readonly controller = new AbortController();
  private resolveLost!: (reason: string) => void;

  constructor(
    readonly connection: ChannelModel,
    readonly channel: ConfirmChannel,
    private readonly flow: { blocked: string | undefined },
  ) {
    this.lost = new Promise((resolve) => {
      this.resolveLost = resolve;
    });
    channel.on('close', () => this.end('channel closed'));
    connection.on('close', (err?: Error) => this.end(err ? `connection closed: ${describeError(err)}` : 'connection closed'));
  }

  get blocked(): string | undefined {
    return this.flow.blocked;
  }

  get ended(): AbortSignal {
    return this.controller.signal;
  }

  end(reason: string): void {
    if (this.controller.signal.aborted) return;
    this.controller.abort();
    this.resolveLost(reason);
    // A channel closed by the broker (e.g. a failed declaration) leaves the connection open.
    void this.connection.close().catch(() => undefined);
  }
}

/**
 * Keeps one session with RabbitMQ open for as long as it runs: connects, runs `setup`, and when
 * the channel or the connection is lost, reconnects with bounded, jittered exponential backoff
 * until `close()`. A broker that is down is never fatal: every 'error' event is listened to (one
 * without a listener would end the process), and the last failure is kept for /health.
 */
export class ReconnectingSession<T> {
  private session: { state: T; session: Session } | undefined;
  private loop: Promise<void> | undefined;
  private readonly closing = new AbortController();
  private failure: string | undefined = 'not connected yet';
  /** The node the next connection tries first: after a loss, the one after the lost node. */
  private nextNode = 0;
  private resolveFatal!: (err: FatalSetupError) => void;
  /** Resolves when a FatalSetupError stopped the loop; never otherwise. */
  readonly fatal: Promise<FatalSetupError> = new Promise((resolve) => {
    this.resolveFatal = resolve;
  });

  /** `connectionName` is the connection's name in RabbitMQ's management UI. */
  constructor(
    private readonly options: BrokerOptions,
    private readonly connectionName: string,
    private readonly setup: SessionSetup<T>,
  ) {}

  /** Starts connecting in the background. */
  start(): void {
    this.loop ??= this.run();
  }

  /** What `setup` returned for the open session; undefined while there is none. */
  get current(): T | undefined {
    const open = this.session;
    return open && !open.session.ended.aborted ? open.state : undefined;
  }

  /** Why there is no session (the last connection error or loss), or undefined while there is one. */
  get lastError(): string | undefined {
    return this.failure;
  }

  /**
   * Stops reconnecting. `beforeClose` gets the open session's state first (to drain what it
   * holds), then its channel and connection are closed.
   */
  async close(beforeClose?: (state: T) => Promise<void>): Promise<void> {
    this.closing.abort();
    const open = this.session;
    this.session = undefined;
    if (open) {
      if (beforeClose) await beforeClose(open.state);
      await open.session.channel.close().catch(() => undefined);
      await open.session.connection.close().catch(() => undefined);
      open.session.end('closed');
    }
    await this.loop;
  }

  private async run(): Promise<void> {
    const { logger, amqp: config } = this.options;
    let attempt = 0;
    while (!this.closing.signal.aborted) {
      try {
        const open = await this.open();
        if (this.closing.signal.aborted) {
          // close() came while connecting: it did not see this session, so close it here.
          open.session.end('closed');
          break;
        }
        attempt = 0;
        this.failure = undefined;
        this.session = open;
        logger.info({ queue: config.queue, node: open.node }, 'connected to RabbitMQ');
        this.failure = await open.session.lost;
        if (!this.closing.signal.aborted) logger.warn({ reason: this.failure }, 'lost RabbitMQ; reconnecting');
      } catch (err) {
        this.failure = describeError(err);
        if (err instanceof FatalSetupError) {
          logger.error({ err: this.failure }, 'RabbitMQ refused the setup; not retrying');
          this.resolveFatal(err);
          break;
        }
        logger.warn({ err: this.failure, attempt }, 'cannot reach RabbitMQ');
      } finally {
        this.session = undefined;
      }
      if (this.closing.signal.aborted) break;
      await sleep(backoffDelay(attempt++, this.options.reconnectBackoff ?? RECONNECT_BACKOFF), this.closing.signal);
    }
  }

  /**
   * Connects to the first node that answers, in RABBITMQ_HOST's order starting at `nextNode`
   * (each is given 5 s), and runs setup there. After this session, the next one starts at the
   * node after it: a lost node is tried last, not first.
   */
  private async open(): Promise<{ state: T; session: Session; node: string }> {
    const nodes = brokerNodesOf(this.options.amqp);
    const failures: string[] = [];
    for (const index of rotation(nodes.length, this.nextNode)) {
      const node = nodes[index]!;
      let connection: ChannelModel;
      try {
        connection = await amqp.connect(connectOptions(this.options.amqp, 10, node), { timeout: 5000, clientProperties: { connection_name: this.connectionName } });
      } catch (err) {
        failures.push(nodes.length > 1 ? `${node.host}:${node.port}: ${describeError(err)}` : describeError(err));
        if (this.closing.signal.aborted) break;
        continue;
      }
      this.nextNode = (index + 1) % nodes.length;
      return { ...(await this.setUp(connection)), node: `${node.host}:${node.port}` };
    }
    throw new Error(failures.join('; ') || 'closing');
  }

  private async setUp(connection: ChannelModel): Promise<{ state: T; session: Session }> {
    const { logger } = this.options;
    // Listeners first: an 'error' event without a listener would crash the process.
    connection.on('error', (err: Error) => logger.warn({ err: describeError(err) }, 'RabbitMQ connection error'));
    const flow: { blocked: string | undefined } = { blocked: undefined };
    connection.on('blocked', (reason: string) => {
      flow.blocked = reason || 'resource alarm';
      logger.warn({ reason }, 'RabbitMQ blocked publishing');
    });
    connection.on('unblocked', () => {
      flow.blocked = undefined;
      logger.info('RabbitMQ unblocked publishing');
    });
    try {
      if (this.closing.signal.aborted) throw new Error('closing');
      const channel = await connection.createConfirmChannel();
      channel.on('error', (err: Error) => logger.warn({ err: describeError(err) }, 'RabbitMQ channel error'));
      const session = new Session(connection, channel, flow);
      return { state: await this.setup(session), session };
    } catch (err) {
      await connection.close().catch(() => undefined);
      throw err;
    }
  }
}
