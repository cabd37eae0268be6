import * as amqp from 'amqplib';
import type { ChannelModel, ConfirmChannel, GetMessage, Options } from 'amqplib';

/** A test's own connection to a broker, to publish and inspect queues as a third party would. */
export class BrokerClient {
  private constructor(
    readonly connection: ChannelModel,
    readonly channel: ConfirmChannel,
  ) {}

  static async open(url: string): Promise<BrokerClient> {
    const connection = await amqp.connect(url);
    connection.on('error', () => undefined);
    const channel = await connection.createConfirmChannel();
    channel.on('error', () => undefined);
    return new BrokerClient(connection, channel);
  }

  /** Publishes to `queue` (declared durable first) and waits for the confirm. */
  async publish(queue: string, body: string | object, options: Options.Publish = {}): Promise<void> {
    await this.channel.assertQueue(queue, { durable: true });
    const content = Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    await new Promise<void>((resolve, reject) => {
      this.channel.sendToQueue(queue, content, { persistent: true, contentType: 'application/json', ...options }, (err) =>
        err ? reject(err) : resolve(),
      );
    });
  }

  /** Messages ready in `queue` (not counting those delivered and unacknowledged). */
  async ready(queue: string): Promise<number> {
    return (await this.channel.checkQueue(queue)).messageCount;
  }

  /** Takes every ready message off `queue` (acknowledging them). */
  async drain(queue: string): Promise<GetMessage[]> {
    const messages: GetMessage[] = [];
    for (;;) {
      const message = await this.channel.get(queue, { noAck: true });
      if (message === false) return messages;
      messages.push(message);
    }
  }

  async close(): Promise<void> {
    await this.connection.close().catch(() => undefined);
  }
}
