/**
 * A private RabbitMQ node for tests: its own node name, ports, data, logs, config and Erlang
 * cookie, all under the run dir; a random (non-guest) user; listening on 127.0.0.1 only. It never
 * touches a system broker or a default port.
 *
 * epmd: an Erlang node normally registers with the port mapper daemon, which it starts itself as
 * a daemon that outlives the node (and escapes our process group). We avoid epmd entirely: the
 * node gets `-erl_epmd_port <dist port>` (OTP >= 23: the distribution port is fixed, no lookup
 * needed), `-start_epmd false`, and a 10-line epmd module (compiled with erlc at create time)
 * whose names/1 reports "no other nodes" instead of failing, which RabbitMQ's boot-time
 * duplicate-node check needs. If that ever fails to boot on another Erlang/RabbitMQ version, the
 * instance falls back to a private epmd that we run in the foreground on a free port and stop
 * with the node. Either way ERL_EPMD_PORT points at a private port, never 4369.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { promisify } from 'node:util';
import * as amqp from 'amqplib';
import {
  ManagedProcess,
  StopWaiting,
  cleanEnv,
  errorMessage,
  freePort,
  uniqueName,
  waitFor,
} from './processes';
import { registerInstance, unregisterInstance } from './registry';

const execFileAsync = promisify(execFile);

export interface AmqpConnectionConfig {
  host: string;
  port: number;
  user: string;
  password: string;
  vhost: string;
}

export type EpmdMode = 'none' | 'private';

export interface RabbitCreateOptions {
  /** Parent directory; the instance lives in a fresh subdirectory of it. */
  runDir: string;
  /** Label for directory, node name, logs and pid records (default: unique 'rmq_...'). */
  name?: string;
  /** 'none' (default; or env TEST_RABBIT_EPMD): no epmd at all. 'private': own foreground epmd. */
  epmd?: EpmdMode;
}

const START_TIMEOUT_MS = 90_000;
const STOP_TIMEOUT_MS = 60_000;

/** The real start script; /usr/sbin/rabbitmq-server is a wrapper that su's to `rabbitmq`. */
export function rabbitmqServerScript(): string {
  const candidates = [process.env.RABBITMQ_SERVER_SCRIPT, '/usr/lib/rabbitmq/bin/rabbitmq-server'];
  for (const c of candidates) {
    if (c !== undefined && c !== '' && fs.existsSync(c)) return c;
  }
  throw new Error('RabbitMQ not found (/usr/lib/rabbitmq/bin/rabbitmq-server); run scripts/test.sh to install it');
}

// Name resolution without epmd: every node listens on the port given by -erl_epmd_port, so
// lookups need no daemon; names/1 answers "no nodes" so RabbitMQ's duplicate-node check passes.
const EPMD_MODULE = `-module(harness_epmd).
-export([start_link/0, register_node/2, register_node/3, port_please/2, port_please/3,
         names/0, names/1, address_please/3, listen_port_please/2]).
start_link() -> erl_epmd:start_link().
register_node(Name, Port) -> erl_epmd:register_node(Name, Port).
register_node(Name, Port, Family) -> erl_epmd:register_node(Name, Port, Family).
port_please(Name, Host) -> erl_epmd:port_please(Name, Host).
port_please(Name, Host, Timeout) -> erl_epmd:port_please(Name, Host, Timeout).
names() -> {ok, []}.
names(_Host) -> {ok, []}.
address_please(Name, Host, Family) -> erl_epmd:address_please(Name, Host, Family).
listen_port_please(Name, Host) -> erl_epmd:listen_port_please(Name, Host).
`;

function findErlc(): string {
  for (const c of ['/usr/bin/erlc', '/usr/lib/erlang/bin/erlc', '/usr/local/bin/erlc']) {
    if (fs.existsSync(c)) return c;
  }
  return 'erlc';
}

function findEpmd(): string {
  for (const c of ['/usr/bin/epmd', '/usr/lib/erlang/bin/epmd']) {
    if (fs.existsSync(c)) return c;
  }
  return 'epmd';
}

