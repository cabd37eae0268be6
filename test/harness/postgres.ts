/**
 * A throwaway PostgreSQL cluster for tests: its own data directory under the run dir, its own
 * port on 127.0.0.1, a superuser with a random password, and password (SCRAM) authentication
 * everywhere, so the code under test connects exactly as it does in production. It never touches
 * a system cluster or the default port.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import {
  ManagedProcess,
  StopWaiting,
  childPids,
  cleanEnv,
  errorMessage,
  freePort,
  pidAlive,
  signalPid,
  uniqueName,
  waitFor,
} from './processes';
import { registerInstance, unregisterInstance } from './registry';

const execFileAsync = promisify(execFile);

export interface PgConnectionConfig {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
}

/**
 * A database set up as provisioning sets one up: an owner role that owns it (and so its schema
 * `public`) and runs the migrations, and an app role that may only connect; migrate.js grants it
 * the rest. Both log in with a password, neither is a superuser nor may create databases or roles.
 */
export interface AppDatabase {
  database: string;
  owner: PgConnectionConfig;
  app: PgConnectionConfig;
}

export interface PostgresCreateOptions {
  /** Parent directory; the instance lives in a fresh subdirectory of it. */
  runDir: string;
  /** Label for directory, logs and pid records (default: unique 'pg_...'). */
  name?: string;
  /** Superuser name (default 'harness_admin'). Its password is always random. */
  superuser?: string;
}

const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 60_000;

let binDirPromise: Promise<string> | undefined;

/**
 * The directory holding initdb and postgres: $PG_BINDIR if set, else `pg_config --bindir` if it
 * has a server, else the highest version under /usr/lib/postgresql/<version>/bin.
 */
export function postgresBinDir(): Promise<string> {
  binDirPromise ??= (async () => {
    const hasServer = (dir: string): boolean =>
      fs.existsSync(path.join(dir, 'initdb')) && fs.existsSync(path.join(dir, 'postgres'));
    const fromEnv = process.env.PG_BINDIR;
    if (fromEnv !== undefined && fromEnv !== '') {
      if (!hasServer(fromEnv)) throw new Error(`PG_BINDIR=${fromEnv} has no initdb/postgres`);
      return fromEnv;
    }
    try {
      const { stdout } = await execFileAsync('pg_config', ['--bindir']);
      const dir = stdout.trim();
      if (hasServer(dir)) return dir;
    } catch {
      // pg_config absent (it comes with libpq-dev): fall through to the Debian layout.
    }
    const base = '/usr/lib/postgresql';
    const versions = fs.existsSync(base)
      ? fs
          .readdirSync(base)
          .filter((v) => /^\d+(\.\d+)?$/.test(v) && hasServer(path.join(base, v, 'bin')))
          .sort((a, b) => Number(b) - Number(a))
      : [];
    const best = versions[0];
    if (best === undefined) {
      throw new Error('PostgreSQL server binaries not found (pg_config --bindir, /usr/lib/postgresql/*/bin)');
    }
    return path.join(base, best, 'bin');
  })();
  return binDirPromise;
}

const isRoot = (): boolean => typeof process.getuid === 'function' && process.getuid() === 0;

/** As root, PostgreSQL refuses to run: run its programs as the `postgres` user instead. */
function asPostgresUser(command: string, args: string[]): { command: string; args: string[] } {
  return isRoot() ? { command: 'runuser', args: ['-u', 'postgres', '--', command, ...args] } : { command, args };
}

