/**
 * Process helpers for the test harness.
 *
 * Every long-lived process the harness starts (PostgreSQL, RabbitMQ, the services under test) is
 * spawned detached, i.e. as the leader of its own process group, and recorded as a file
 * `${runDir}/pids/<pid>` holding "<starttime> <kind> <name>". scripts/test.sh reads those files
 * on exit (also after Ctrl-C or a crash of mocha) and SIGKILLs what is still alive, so nothing
 * outlives a test run even when the harness never got to clean up. The start time (field 22 of
 * /proc/<pid>/stat) lets the shell skip a pid the kernel has since handed to another process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface WaitForOptions {
  /** Give up after this long (default 10 000 ms). */
  timeoutMs?: number;
  /** Pause between attempts (default 100 ms). */
  intervalMs?: number;
  /** Named in the timeout error. */
  description?: string;
}

/** Thrown from a waitFor callback to give up at once (e.g. the process being waited for died). */
export class StopWaiting extends Error {}

/**
 * Polls `fn` until it returns a value other than undefined, null or false, and resolves with it.
 * A throwing `fn` counts as "not yet" (its last error is reported if the wait times out), except
 * for StopWaiting, which is rethrown at once. Always bounded: rejects after `timeoutMs`.
 */
export async function waitFor<T>(
  fn: () => T | Promise<T>,
  options: WaitForOptions = {},
): Promise<Exclude<T, undefined | null | false>> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const intervalMs = options.intervalMs ?? 100;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  const what = options.description ?? 'condition';
  for (;;) {
    try {
      // One attempt that hangs (a connection that never answers) must not outlive the deadline.
      const value = await withDeadline(Promise.resolve().then(fn), deadline, what);
      if (value !== undefined && value !== null && value !== false) {
        return value as Exclude<T, undefined | null | false>;
      }
    } catch (err) {
      if (err instanceof StopWaiting) throw err;
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const last = lastError === undefined ? '' : `; last error: ${errorMessage(lastError)}`;
      throw new Error(`waitFor(${what}) timed out after ${timeoutMs} ms${last}`);
    }
    await sleep(Math.min(intervalMs, Math.max(0, deadline - Date.now())));
  }
}

function withDeadline<T>(promise: Promise<T>, deadline: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`attempt still pending at the deadline of waitFor(${what})`)),
      Math.max(0, deadline - Date.now()),
    );
  });
  promise.catch(() => undefined); // a late rejection after the deadline is not "unhandled"
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

// Ports handed out in this process, so that two instances created back to back never share one.
const handedOutPorts = new Set<number>();

// Default ports of the services on this machine and of the system's own PostgreSQL/RabbitMQ/epmd:
// never handed out, even when free, so a test can never be confused with (or collide with) them.
const RESERVED_PORTS = new Set([
  3000, 4369, 5000, 5432, 5672, 8000, 8080, 8090, 8443, 9090, 15672, 25672, 27017, 28017,
]);

function tryBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen({ host: '127.0.0.1', port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** Lowest port of the kernel's ephemeral range (outgoing connections take their ports there). */
function ephemeralRangeStart(): number {
  try {
    const [lo] = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/);
    const n = Number(lo);
    return Number.isInteger(n) && n > 1024 ? n : 32768;
  } catch {
    return 32768;
  }
}

/**
 * A TCP port on 127.0.0.1 that is free now. Chosen at random BELOW the kernel's ephemeral range
 * (normally 20000-32767): a stopped server's port cannot then be taken meanwhile as the local
 * port of some outgoing connection, and concurrent test runs rarely pick the same one. Never a
 * well-known default port (5432, 5672, 4369, 25672, the services' ports, ...).
 */
export async function freePort(): Promise<number> {
  const lo = 20_000;
  const hi = Math.min(ephemeralRangeStart(), 32_768) - 1;
  if (hi - lo >= 1_000) {
    for (let attempt = 0; attempt < 200; attempt++) {
      const port = lo + randomInt(hi - lo + 1);
      if (RESERVED_PORTS.has(port) || handedOutPorts.has(port)) continue;
      if (await tryBind(port)) {
        handedOutPorts.add(port);
        return port;
      }
    }
  }
  // Unusual port range configuration: let the kernel choose.
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = net.createServer();
      server.unref();
      server.once('error', reject);
      server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
        const address = server.address();
        const p = typeof address === 'object' && address !== null ? address.port : 0;
        server.close(() => resolve(p));
      });
    });
    if (port > 0 && !RESERVED_PORTS.has(port) && !handedOutPorts.has(port)) {
      handedOutPorts.add(port);
      return port;
    }
  }
  throw new Error('freePort: could not find an unused port');
}

let nameCounter = 0;

/**
 * A name unique within the run and across concurrent runs, made of [a-z0-9_] only so that it is
 * valid unquoted as a PostgreSQL identifier, a RabbitMQ node/queue name and a file name.
 */
export function uniqueName(prefix: string): string {
  const clean = prefix.toLowerCase().replace(/[^a-z0-9_]/g, '_') || 'x';
  nameCounter += 1;
  const suffix = `${process.pid.toString(36)}${nameCounter.toString(36)}${randomBytes(3).toString('hex')}`;
  return `${clean.slice(0, 40)}_${suffix}`;
}