function tcpReachable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export class RabbitInstance {
  readonly name: string;
  readonly host = '127.0.0.1';
  /** AMQP port. */
  readonly port: number;
  /** The management plugin's HTTP API (users and permissions), on 127.0.0.1. */
  readonly managementPort: number;
  /** Erlang distribution port. */
  readonly distPort: number;
  /** Private ERL_EPMD_PORT (an epmd only listens there in 'private' mode). */
  readonly epmdPort: number;
  /** e.g. rmq_xxx@localhost */
  readonly nodeName: string;
  readonly user: string;
  readonly password: string;
  readonly vhost = '/';
  readonly dir: string;
  /** stdout/stderr of rabbitmq-server; RabbitMQ's own log is in `${dir}/log`. */
  readonly logFile: string;
  private epmdMode: EpmdMode;
  private readonly runDir: string;
  private proc: ManagedProcess | undefined;
  private epmdProc: ManagedProcess | undefined;
  private destroyed = false;

  private constructor(fields: {
    name: string;
    runDir: string;
    dir: string;
    port: number;
    managementPort: number;
    distPort: number;
    epmdPort: number;
    epmdMode: EpmdMode;
  }) {
    this.name = fields.name;
    this.runDir = fields.runDir;
    this.dir = fields.dir;
    this.port = fields.port;
    this.managementPort = fields.managementPort;
    this.distPort = fields.distPort;
    this.epmdPort = fields.epmdPort;
    this.epmdMode = fields.epmdMode;
    this.nodeName = `${fields.name}@localhost`;
    this.user = `harness_${randomBytes(4).toString('hex')}`;
    this.password = randomBytes(18).toString('hex');
    this.logFile = path.join(fields.dir, 'rabbitmq-server.out');
  }

  /** Prepares a node directory and config under `runDir`. It is not started: call start(). */
  static async create(options: RabbitCreateOptions): Promise<RabbitInstance> {
    const script = rabbitmqServerScript();
    const name = options.name ?? uniqueName('rmq');
    const dir = path.join(options.runDir, name);
    if (/\s/.test(dir)) throw new Error(`RabbitInstance: path must not contain whitespace: ${dir}`);
    fs.mkdirSync(dir, { recursive: false, mode: 0o700 });
    const envMode = process.env.TEST_RABBIT_EPMD;
    const instance = new RabbitInstance({
      name,
      runDir: options.runDir,
      dir,
      port: await freePort(),
      managementPort: await freePort(),
      distPort: await freePort(),
      epmdPort: await freePort(),
      epmdMode: options.epmd ?? (envMode === 'private' ? 'private' : 'none'),
    });
    registerInstance(instance);
    try {
      await instance.prepare(script);
    } catch (err) {
      await instance.destroy();
      throw err;
    }
    return instance;
  }

  private script = '';

  private async prepare(script: string): Promise<void> {
    this.script = script;
    for (const sub of ['home', 'mnesia', 'log', 'ebin']) fs.mkdirSync(path.join(this.dir, sub));
    fs.writeFileSync(
      path.join(this.dir, 'rabbitmq.conf'),
      [
        `listeners.tcp.default = 127.0.0.1:${this.port}`,
        // The HTTP API creates the split users of each suite (createUser), as provisioning does
        // with rabbitmqctl: the CLI would need the Erlang distribution this node hides.
        `management.tcp.ip = 127.0.0.1`,
        `management.tcp.port = ${this.managementPort}`,
        `default_user = ${this.user}`,
        `default_pass = ${this.password}`,
        'default_vhost = /',
        // The default user may connect from anywhere (apps use 127.0.0.1, which is loopback
        // anyway; this also drops the special-casing of guest).
        'loopback_users = none',
        // A nearly full /tmp on a CI box must not block publishers with a disk alarm.
        'disk_free_limit.absolute = 1MB',
        'log.console = false',
        'log.file.level = info',
        '',
      ].join('\n'),
    );
    fs.writeFileSync(path.join(this.dir, 'enabled_plugins'), '[rabbitmq_management].\n');
    // Shadows /etc/rabbitmq/rabbitmq-env.conf, which belongs to the system broker.
    fs.writeFileSync(path.join(this.dir, 'rabbitmq-env.conf'), '');
    // The cookie only guards distribution, which nothing else uses; a fixed random one per node.
    fs.writeFileSync(path.join(this.dir, 'home', '.erlang.cookie'), randomBytes(16).toString('hex').toUpperCase(), {
      mode: 0o400,
    });
    if (this.epmdMode === 'none') await this.compileEpmdModule();
  }

  private async compileEpmdModule(): Promise<void> {
    const src = path.join(this.dir, 'ebin', 'harness_epmd.erl');
    fs.writeFileSync(src, EPMD_MODULE);
    try {
      await execFileAsync(findErlc(), ['-o', path.join(this.dir, 'ebin'), src], {
        env: cleanEnv({ HOME: path.join(this.dir, 'home') }),
      });
    } catch (err) {
      const e = err as { stderr?: string };
      throw new Error(`erlc failed: ${errorMessage(err)} ${e.stderr ?? ''}`);
    }
  }

  private env(): NodeJS.ProcessEnv {
    const erlArgs = ['-kernel', 'inet_dist_use_interface', '{127,0,0,1}'];
    if (this.epmdMode === 'none') {
      erlArgs.push('-pa', path.join(this.dir, 'ebin'), '-epmd_module', 'harness_epmd', '-erl_epmd_port', String(this.distPort));
    }
    return cleanEnv({
      HOME: path.join(this.dir, 'home'),
      LANG: 'C.UTF-8',
      RABBITMQ_NODENAME: this.nodeName,
      RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
      RABBITMQ_NODE_PORT: String(this.port),
      RABBITMQ_DIST_PORT: String(this.distPort),
      ERL_EPMD_PORT: String(this.epmdPort),
      ERL_EPMD_ADDRESS: '127.0.0.1',
      // Never spawn an epmd daemon (it would outlive the node outside our process group).
      ERL_FLAGS: '-start_epmd false',
      RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: erlArgs.join(' '),
      RABBITMQ_MNESIA_BASE: path.join(this.dir, 'mnesia'),
      RABBITMQ_LOG_BASE: path.join(this.dir, 'log'),
      RABBITMQ_CONFIG_FILE: path.join(this.dir, 'rabbitmq.conf'),
      RABBITMQ_ADVANCED_CONFIG_FILE: path.join(this.dir, 'advanced.config'),
      RABBITMQ_ENABLED_PLUGINS_FILE: path.join(this.dir, 'enabled_plugins'),
      RABBITMQ_CONF_ENV_FILE: path.join(this.dir, 'rabbitmq-env.conf'),
      RABBITMQ_PID_FILE: path.join(this.dir, 'rabbitmq.pid'),
    });
  }

  /** Starts the node; resolves once an AMQP connection with the instance's credentials works. */
  async start(): Promise<void> {
    if (this.destroyed) throw new Error(`${this.name} was destroyed`);
    if (this.isRunning()) return;
    try {
      await this.startOnce();
    } catch (err) {
      // Another Erlang/RabbitMQ may not accept the epmd-less setup: retry once with an epmd.
      if (this.epmdMode === 'none' && /epmd/i.test(errorMessage(err))) {
        this.epmdMode = 'private';
        process.stderr.write(`[harness] ${this.name}: epmd-less boot failed, retrying with a private epmd\n`);
        await this.startOnce();
        return;
      }
      throw err;
    }
  }

  private async startOnce(): Promise<void> {
    if (this.epmdMode === 'private') await this.startEpmd();
    const proc = new ManagedProcess({
      name: this.name,
      command: this.script,
      env: this.env(),
      cwd: this.dir,
      runDir: this.runDir,
      logFile: this.logFile,
    });
    this.proc = proc;
    try {
      await waitFor(
        async () => {
          if (!proc.running) {
            throw new StopWaiting(`rabbitmq ${this.name} exited during start (${JSON.stringify(proc.exit)})`);
          }
          const connection = await amqp.connect(this.url(), { timeout: 2_000 });
          await connection.close();
          return true;
        },
        { timeoutMs: START_TIMEOUT_MS, intervalMs: 200, description: `rabbitmq ${this.name} to accept AMQP connections` },
      );
    } catch (err) {
      await proc.kill();
      this.proc = undefined;
      await this.stopEpmd();
      throw new Error(`${errorMessage(err)}\n--- ${this.logFile} ---\n${proc.logTail(60)}`);
    }
  }

  private async startEpmd(): Promise<void> {
    if (this.epmdProc?.running === true) return;
    // Foreground (no -daemon): it stays our child, in its own tracked group.
    const epmd = new ManagedProcess({
      name: `${this.name}_epmd`,
      command: findEpmd(),
      args: ['-port', String(this.epmdPort), '-address', '127.0.0.1'],
      env: cleanEnv({ HOME: path.join(this.dir, 'home') }),
      cwd: this.dir,
      runDir: this.runDir,
      logFile: path.join(this.dir, 'epmd.out'),
    });
    this.epmdProc = epmd;
    await waitFor(
      async () => {
        if (!epmd.running) throw new StopWaiting(`epmd for ${this.name} exited: ${epmd.logTail()}`);
        return tcpReachable(this.epmdPort);
      },
      { timeoutMs: 10_000, intervalMs: 50, description: `epmd for ${this.name}` },
    );
  }

  private async stopEpmd(): Promise<void> {
    const epmd = this.epmdProc;
    this.epmdProc = undefined;
    if (epmd !== undefined) await epmd.stop('SIGTERM', 5_000);
  }

  /**
   * Graceful stop: SIGTERM to the node's process group; RabbitMQ shuts down cleanly, so durable
   * queues and persistent messages are there on the next start(). Waits for the exit.
   */
  async stop(): Promise<void> {
    const proc = this.proc;
    if (proc !== undefined) {
      const info = await proc.stop('SIGTERM', STOP_TIMEOUT_MS);
      this.proc = undefined;
      if (info.signal === 'SIGKILL') {
        throw new Error(`rabbitmq ${this.name} did not stop within ${STOP_TIMEOUT_MS} ms; killed it`);
      }
    }
    await this.stopEpmd();
  }

  /** Crash: SIGKILL the whole process group (sh wrapper, beam, helpers). */
  async kill(): Promise<void> {
    const proc = this.proc;
    if (proc !== undefined) await proc.kill();
    this.proc = undefined;
    await this.stopEpmd();
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  isRunning(): boolean {
    return this.proc !== undefined && this.proc.running;
  }

  /** amqp://user:pass@127.0.0.1:port/%2F */
  url(): string {
    const u = encodeURIComponent(this.user);
    const p = encodeURIComponent(this.password);
    return `amqp://${u}:${p}@${this.host}:${this.port}/${encodeURIComponent(this.vhost)}`;
  }

  connectionConfig(): AmqpConnectionConfig {
    return { host: this.host, port: this.port, user: this.user, password: this.password, vhost: this.vhost };
  }

  /**
   * Creates (or updates) a user with a password and these permissions on the vhost, and no
   * tags (no management access): as provisioning creates the gateway's and the worker's users.
   */
  async createUser(user: string, password: string, permissions: { configure: string; write: string; read: string }): Promise<AmqpConnectionConfig> {
    const vhost = encodeURIComponent(this.vhost);
    await this.management('PUT', `/api/users/${encodeURIComponent(user)}`, { password, tags: '' });
    await this.management('PUT', `/api/permissions/${vhost}/${encodeURIComponent(user)}`, permissions);
    return { host: this.host, port: this.port, user, password, vhost: this.vhost };
  }

  private async management(method: string, apiPath: string, body: unknown): Promise<void> {
    const auth = Buffer.from(`${this.user}:${this.password}`).toString('base64');
    let last = '';
    // The HTTP API may come up a moment after AMQP does.
    for (let attempt = 0; attempt < 50; attempt++) {
      try {
        const res = await fetch(`http://127.0.0.1:${this.managementPort}${apiPath}`, {
          method,
          headers: { authorization: `Basic ${auth}`, 'content-type': 'application/json' },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(5_000),
        });
        if (res.ok) return;
        last = `${res.status} ${await res.text()}`;
        if (res.status < 500) break;
      } catch (err) {
        last = errorMessage(err);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`RabbitMQ management ${method} ${apiPath} failed: ${last}`);
  }

  /** RabbitMQ's own log file (boot, connections, shutdown). */
  get serverLogFile(): string {
    return path.join(this.dir, 'log', `${this.nodeName}.log`);
  }

  /** Stops the node (killing it if a clean stop fails) and removes its directory. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    try {
      await this.stop();
    } catch {
      await this.kill().catch(() => undefined);
    } finally {
      unregisterInstance(this);
      if (process.env.TEST_KEEP_RUN_DIR !== '1') fs.rmSync(this.dir, { recursive: true, force: true });
    }
  }
}
