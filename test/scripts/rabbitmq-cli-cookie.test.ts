/*
 * scripts/lib/rabbitmq.sh runs RabbitMQ's CLI tools and server as the rabbitmq user without
 * RABBITMQ_ERLANG_COOKIE in their environment. The scripts export every `.env` variable, and
 * the CLI takes that variable over the node's cookie file: with it, `npm start` failed against any
 * broker started without it ("Erlang distribution failed", then "cannot list users"). Run with
 * fakes of runuser, getent, rabbitmqctl and rabbitmq-queues first on PATH that only report the
 * environment they were given: no broker, no system user and no system file is touched.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { runDir, uniqueName } from '../harness/fixtures';

const ROOT = path.resolve(__dirname, '..', '..');

const FAKES: Record<string, string> = {
  // runuser -u USER -- CMD...: runs CMD (as this user; the real one switches users).
  runuser: 'while [ "$#" -gt 0 ] && [ "$1" != -- ]; do shift; done; shift; exec "$@"',
  getent: 'printf "rabbitmq:x:999:999::%s:/usr/sbin/nologin\\n" "$FAKE_HOME"',
  rabbitmqctl: 'printf "rabbitmqctl cookie=%s home=%s pwd=%s args=%s\\n" "${RABBITMQ_ERLANG_COOKIE-unset}" "$HOME" "$PWD" "$*"',
  'rabbitmq-queues': 'printf "rabbitmq-queues cookie=%s home=%s args=%s\\n" "${RABBITMQ_ERLANG_COOKIE-unset}" "$HOME" "$*"',
};

function fakeBin(): { bin: string; home: string } {
  const dir = path.join(runDir(), uniqueName('rmq-fakes'));
  const bin = path.join(dir, 'bin');
  const home = path.join(dir, 'home');
  fs.mkdirSync(bin, { recursive: true });
  fs.mkdirSync(home);
  for (const [name, body] of Object.entries(FAKES)) {
    fs.writeFileSync(path.join(bin, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  }
  return { bin, home };
}

/** Sources common.sh and rabbitmq.sh with `.env`'s cookie exported, then runs SCRIPT. */
function bash(script: string): Promise<string> {
  const { bin, home } = fakeBin();
  const env = {
    PATH: `${bin}:${process.env.PATH ?? ''}`,
    FAKE_HOME: home,
    RABBITMQ_ERLANG_COOKIE: 'FROMDOTENVFROMDOTENVFROMDOTENV',
  };
  const lib = path.join(ROOT, 'scripts', 'lib', 'rabbitmq.sh');
  return new Promise((resolve, reject) => {
    execFile('bash', ['-c', `set -Eeuo pipefail; source "${lib}"; ${script}`], { env, timeout: 30_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
    );
  });
}

describe('scripts/lib/rabbitmq.sh: the CLI and the server use the node cookie file, not .env\'s variable', () => {
  it('rmqctl runs rabbitmqctl as the rabbitmq user in its HOME without RABBITMQ_ERLANG_COOKIE', async () => {
    const out = await bash('rmqctl -q list_users');
    assert.match(out, /^rabbitmqctl cookie=unset home=\S+\/home pwd=\S+\/home args=-q list_users$/m);
  });

  it('rmqqueues runs rabbitmq-queues the same way', async () => {
    const out = await bash('rmqqueues grow rabbit@billing-vm-2 all');
    assert.match(out, /^rabbitmq-queues cookie=unset home=\S+\/home args=grow rabbit@billing-vm-2 all$/m);
  });

  it('rmq_as_rabbitmq (which starts rabbitmq-server -detached) clears it too, and keeps the rest of the environment', async () => {
    const out = await bash('export OTHER=kept; rmq_as_rabbitmq sh -c \'echo "cookie=${RABBITMQ_ERLANG_COOKIE-unset} other=$OTHER"\'');
    assert.equal(out.trim(), 'cookie=unset other=kept');
  });
});
