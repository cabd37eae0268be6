/**
 * PM2's logs rotated by the logrotate configuration the provisioning and `npm start` install
 * (scripts/lib/pm2.sh, pm2_logrotate_install), applied here to the load stack's own PM2_HOME while
 * traffic runs: the live file is truncated in place and PM2 goes on appending to it.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { runDir, uniqueName } from '../harness/fixtures';
import type { Row } from './cases';
import { ROOT, type LoadStack } from './stack';
import { runTraffic } from './traffic';

const execFileAsync = promisify(execFile);

/** Runs pm2_logrotate_install for `pm2Home`, writing `conf`; resolves with its exit status (0: changed, 1: unchanged). */
async function install(pm2Home: string, conf: string): Promise<number> {
  try {
    await execFileAsync('bash', ['-c', 'source scripts/lib/pm2.sh && pm2_logrotate_install'], {
      cwd: ROOT,
      env: { ...process.env, PM2_HOME: pm2Home, CM_LOGROTATE_CONF: conf },
      timeout: 30_000,
    });
    return 0;
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === 1) return 1;
    throw err;
  }
}

export async function logRotationCase(stack: LoadStack, ids: number[]): Promise<Row[]> {
  const label = '(e) log rotation under traffic';
  const dir = path.join(runDir(), uniqueName('logrotate'));
  fs.mkdirSync(dir);
  const conf = path.join(dir, 'crud-master-pm2');
  const first = await install(stack.pm2Home, conf);
  const second = await install(stack.pm2Home, conf);
  const logs = path.join(stack.pm2Home, 'logs');
  const accessLog = fs.readdirSync(logs).find((f) => /gateway.*-out\.log$/.test(f));
  if (!accessLog) throw new Error(`no gateway output log in ${logs}: ${fs.readdirSync(logs).join(', ')}`);
  const live = path.join(logs, accessLog);
  const traffic = runTraffic({
    baseUrl: stack.gatewayUrl,
    connections: 4,
    durationMs: 4_000,
    maxRequests: 2_000,
    ratePerSec: 200,
    next: (i) => ({ kind: 'get', method: 'GET', path: `/api/movies/${ids[i % ids.length]}` }),
  });
  await new Promise((r) => setTimeout(r, 1_000));
  const before = fs.statSync(live).size;
  await execFileAsync('logrotate', ['--force', '--state', path.join(dir, 'state'), conf], { timeout: 30_000 });
  const rotated = fs.existsSync(`${live}.1`) ? fs.statSync(`${live}.1`).size : 0;
  const { outcomes } = await traffic;
  const after = fs.readFileSync(live);
  // Append mode: the lines after the truncation start at offset 0, not after a hole of NULs.
  const hole = after.subarray(0, Math.min(after.length, 4096)).includes(0);
  const lines = after.toString('utf8').split('\n').filter((l) => l.includes('"path"')).length;
  return [
    { figure: `${label}: pm2_logrotate_install, first run / second run`, value: `${first === 0 ? 'changed' : 'unchanged'} / ${second === 0 ? 'changed' : 'unchanged'}`, limit: 'changed / unchanged', held: first === 0 && second === 1 },
    { figure: `${label}: gateway access log rotated (${accessLog}.1 holds ${rotated.toLocaleString('en')} B of ${before.toLocaleString('en')} B)`, value: rotated >= before ? 'yes' : 'no', limit: 'yes', held: rotated >= before && before > 0 },
    { figure: `${label}: access lines PM2 wrote to the truncated file afterwards, from its start`, value: `${lines}${hole ? ' (after a hole of NULs)' : ''}`, limit: '> 0, no hole', held: lines > 0 && !hole },
    { figure: `${label}: requests not answered 200 meanwhile`, value: String(outcomes.filter((o) => o.status !== 200).length), limit: '0', held: outcomes.every((o) => o.status === 200) },
  ];
}
