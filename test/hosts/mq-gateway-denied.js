/*
 * Run by test/hosts/run.sh on gateway-vm as the gateway's own user, from standard input:
 *   runuser -u cm-gateway -- node - /etc/crud-master/gateway.env < mq-gateway-denied.js
 * With the gateway's RabbitMQ user (RABBITMQ_GATEWAY_USER from its env file) it tries what that
 * user must not do to the billing queue, each on a channel of its own (a refusal closes the
 * channel): consume, purge, delete, declare it (not passively), declare another queue, publish
 * to the default exchange (which would reach billing_queue.dead and every other queue). One line
 * per attempt, "<what>: refused" or "<what>: ALLOWED" / "<what>: error: ..."; then the passive
 * check the gateway does need ("checkQueue: ok"). Exit 0 only when every attempt was refused
 * with ACCESS_REFUSED (403) and the passive check passed.
 */
'use strict';

const fs = require('node:fs');

const amqp = require(
  require.resolve('amqplib', { paths: ['/opt/crud-master/srcs/api-gateway', '/opt/crud-master'] }),
);

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

const env = readEnv(process.argv[2]);
const queue = env.RABBITMQ_QUEUE || 'billing_queue';
const server = {
  protocol: 'amqp',
  // RABBITMQ_HOST may list a cluster's nodes (host or host:port, comma-separated): the first one.
  hostname: env.RABBITMQ_HOST.split(',')[0].trim().replace(/:[0-9]+$/, ''),
  port: Number(env.RABBITMQ_PORT),
  username: env.RABBITMQ_GATEWAY_USER,
  password: env.RABBITMQ_GATEWAY_PASSWORD,
  vhost: env.RABBITMQ_VHOST || '/',
  heartbeat: 0,
};

/** @returns {Promise<boolean>} true when the broker refused the operation with 403 */
async function attempt(conn, what, operation, confirm = false) {
  const channel = confirm ? await conn.createConfirmChannel() : await conn.createChannel();
  let outcome;
  let channelError = '';
  // A refusal closes the channel: the broker's reason arrives as the channel's error, and the
  // operation is rejected (a pending publisher confirm only with "channel ended").
  channel.on('error', (err) => {
    channelError = String(err && err.message);
  });
  try {
    await operation(channel);
    outcome = 'ALLOWED';
  } catch (err) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    const text = `${err && err.message} ${channelError}`;
    outcome = /ACCESS_REFUSED|403/.test(text) ? 'refused' : `error: ${text}`;
  }
  await channel.close().catch(() => {});
  console.log(`${what}: ${outcome}`);
  return outcome === 'refused';
}

async function main() {
  const conn = await amqp.connect(server);
  conn.on('error', () => {});
  const results = [
    await attempt(conn, `consume ${queue}`, (ch) => ch.consume(queue, () => {}, { noAck: false })),
    await attempt(conn, `purge ${queue}`, (ch) => ch.purgeQueue(queue)),
    await attempt(conn, `delete ${queue}`, (ch) => ch.deleteQueue(queue)),
    await attempt(conn, `declare ${queue}`, (ch) => ch.assertQueue(queue, { durable: true })),
    await attempt(conn, `declare ${queue}_other`, (ch) => ch.assertQueue(`${queue}_other`)),
    await attempt(
      conn,
      `publish to the default exchange (routing key ${queue}.dead)`,
      async (ch) => {
        ch.publish('', `${queue}.dead`, Buffer.from('{}'));
        await ch.waitForConfirms();
      },
      true,
    ),
  ];
  let passive = false;
  const channel = await conn.createChannel();
  channel.on('error', () => {});
  try {
    await channel.checkQueue(queue);
    passive = true;
    console.log('checkQueue: ok');
  } catch (err) {
    console.log(`checkQueue: error: ${err.message}`);
  }
  await conn.close().catch(() => {});
  process.exitCode = results.every(Boolean) && passive ? 0 : 1;
}

main().catch((err) => {
  console.log(`error: ${err && err.message}`);
  process.exitCode = 2;
});