/** Field 22 of /proc/<pid>/stat (start time in clock ticks), or undefined if the pid is gone. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may contain spaces: parse after it.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19];
  } catch {
    return undefined;
  }
}

/** Parent pid of `pid` from /proc, or undefined if the pid is gone. */
export function parentPid(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[1]);
  } catch {
    return undefined;
  }
}

/** Direct children of `pid` (scan of /proc; fine for the few hundred processes of a test box). */
export function childPids(pid: number): number[] {
  const children: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const child = Number(entry);
    if (parentPid(child) === pid) children.push(child);
  }
  return children;
}

/** Whether the process exists (a zombie counts as gone). */
export function pidAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Sends a signal, ignoring "no such process". Negative pid = process group. */
export function signalPid(pid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}

/** Records `pid` under `${runDir}/pids` for scripts/test.sh's safety net. */
export function trackPid(runDir: string, pid: number, kind: 'group' | 'pid', name: string): void {
  const dir = path.join(runDir, 'pids');
  fs.mkdirSync(dir, { recursive: true });
  const start = processStartTime(pid) ?? '0';
  fs.writeFileSync(path.join(dir, String(pid)), `${start} ${kind} ${name.replace(/\s+/g, '_')}\n`);
}

export function untrackPid(runDir: string, pid: number): void {
  fs.rmSync(path.join(runDir, 'pids', String(pid)), { force: true });
}

export interface SpawnTrackedOptions {
  /** Label used in logs and pid records. */
  name: string;
  command: string;
  args?: string[];
  /** The complete environment of the child (nothing is inherited implicitly). */
  env: NodeJS.ProcessEnv;
  cwd?: string;
  runDir: string;
  /** stdout and stderr are appended here. */
  logFile: string;
}

/**
 * A process started by the harness as the leader of its own process group. Signals from stop()
 * and kill() go to the whole group (pid = pgid) so helpers it forks go down with it.
 */
export class ManagedProcess {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  private readonly runDir: string;
  private readonly child: ChildProcess;
  private exitInfo: ExitInfo | undefined;
  private readonly exitPromise: Promise<ExitInfo>;

  constructor(options: SpawnTrackedOptions) {
    this.name = options.name;
    this.logFile = options.logFile;
    this.runDir = options.runDir;
    fs.mkdirSync(path.dirname(options.logFile), { recursive: true });
    const fd = fs.openSync(options.logFile, 'a');
    try {
      // detached: own session and process group, so Ctrl-C on the terminal does not reach it and
      // a group signal reaches all of its helpers.
      this.child = spawn(options.command, options.args ?? [], {
        cwd: options.cwd,
        env: options.env,
        detached: true,
        stdio: ['ignore', fd, fd],
      });
    } finally {
      fs.closeSync(fd);
    }
    // A failed spawn (ENOENT, EACCES) is reported as an 'error' event: never let it go unhandled.
    this.child.on('error', () => undefined);
    if (this.child.pid === undefined) {
      throw new Error(`could not spawn ${options.command} for ${options.name} (see ${options.logFile})`);
    }
    this.pid = this.child.pid;
    trackPid(this.runDir, this.pid, 'group', this.name);
    liveProcesses.add(this);
    this.exitPromise = new Promise<ExitInfo>((resolve) => {
      const done = (info: ExitInfo): void => {
        if (this.exitInfo !== undefined) return;
        this.exitInfo = info;
        liveProcesses.delete(this);
        // Members of the group may outlive the leader; only forget the record once they are gone.
        if (!groupAlive(this.pid)) untrackPid(this.runDir, this.pid);
        resolve(info);
      };
      this.child.once('exit', (code, signal) => done({ code, signal }));
      this.child.once('error', () => done({ code: null, signal: null }));
    });
  }

  /** True until the leader has exited. */
  get running(): boolean {
    return this.exitInfo === undefined;
  }

  get exit(): ExitInfo | undefined {
    return this.exitInfo;
  }

  /** Resolves when the leader exits; rejects after `timeoutMs` if given. */
  waitExit(timeoutMs?: number): Promise<ExitInfo> {
    if (timeoutMs === undefined) return this.exitPromise;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${this.name} (pid ${this.pid}) did not exit within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    return Promise.race([this.exitPromise, timeout]).finally(() => clearTimeout(timer));
  }

  /** Sends `signal` to the whole process group. */
  signalGroup(signal: NodeJS.Signals): void {
    signalPid(-this.pid, signal);
  }

