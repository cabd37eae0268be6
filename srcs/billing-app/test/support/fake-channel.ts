import type { Message, MessageProperties, Options, Replies } from 'amqplib';
import type { SettleChannel } from '../../src/messaging/handler';

export interface Published {
  exchange: string;
  routingKey: string;
  content: Buffer;
  options: Options.Publish;
}

/**
 * Stands in for a ConfirmChannel in the handler's unit tests: records acks and publishes, and
 * confirms (or, with `refuseConfirms`, nacks) each publish on the next turn of the event loop.
 */
export class FakeChannel implements SettleChannel {
  readonly acks: Array<{ deliveryTag: number; allUpTo: boolean }> = [];
  readonly published: Published[] = [];
  refuseConfirms = false;

  ack(message: Message, allUpTo = false): void {
    this.acks.push({ deliveryTag: message.fields.deliveryTag, allUpTo });
  }

  publish(
    exchange: string,
    routingKey: string,
    content: Buffer,
    options: Options.Publish = {},
    callback?: (err: unknown, ok: Replies.Empty) => void,
  ): boolean {
    this.published.push({ exchange, routingKey, content, options });
    const refuse = this.refuseConfirms;
    setImmediate(() => callback?.(refuse ? new Error('message nacked') : null, {}));
    return true;
  }
}

let nextTag = 1;

/** A delivered message as amqplib hands it over. */
export function delivery(body: string | Buffer | object, properties: Partial<MessageProperties> = {}): Message {
  const content = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  const props: MessageProperties = {
    contentType: 'application/json',
    contentEncoding: undefined,
    headers: {},
    deliveryMode: 2,
    priority: undefined,
    correlationId: undefined,
    replyTo: undefined,
    expiration: undefined,
    messageId: `id-${nextTag}`,
    timestamp: undefined,
    type: undefined,
    userId: undefined,
    appId: undefined,
    clusterId: undefined,
    ...properties,
  };
  return {
    content,
    fields: { deliveryTag: nextTag++, redelivered: false, exchange: '', routingKey: 'billing_queue' },
    properties: props,
  };
}
