/*
 * Run by test/hosts/scaled.sh on billing-vm, as root, from standard input, with the worker's
 * RabbitMQ user (its own env file) on the local node:
 *   node - /etc/crud-master/billing.env backlog N PREFIX USER_ID
 *       publishes N orders of user USER_ID to billing_queue's exchange, as the gateway does
 *       (persistent, JSON, message ids PREFIX-1..N), each confirmed; prints "published N".
 *   node - /etc/crud-master/billing.env poison ID SECONDS
 *       publishes one order with message id ID, then consumes billing_queue returning every
 *       delivery (nack, requeue) like a worker that never gets through it, until RabbitMQ itself
 *       dead-letters it to billing_queue.dead by the queue's delivery limit; takes it off the
 *       dead-letter queue and prints "deliveries N reason R queue Q". Exits 1 after SECONDS, or
 *       when billing_queue holds anything else (the workers must be stopped).
 */
'use strict';

const fs = require('node:fs');

const amqp = require(require.resolve('amqplib', { paths: ['/opt/crud-master/srcs/billing-app', '/opt/crud-master'] }));

/** @param {string} file a dotenv file as provisioning writes it (KEY=value, optionally quoted) */
function readEnv(file) {
  const env = {};
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m) continue;
    let value = m[2];
    if (/^(['"]).*\1$/.test(value)) value = value.slice(1, -1);
    env[m[1]] = value;
  }
  return env;
}

const [file, mode, ...args] = process.argv.slice(2);
const env = readEnv(file);
const queue = env.RABBITMQ_QUEUE || 'billing_queue';
const dead = `${queue}.dead`;
const server = {
  protocol: 'amqp',
  hostname: '127.0.0.1',
  port: Number(env.RABBITMQ_PORT),
  username: env.RABBITMQ_BILLING_USER,
  password: env.RABBITMQ_BILLING_PASSWORD,
  vhost: env.RABBITMQ_VHOST || '/',
};

function publish(channel, messageId, user) {
  const body = Buffer.from(JSON.stringify({ user_id: String(user), number_of_items: '1', total_amount: '1' }));
  return new Promise((resolve, reject) =>
    channel.publish(queue, queue, body, { persistent: true, contentType: 'application/json', messageId }, (err) =>
      err ? reject(err) : resolve(),
    ),
  );
}

async function backlog(channel, n, prefix, user) {
  const pending = [];
  for (let i = 1; i <= n; i++) pending.push(publish(channel, `${prefix}-${i}`, user));
  await Promise.all(pending);
  console.log(`published ${n}`);
}

async function poison(channel, id, seconds) {
  if ((await channel.checkQueue(queue)).messageCount !== 0) throw new Error(`${queue} is not empty`);
  await publish(channel, id, 1);
  let deliveries = 0;
  await channel.consume(queue, (message) => {
    if (!message) return;
    if (message.properties.messageId === id) deliveries++;
    channel.nack(message, false, true);
  });
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const letter = await channel.get(dead, { noAck: false });
    if (letter && letter.properties.messageId === id) {
      channel.ack(letter);
      const death = (letter.properties.headers && letter.properties.headers['x-death'] || [])[0] || {};
      console.log(`deliveries ${deliveries} reason ${death.reason} queue ${death.queue}`);
      return;
    }
    if (letter) channel.nack(letter, false, true);
    if (Date.now() > deadline) throw new Error(`${id} not in ${dead} after ${seconds} s (${deliveries} deliveries)`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function main() {
  const connection = await amqp.connect(server);
  connection.on('error', () => undefined);
  try {
    const channel = await connection.createConfirmChannel();
    if (mode === 'backlog') await backlog(channel, Number(args[0]), args[1], args[2]);
    else if (mode === 'poison') await poison(channel, args[0], Number(args[1]));
    else throw new Error(`unknown mode ${mode}`);
  } finally {
    await connection.close().catch(() => undefined);
  }
}

main().catch((err) => {
  console.error(String(err && err.message || err));
  process.exit(1);
});
