import autocannon from 'autocannon';
import { CpuMeter, type CpuUse } from './memory';

export interface LoadOptions {
  url: string;
  connections: number;
  durationS: number;
  /** Run this long first and throw the numbers away (JIT, pools, caches). */
  warmupS?: number;
  method?: 'GET' | 'POST';
  body?: string;
  headers?: Record<string, string>;
  /** Each request's path, when they differ (search terms). */
  nextPath?: () => string;
  /** Processes whose CPU time to measure during the measured run (not the warm-up), by name. */
  cpu?: Record<string, () => number[]>;
}

export interface LoadResult {
  /** Successful (2xx) responses per second. */
  rps: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  non2xx: number;
  errors: number;
  cpu?: CpuUse;
}

async function once(options: LoadOptions, durationS: number): Promise<LoadResult> {
  const nextPath = options.nextPath;
  const result = await autocannon({
    url: options.url,
    connections: options.connections,
    duration: durationS,
    timeout: 10,
    method: options.method ?? 'GET',
    ...(options.body !== undefined ? { body: options.body } : {}),
    ...(options.headers ? { headers: options.headers } : {}),
    ...(nextPath ? { requests: [{ setupRequest: (req: autocannon.Request) => ({ ...req, path: nextPath() }) }] } : {}),
  });
  return {
    rps: result['2xx'] / result.duration,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    requests: result.requests.total,
    non2xx: result.non2xx,
    errors: result.errors,
  };
}

/** autocannon against one URL at a fixed concurrency, after an optional warm-up. */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  if (options.warmupS) await once(options, options.warmupS);
  const meter = options.cpu ? new CpuMeter(options.cpu) : undefined;
  const result = await once(options, options.durationS);
  return meter ? { ...result, cpu: meter.stop() } : result;
}

/** "12,345 req/s, p99 3 ms" plus any failures, for progress lines. */
export function describeLoad(result: LoadResult): string {
  const failures = result.non2xx + result.errors > 0 ? ` (${result.non2xx} non-2xx, ${result.errors} errors)` : '';
  return `${Math.round(result.rps).toLocaleString('en')} req/s, p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms${failures}`;
}

/** One result from runs of equal length: mean rate, summed counts and CPU, mean p50, worst p99. */
export function mergeLoads(results: LoadResult[]): LoadResult {
  const n = Math.max(1, results.length);
  const cpus = results.map((r) => r.cpu).filter((c): c is CpuUse => c !== undefined);
  const cpu: CpuUse | undefined =
    cpus.length === 0
      ? undefined
      : {
          groups: Object.fromEntries(Object.keys(cpus[0]!.groups).map((k) => [k, cpus.reduce((sum, c) => sum + (c.groups[k] ?? 0), 0)])),
          system: Object.fromEntries(Object.keys(cpus[0]!.groups).map((k) => [k, cpus.reduce((sum, c) => sum + (c.system?.[k] ?? 0), 0)])),
          machineBusy: cpus.reduce((sum, c) => sum + c.machineBusy, 0),
          machineTotal: cpus.reduce((sum, c) => sum + c.machineTotal, 0),
        };
  return {
    rps: results.reduce((sum, r) => sum + r.rps, 0) / n,
    p50Ms: results.reduce((sum, r) => sum + r.p50Ms, 0) / n,
    p99Ms: Math.max(...results.map((r) => r.p99Ms)),
    requests: results.reduce((sum, r) => sum + r.requests, 0),
    non2xx: results.reduce((sum, r) => sum + r.non2xx, 0),
    errors: results.reduce((sum, r) => sum + r.errors, 0),
    ...(cpu ? { cpu } : {}),
  };
}

/**
 * Runs loads in rotation (A B C A B C ...), each warmed up once, so that whatever else the machine
 * does during the run weighs on every side alike; resolves with each side merged, in order.
 */
export async function compareSet(loads: LoadOptions[], rounds = 2): Promise<LoadResult[]> {
  const slice = (o: LoadOptions): LoadOptions => ({ ...o, warmupS: 0, durationS: Math.max(1, Math.round(o.durationS / rounds)) });
  for (const load of loads) if (load.warmupS) await runLoad({ ...load, durationS: load.warmupS, warmupS: 0 });
  const results: LoadResult[][] = loads.map(() => []);
  for (let i = 0; i < rounds; i++) {
    for (const [j, load] of loads.entries()) results[j]!.push(await runLoad(slice(load)));
  }
  return results.map(mergeLoads);
}

/**
 * Runs a pair of loads in alternation (A B A B ...), each side warmed up once, so that whatever
 * else the machine does during the run weighs on both sides alike; resolves with each side merged.
 */
export async function comparePair(a: LoadOptions, b: LoadOptions, rounds = 2): Promise<[LoadResult, LoadResult]> {
  const slice = (o: LoadOptions): LoadOptions => ({ ...o, warmupS: 0, durationS: Math.max(1, Math.round(o.durationS / rounds)) });
  if (a.warmupS) await runLoad({ ...a, durationS: a.warmupS, warmupS: 0 });
  if (b.warmupS) await runLoad({ ...b, durationS: b.warmupS, warmupS: 0 });
  const ra: LoadResult[] = [];
  const rb: LoadResult[] = [];
  for (let i = 0; i < rounds; i++) {
    ra.push(await runLoad(slice(a)));
    rb.push(await runLoad(slice(b)));
  }
  return [mergeLoads(ra), mergeLoads(rb)];
}