  /**
   * Sends `signal` (default SIGTERM) to the group and waits for the leader to exit; after
   * `timeoutMs` (default 30 s) it escalates to SIGKILL. Resolves with how the leader ended.
   */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 30_000): Promise<ExitInfo> {
    if (!this.running) {
      await this.waitGroupGone(5_000);
      return this.exitPromise;
    }
    this.signalGroup(signal);
    try {
      await this.waitExit(timeoutMs);
    } catch {
      this.signalGroup('SIGKILL');
    }
    const info = await this.exitPromise;
    await this.waitGroupGone(timeoutMs);
    return info;
  }

  /** SIGKILLs the whole group and waits until it is gone. */
  async kill(): Promise<ExitInfo> {
    this.signalGroup('SIGKILL');
    const info = await this.exitPromise;
    await this.waitGroupGone(10_000);
    return info;
  }

  /** The log file's content so far ('' if it is gone). */
  logs(): string {
    try {
      return fs.readFileSync(this.logFile, 'utf8');
    } catch {
      return '';
    }
  }

  /** The last `lines` lines of the log, for error messages. */
  logTail(lines = 40): string {
    return this.logs().split('\n').slice(-lines).join('\n');
  }

  private async waitGroupGone(timeoutMs: number): Promise<void> {
    try {
      await waitFor(() => !groupAlive(this.pid), {
        timeoutMs,
        intervalMs: 50,
        description: `process group ${this.pid} (${this.name}) to exit`,
      });
    } catch {
      signalPid(-this.pid, 'SIGKILL');
      await waitFor(() => !groupAlive(this.pid), { timeoutMs: 5_000, intervalMs: 50 });
    }
    untrackPid(this.runDir, this.pid);
  }
}

/** Whether any process is left in process group `pgid`. */
export function groupAlive(pgid: number): boolean {
  return signalPid(-pgid, 0);
}

// Every ManagedProcess not yet exited; killed synchronously if the node process exits regardless
// (mocha's --exit, an uncaught error), as a first line of defence before test.sh's trap.
const liveProcesses = new Set<ManagedProcess>();

export function killAllProcessesSync(): void {
  for (const p of liveProcesses) signalPid(-p.pid, 'SIGKILL');
}

process.once('exit', killAllProcessesSync);

/** Environment without variables that would point a child at another broker or database. */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(RABBITMQ_|ERL_|PG[A-Z]*$)/.test(key)) continue;
    env[key] = value;
  }
  return { ...env, ...extra };
}

export interface StartServiceOptions {
  /** Label for the log file and pid record, e.g. 'inventory'. */
  name: string;
  /** Entry point: a .js file, or a .ts file (run with `--import tsx`). */
  script: string;
  /** Added to (and overriding) the environment of the test process. */
  env?: Record<string, string | undefined>;
  runDir: string;
  /** If given, start resolves once this URL answers with an HTTP status below 500. */
  readyUrl?: string;
  /** Default 20 000 ms. */
  readyTimeoutMs?: number;
  args?: string[];
  /** Default: the repository root (the current directory of the test run). */
  cwd?: string;
  /** Extra node options, e.g. ['--enable-source-maps']. */
  nodeArgs?: string[];
}

export interface ServiceProcess {
  readonly name: string;
  readonly pid: number;
  /** stdout + stderr of the service. */
  readonly logFile: string;
  /** True until the process has exited. */
  readonly running: boolean;
  /** Signal (default SIGTERM) to the group, wait for exit (SIGKILL after timeoutMs, default 30 s). */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<ExitInfo>;
  /** SIGKILL, wait for exit. */
  kill(): Promise<ExitInfo>;
  waitExit(timeoutMs?: number): Promise<ExitInfo>;
  /** The log so far. */
  logs(): string;
}

// Services started by startService and not yet exited.
const liveServices = new Set<ManagedProcess>();

/** SIGKILLs every service a suite left running and waits for them (global teardown). */
export async function killAllServices(): Promise<void> {
  await Promise.all([...liveServices].map((p) => p.kill()));
}

/** Starts a Node service as a tracked, detached process; waits for readyUrl if given. */
export async function startService(options: StartServiceOptions): Promise<ServiceProcess> {
  const logFile = path.join(options.runDir, 'logs', `${uniqueName(options.name)}.log`);
  const tsArgs = /\.[cm]?ts$/.test(options.script) ? ['--import', 'tsx'] : [];
  const proc = new ManagedProcess({
    name: options.name,
    command: process.execPath,
    args: [...(options.nodeArgs ?? []), ...tsArgs, options.script, ...(options.args ?? [])],
    env: { ...process.env, ...options.env },
    cwd: options.cwd ?? process.cwd(),
    runDir: options.runDir,
    logFile,
  });
  liveServices.add(proc);
  void proc.waitExit().then(() => liveServices.delete(proc));
  const readyUrl = options.readyUrl;
  if (readyUrl !== undefined) {
    try {
      await waitFor(
        async () => {
          if (!proc.running) {
            throw new StopWaiting(`${options.name} exited (${JSON.stringify(proc.exit)}) before ${readyUrl} answered`);
          }
          const res = await fetch(readyUrl, { signal: AbortSignal.timeout(2_000) });
          await res.arrayBuffer();
          return res.status < 500;
        },
        { timeoutMs: options.readyTimeoutMs ?? 20_000, intervalMs: 100, description: `${options.name} at ${readyUrl}` },
      );
    } catch (err) {
      if (proc.running) await proc.kill();
      throw new Error(`${errorMessage(err)}\n--- ${options.name} log (${logFile}) ---\n${proc.logTail()}`);
    }
  }
  return proc;
}