async function chownToPostgres(target: string): Promise<void> {
  if (isRoot()) await execFileAsync('chown', ['-R', 'postgres:postgres', target]);
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

function quoteLiteral(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

export class PostgresInstance {
  readonly name: string;
  readonly host = '127.0.0.1';
  readonly port: number;
  readonly user: string;
  readonly password: string;
  /** The instance's own directory (data, socket, log). */
  readonly dir: string;
  readonly dataDir: string;
  readonly socketDir: string;
  readonly logFile: string;
  private readonly runDir: string;
  private readonly binDir: string;
  private proc: ManagedProcess | undefined;
  private postmasterPid: number | undefined;
  private destroyed = false;

  private constructor(fields: {
    name: string;
    runDir: string;
    dir: string;
    port: number;
    user: string;
    password: string;
    binDir: string;
  }) {
    this.name = fields.name;
    this.runDir = fields.runDir;
    this.dir = fields.dir;
    this.dataDir = path.join(fields.dir, 'data');
    this.socketDir = path.join(fields.dir, 'socket');
    this.logFile = path.join(fields.dir, 'postgres.log');
    this.port = fields.port;
    this.user = fields.user;
    this.password = fields.password;
    this.binDir = fields.binDir;
  }

  /** Creates (initdb) a new cluster under `runDir`. It is not started: call start(). */
  static async create(options: PostgresCreateOptions): Promise<PostgresInstance> {
    const binDir = await postgresBinDir();
    const name = options.name ?? uniqueName('pg');
    const dir = path.join(options.runDir, name);
    fs.mkdirSync(dir, { recursive: false, mode: 0o700 });
    const instance = new PostgresInstance({
      name,
      runDir: options.runDir,
      dir,
      port: await freePort(),
      user: options.superuser ?? 'harness_admin',
      password: randomBytes(18).toString('hex'),
      binDir,
    });
    registerInstance(instance);
    try {
      await instance.initdb();
    } catch (err) {
      await instance.destroy();
      throw err;
    }
    return instance;
  }

  private async initdb(): Promise<void> {
    fs.mkdirSync(this.socketDir, { mode: 0o700 });
    const pwFile = path.join(this.dir, 'pwfile');
    fs.writeFileSync(pwFile, `${this.password}\n`, { mode: 0o600 });
    await chownToPostgres(this.dir);
    const { command, args } = asPostgresUser(path.join(this.binDir, 'initdb'), [
      '-D', this.dataDir,
      '-U', this.user,
      `--pwfile=${pwFile}`,
      // Password authentication for local and TCP connections: trust would hide bad credentials.
      '--auth=scram-sha-256',
      '-E', 'UTF8',
      '--no-locale',
      // Throwaway data: skipping fsync makes initdb ~10x faster.
      '--no-sync',
      '--no-instructions',
    ]);
    try {
      await execFileAsync(command, args, { env: cleanEnv({ LANG: 'C', LC_ALL: 'C' }) });
    } catch (err) {
      const e = err as { stderr?: string; stdout?: string };
      throw new Error(`initdb failed for ${this.name}: ${errorMessage(err)}\n${e.stdout ?? ''}${e.stderr ?? ''}`);
    } finally {
      fs.rmSync(pwFile, { force: true });
    }
    const settings = [
      '',
      '# test harness settings',
      `port = ${this.port}`,
      `listen_addresses = '127.0.0.1'`,
      `unix_socket_directories = ${quoteLiteral(this.socketDir)}`,
      // Durability is irrelevant for a throwaway cluster; these make writes and shutdown fast.
      'fsync = off',
      'synchronous_commit = off',
      'full_page_writes = off',
      'logging_collector = off',
      "password_encryption = 'scram-sha-256'",
      'shared_buffers = 32MB',
      'max_connections = 200',
      '',
    ].join('\n');
    fs.appendFileSync(path.join(this.dataDir, 'postgresql.conf'), settings);
  }

  /** Starts the postmaster and resolves once a password connection succeeds. No-op if running. */
  async start(): Promise<void> {
    if (this.destroyed) throw new Error(`${this.name} was destroyed`);
    if (this.isRunning()) return;
    const { command, args } = asPostgresUser(path.join(this.binDir, 'postgres'), ['-D', this.dataDir]);
    const proc = new ManagedProcess({
      name: this.name,
      command,
      args,
      env: cleanEnv({ LANG: 'C', LC_ALL: 'C' }),
      cwd: this.dir,
      runDir: this.runDir,
      logFile: this.logFile,
    });
    this.proc = proc;
    this.postmasterPid = undefined;
    try {
      await waitFor(
        async () => {
          if (!proc.running) {
            throw new StopWaiting(`postgres ${this.name} exited during start (${JSON.stringify(proc.exit)})`);
          }
          await this.ping();
          return true;
        },
        { timeoutMs: START_TIMEOUT_MS, intervalMs: 50, description: `postgres ${this.name} to accept connections` },
      );
      this.postmasterPid = this.findPostmasterPid(proc);
    } catch (err) {
      await this.kill();
      throw new Error(`${errorMessage(err)}\n--- ${this.logFile} ---\n${proc.logTail()}`);
    }
  }

  /** Fast shutdown (SIGINT: disconnect clients, checkpoint, exit); waits for the exit. */
  async stop(): Promise<void> {
    const proc = this.proc;
    if (proc === undefined) return;
    if (proc.running) {
      // Signal the postmaster itself, never the runuser wrapper: runuser answers SIGTERM/SIGINT
      // by SIGKILLing its child 2 s later, which would turn a clean stop into a crash.
      const pid = this.postmasterPid ?? this.tryFindPostmasterPid(proc);
      if (pid === undefined) {
        await this.kill();
        return;
      }
      signalPid(pid, 'SIGINT');
      try {
        await proc.waitExit(STOP_TIMEOUT_MS);
      } catch {
        await this.kill();
        throw new Error(`postgres ${this.name} did not stop within ${STOP_TIMEOUT_MS} ms; killed it`);
      }
    }
    await proc.stop('SIGKILL', 5_000); // reaps any leftover in the group and drops the pid record
    this.proc = undefined;
    this.postmasterPid = undefined;
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /**
   * Crash: SIGKILL the postmaster (and its backends, which would otherwise linger until they
   * notice, holding the shared memory that a restart needs). start() afterwards runs recovery.
   */
  async kill(): Promise<void> {
    const proc = this.proc;
    if (proc === undefined) return;
    const postmaster = proc.running ? (this.postmasterPid ?? this.tryFindPostmasterPid(proc)) : undefined;
    // Backends call setsid(), so they are not in the postmaster's process group: collect them
    // while they are still its children.
    const backends = postmaster !== undefined ? childPids(postmaster) : [];
    if (postmaster !== undefined) signalPid(postmaster, 'SIGKILL');
    for (const pid of backends) signalPid(pid, 'SIGKILL');
    await proc.kill();
    await waitFor(() => backends.every((pid) => !pidAlive(pid)), {
      timeoutMs: 10_000,
      intervalMs: 50,
      description: `backends of ${this.name} to exit`,
    });
    this.proc = undefined;
    this.postmasterPid = undefined;
  }

  /** Whether the postmaster started by start() is still running. */
  isRunning(): boolean {
    return this.proc !== undefined && this.proc.running;
  }

  connectionConfig(database = 'postgres'): PgConnectionConfig {
    return { host: this.host, port: this.port, user: this.user, password: this.password, database };
  }

  /** postgres://user:password@127.0.0.1:port/database */
  url(database = 'postgres'): string {
    const u = encodeURIComponent(this.user);
    const p = encodeURIComponent(this.password);
    return `postgres://${u}:${p}@${this.host}:${this.port}/${encodeURIComponent(database)}`;
  }

  /** Runs one statement as the superuser on a fresh connection; returns the rows. */
  async query<R extends Record<string, unknown> = Record<string, unknown>>(
    sql: string,
    params: unknown[] = [],
    database = 'postgres',
  ): Promise<R[]> {
    const client = new pg.Client({ ...this.connectionConfig(database), connectionTimeoutMillis: 5_000 });
    // A server going away mid-query emits 'error' on the client; without a listener that would
    // crash the test process instead of rejecting this call.
    client.on('error', () => undefined);
    await client.connect();
    try {
      const result = await client.query<R>(sql, params);
      return result.rows;
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /** Creates a database (default: a unique name) and returns its name. */
  async createDatabase(name: string = uniqueName('db'), owner?: string): Promise<string> {
    const ownerClause = owner === undefined ? '' : ` OWNER ${quoteIdent(owner)}`;
    await this.query(`CREATE DATABASE ${quoteIdent(name)}${ownerClause}`);
    return name;
  }

  async dropDatabase(name: string): Promise<void> {
    await this.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
  }

  /** Creates a login role with a password (not a superuser unless asked). */
  async createRole(name: string, password: string, options: { superuser?: boolean; createdb?: boolean } = {}): Promise<void> {
    const extra = `${options.superuser === true ? ' SUPERUSER' : ''}${options.createdb === true ? ' CREATEDB' : ''}`;
    await this.query(`CREATE ROLE ${quoteIdent(name)} LOGIN PASSWORD ${quoteLiteral(password)}${extra}`);
  }

  /** A new database with its own owner and app roles (AppDatabase), not yet migrated. */
  async createAppDatabase(label = 'db'): Promise<AppDatabase> {
    const database = uniqueName(label);
    const roles = { owner: `${database}_owner`, app: `${database}_app` };
    const passwords = { owner: randomBytes(12).toString('hex'), app: randomBytes(12).toString('hex') };
    for (const kind of ['owner', 'app'] as const) {
      await this.query(`CREATE ROLE ${quoteIdent(roles[kind])} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD ${quoteLiteral(passwords[kind])}`);
    }
    await this.createDatabase(database, roles.owner);
    await this.query(`REVOKE ALL ON DATABASE ${quoteIdent(database)} FROM PUBLIC`);
    await this.query(`GRANT CONNECT ON DATABASE ${quoteIdent(database)} TO ${quoteIdent(roles.app)}`);
    const at = { host: this.host, port: this.port, database };
    return {
      database,
      owner: { ...at, user: roles.owner, password: passwords.owner },
      app: { ...at, user: roles.app, password: passwords.app },
    };
  }

  /** Stops the cluster (killing it if a clean stop fails) and removes its directory. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    try {
      await this.stop();
    } catch {
      await this.kill().catch(() => undefined);
    } finally {
      unregisterInstance(this);
      // TEST_KEEP_RUN_DIR=1 keeps data and logs for a post-mortem.
      if (process.env.TEST_KEEP_RUN_DIR !== '1') fs.rmSync(this.dir, { recursive: true, force: true });
    }
  }

  private async ping(): Promise<void> {
    await this.query('SELECT 1');
  }

  private tryFindPostmasterPid(proc: ManagedProcess): number | undefined {
    try {
      return this.findPostmasterPid(proc);
    } catch {
      return undefined;
    }
  }

  /** The postmaster is our child, or (as root) the child of runuser: read it from postmaster.pid. */
  private findPostmasterPid(proc: ManagedProcess): number {
    const pidFile = fs.readFileSync(path.join(this.dataDir, 'postmaster.pid'), 'utf8');
    const pid = Number(pidFile.split('\n')[0]);
    const candidates = [proc.pid, ...childPids(proc.pid)];
    if (!Number.isInteger(pid) || !candidates.includes(pid)) {
      throw new Error(`postmaster.pid of ${this.name} names pid ${pid}, which is not ours`);
    }
    return pid;
  }
}
