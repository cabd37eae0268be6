/*
 * The billing pipeline's two RabbitMQ users on a harness broker, as provisioning creates them:
 * the gateway's (publish to the orders exchange only) and the worker's (its two queues and
 * exchanges), with the exact permission patterns of `rabbitPermissions`.
 */
import { randomBytes } from 'node:crypto';
import * as amqp from 'amqplib';
import { connectOptions, declareBillingTopology, rabbitPermissions, type AmqpConfig } from '@crud-master/billing-contract';
import { uniqueName, type RabbitInstance } from '../harness/fixtures';

export interface BillingBroker {
  queue: string;
  /** The gateway's user and the queue: what the gateway connects with. */
  gateway: AmqpConfig;
  /** The worker's user and the queue. */
  billing: AmqpConfig;
}

/**
 * Both users for `queue` (a fresh name by default); with `declare` (default) the topology is
 * declared as the worker's user, as billing does at its first start, before any gateway publishes.
 */
export async function billingBroker(rabbit: RabbitInstance, options: { queue?: string; declare?: boolean } = {}): Promise<BillingBroker> {
  const queue = options.queue ?? uniqueName('billing_queue');
  const permissions = rabbitPermissions(queue);
  const secret = (): string => randomBytes(12).toString('hex');
  const gateway = await rabbit.createUser(`${queue}_gateway`, secret(), permissions.gateway);
  const billing = await rabbit.createUser(`${queue}_billing`, secret(), permissions.billing);
  const broker = { queue, gateway: { ...gateway, queue }, billing: { ...billing, queue } };
  if (options.declare ?? true) await declareTopologyAs(broker.billing);
  return broker;
}

/** Declares the billing topology for `config.queue` as `config.user`, on a connection of its own. */
export async function declareTopologyAs(config: AmqpConfig): Promise<void> {
  const connection = await amqp.connect(connectOptions(config));
  try {
    const channel = await connection.createChannel();
    await declareBillingTopology(channel, config.queue);
  } finally {
    await connection.close().catch(() => undefined);
  }
}
