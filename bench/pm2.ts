/**
 * The product as deployed: the inventory and the gateway started by PM2 from the repository's
 * ecosystem.config.js, access logs on (LOG_LEVEL=info) and piped through PM2's daemon into its log
 * files, as `npm start` runs them. PM2 runs with a private PM2_HOME under the bench's run
 * directory, so it never meets a user's PM2; its daemon and apps are ended with `pm2 kill`, and
 * by PID should that fail.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort, pidAlive, signalPid, waitFor } from '../test/harness/processes';
import { ROOT, type Stack } from './stack';

const execFileAsync = promisify(execFile);
const PM2 = path.join(ROOT, 'node_modules', '.bin', 'pm2');

export interface Deployed {
  inventory: { url: string; pid: number };
  gateway: { url: string; pid: number };
  /** PM2's daemon: it reads the apps' stdout and writes the log files. */
  daemonPid: number;
  stop(): Promise<void>;
}

interface Pm2Process {
  name: string;
  pid: number;
}

export async function startDeployed(stack: Stack): Promise<Deployed> {
  const home = path.join(stack.runDir, 'pm2');
  fs.mkdirSync(home, { recursive: true });
  const inventoryPort = await freePort();
  const gatewayPort = await freePort();
  // Its own admin listener: the gateway the bench started is running beside it.
  const adminPort = await freePort();
  const env = {
    ...process.env,
    ...stack.env({
      INVENTORY_LISTEN_HOST: '127.0.0.1',
      INVENTORY_PORT: String(inventoryPort),
      GATEWAY_LISTEN_HOST: '127.0.0.1',
      GATEWAY_PORT: String(gatewayPort),
      GATEWAY_ADMIN_PORT: String(adminPort),
      INVENTORY_HOST: '127.0.0.1',
    }),
    PM2_HOME: home,
  };
  const pm2 = async (...args: string[]): Promise<string> =>
    (await execFileAsync(PM2, args, { cwd: ROOT, env, timeout: 60_000, maxBuffer: 16 << 20 })).stdout;

  const pids = new Set<number>();
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await pm2('kill').catch(() => undefined);
    for (const pid of pids) if (pidAlive(pid)) signalPid(pid, 'SIGKILL');
  };
  stack.onDestroy(stop);

  await pm2('start', path.join(ROOT, 'ecosystem.config.js'), '--only', 'inventory_app,api_gateway');
  const daemonPid = Number(fs.readFileSync(path.join(home, 'pm2.pid'), 'utf8').trim());
  pids.add(daemonPid);
  const list = JSON.parse(await pm2('jlist')) as Pm2Process[];
  const pidOf = (name: string): number => {
    const pid = list.find((p) => p.name === name)?.pid ?? 0;
    if (pid <= 0) throw new Error(`PM2 did not start ${name}`);
    pids.add(pid);
    return pid;
  };
  const deployed: Deployed = {
    inventory: { url: `http://127.0.0.1:${inventoryPort}`, pid: pidOf('inventory_app') },
    gateway: { url: `http://127.0.0.1:${gatewayPort}`, pid: pidOf('api_gateway') },
    daemonPid,
    stop,
  };
  const ready: Array<[string, string]> = [
    ['inventory-app', `${deployed.inventory.url}/health`],
    ['api-gateway', `${deployed.gateway.url}/api/movies/1`],
  ];
  for (const [app, url] of ready) {
    await waitFor(
      async () => {
        const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
        await res.arrayBuffer();
        return res.status < 500;
      },
      { timeoutMs: 60_000, intervalMs: 200, description: `${url} under PM2` },
    ).catch((err: unknown) => {
      const why = lastFailure(path.join(home, 'logs', `${app}-out.log`));
      throw new Error(`${err instanceof Error ? err.message : String(err)}${why ? `; ${app} logged: ${why}` : ''}`);
    });
  }
  return deployed;
}

/** The last error or fatal line an app wrote to its PM2 log (its message), if any. */
function lastFailure(file: string): string | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.trimEnd().split('\n').reverse()) {
    const json = line.slice(line.indexOf('{'));
    try {
      const entry = JSON.parse(json) as { level?: number; msg?: string; err?: { message?: string } };
      if ((entry.level ?? 0) >= 50) return [entry.msg, entry.err?.message].filter(Boolean).join(': ');
    } catch {
      // not a JSON line
    }
  }
  return undefined;
}
