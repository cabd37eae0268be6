/** The inventory's figures: seeding, one movie by id, title search, and the whole list. */
import { execFile } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { promisify } from 'node:util';
import { prng } from '../srcs/inventory-app/src/movies/fake-catalog';
import { likePattern } from '../srcs/inventory-app/src/movies/list-filter';
import { pgQueryLoop } from './ceilings';
import type { BenchContext } from './context';
import { describeLoad, runLoad } from './load';
import { resetPeak, RssSampler } from './memory';
import { fmt, type Row } from './report';
import { ROOT, type Stack } from './stack';

const execFileAsync = promisify(execFile);

/** `npm run seed` as a user runs it, against the bench's movies_db; returns the seconds it took. */
export async function seedMovies(stack: Stack, movies: number, log: (line: string) => void): Promise<Row> {
  const started = performance.now();
  const { stdout } = await execFileAsync(
    process.execPath,
    [path.join(ROOT, 'srcs/inventory-app/dist/seed.js'), '--movies', String(movies), '--truncate'],
    { cwd: ROOT, env: { ...process.env, ...stack.env({}) }, timeout: 600_000, maxBuffer: 1 << 20 },
  );
  const seconds = (performance.now() - started) / 1000;
  log(stdout.trim().split('\n').at(-1) ?? '');
  const target = movies >= 1_000_000 ? fmt.check(seconds < 30, '< 30 s:') : '';
  return {
    figure: `npm run seed -- --movies ${movies.toLocaleString('en')} (COPY, index rebuild, ANALYZE)`,
    value: fmt.s(seconds),
    ceiling: '',
    ratio: '',
    target,
    raw: { seconds, movies },
  };
}

/**
 * Search terms as users type them: a word of four letters or more from a random existing title
 * (so common words come up as often as they are common), or the first five letters of a longer
 * one, deduplicated. Deterministic for the seed.
 */
export async function searchTerms(ctx: BenchContext, count: number, seed = 2024): Promise<string[]> {
  const random = prng(seed);
  const client = await ctx.stack.client(ctx.stack.movies);
  try {
    const range = await client.query<{ lo: number; hi: number }>('SELECT min(id) AS lo, max(id) AS hi FROM movies');
    const { lo, hi } = range.rows[0] ?? { lo: 1, hi: 1 };
    const ids = Array.from({ length: count * 2 }, () => lo + Math.floor(random() * (hi - lo + 1)));
    const { rows } = await client.query<{ title: string }>('SELECT title FROM movies WHERE id = ANY($1::int[])', [ids]);
    const terms = new Set<string>();
    for (const { title } of rows) {
      const words = title.split(/[^A-Za-z]+/).filter((w) => w.length >= 4);
      const word = words[Math.floor(random() * words.length)];
      if (word === undefined) continue;
      terms.add((word.length >= 7 && random() < 0.5 ? word.slice(0, 5) : word).toLowerCase());
      if (terms.size >= count) break;
    }
    return [...terms];
  } finally {
    await client.end();
  }
}

const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 1 });

/** One GET on a kept-alive connection, timed; resolves with its status and X-Total-Count. */
function timedGet(url: string): Promise<{ ms: number; status: number; total: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    http
      .get(url, { agent: keepAlive, timeout: 30_000 }, (res) => {
        res.resume();
        res.on('end', () => resolve({ ms: performance.now() - t0, status: res.statusCode ?? 0, total: Number(res.headers['x-total-count'] ?? NaN) }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

/** One client, one request at a time, for `durationS` (at most `max` requests): the latency a user sees. */
async function sequentialLatency(next: () => string, durationS: number, max = 100_000): Promise<{ p50: number; p99: number; count: number }> {
  const times: number[] = [];
  const deadline = performance.now() + durationS * 1000;
  while (performance.now() < deadline && times.length < max) {
    const res = await timedGet(next());
    if (res.status !== 200) throw new Error(`search answered ${res.status}`);
    times.push(res.ms);
  }
  return { p50: percentile(times, 50), p99: percentile(times, 99), count: times.length };
}

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

/**
 * `?title=` at full size, through the gateway, for a page of 20 per term (what a search box asks
 * for). First each term once in turn (its total is counted), then one user searching term after
 * term (totals now cached per table version): the latency the target is about. Then under load
 * at the bench's concurrency. The ceilings are bare pg loops running the page query itself for
 * the same terms at the same concurrency. Last, the contract's unpaged shape for the terms with
 * under 1000 matches.
 */
export async function search(ctx: BenchContext): Promise<void> {
  const { settings, log } = ctx;
  const terms = await searchTerms(ctx, settings.mode === 'quick' ? 60 : 200);
  const pageUrl = (term: string) => `/api/movies?title=${encodeURIComponent(term)}&limit=20`;
  const cycle = (list: string[], url: (t: string) => string) => {
    let i = 0;
    return () => url(list[i++ % list.length] as string);
  };

  const cold: number[] = [];
  const totals = new Map<string, number>();
  for (const term of terms) {
    const res = await timedGet(`${ctx.gateway.url}${pageUrl(term)}`);
    if (res.status !== 200) throw new Error(`search for "${term}" answered ${res.status}`);
    cold.push(res.ms);
    totals.set(term, res.total);
  }
  const matches = [...totals.values()].sort((a, b) => a - b);
  log(
    `search: ${terms.length} terms, matches per term p50 ${percentile(matches, 50)} max ${matches.at(-1)}; ` +
      `first request each p50 ${percentile(cold, 50).toFixed(2)} ms p99 ${percentile(cold, 99).toFixed(2)} ms`,
  );

  const one = await sequentialLatency(cycle(terms, (t) => `${ctx.gateway.url}${pageUrl(t)}`), settings.durationS);
  log(`search, one client: ${one.count} requests, p50 ${one.p50.toFixed(2)} ms, p99 ${one.p99.toFixed(2)} ms`);
  const pageSql = `SELECT id, title, description FROM movies WHERE title ILIKE $1 ESCAPE '\\' ORDER BY id LIMIT 20 OFFSET 0`;
  const barePatterns = () => {
    let j = 0;
    return () => [likePattern(terms[j++ % terms.length] as string)];
  };
  const bareOne = await pgQueryLoop({ config: ctx.stack.movies, sql: pageSql, params: barePatterns(), concurrency: 1, durationS: settings.durationS });
  log(`bare pg page query, one client: p50 ${bareOne.p50Ms.toFixed(2)} ms, p99 ${bareOne.p99Ms.toFixed(2)} ms`);

  const loaded = await runLoad({
    url: ctx.gateway.url,
    connections: settings.connections,
    durationS: settings.durationS,
    warmupS: settings.warmupS,
    nextPath: cycle(terms, pageUrl),
  });
  log(`search under load: ${describeLoad(loaded)}`);
  const bareLoaded = await pgQueryLoop({
    config: ctx.stack.movies,
    sql: pageSql,
    params: barePatterns(),
    concurrency: settings.connections,
    durationS: settings.durationS,
  });
  log(`bare pg page query, ${settings.connections} clients: ${Math.round(bareLoaded.rate)} q/s, p50 ${bareLoaded.p50Ms.toFixed(2)} ms, p99 ${bareLoaded.p99Ms.toFixed(2)} ms`);

  const rare = terms.filter((t) => (totals.get(t) ?? Infinity) < 1000);
  const whole = rare.length > 0 ? await sequentialLatency(cycle(rare, (t) => `${ctx.gateway.url}/api/movies?title=${encodeURIComponent(t)}`), settings.durationS) : undefined;
  if (whole) log(`unpaged search, one client (${rare.length} terms with < 1000 matches): p50 ${whole.p50.toFixed(2)} ms, p99 ${whole.p99.toFixed(2)} ms`);

  const size = settings.movies.toLocaleString('en');
  const pair = (a: number, b: number) => `${fmt.ms(a)} / ${fmt.ms(b)}`;
  ctx.rows.push(
    {
      figure: `search ?title=&limit=20 at ${size}, one client: p50 / p99`,
      value: pair(one.p50, one.p99),
      ceiling: `bare pg page query ${pair(bareOne.p50Ms, bareOne.p99Ms)}`,
      ratio: fmt.ratio(bareOne.p99Ms / one.p99),
      target: fmt.check(one.p99 <= 20, 'p99 <= 20 ms:'),
      raw: { p50Ms: one.p50, p99Ms: one.p99, requests: one.count, bareP50Ms: bareOne.p50Ms, bareP99Ms: bareOne.p99Ms },
    },
    {
      figure: `search ?title=&limit=20 at ${size}, first request per term (counts the total): p50 / p99`,
      value: pair(percentile(cold, 50), percentile(cold, 99)),
      ceiling: '',
      ratio: '',
      target: '',
      raw: { p50Ms: percentile(cold, 50), p99Ms: percentile(cold, 99), terms: terms.length, maxMatches: matches.at(-1) },
    },
    {
      figure: `search ?title=&limit=20 at ${size}, ${settings.connections} clients: throughput, p50 / p99`,
      value: `${fmt.rate(loaded.rps, 'req/s')}, ${pair(loaded.p50Ms, loaded.p99Ms)}`,
      ceiling: `bare pg ${fmt.rate(bareLoaded.rate, 'q/s')}, ${pair(bareLoaded.p50Ms, bareLoaded.p99Ms)}`,
      ratio: fmt.ratio(loaded.rps / bareLoaded.rate),
      target: '',
      raw: { rps: loaded.rps, p50Ms: loaded.p50Ms, p99Ms: loaded.p99Ms, errors: loaded.errors + loaded.non2xx, bareRate: bareLoaded.rate },
    },
  );
  if (whole) {
    ctx.rows.push({
      figure: `search ?title= (whole list) at ${size}, one client, terms with < 1000 matches: p50 / p99`,
      value: pair(whole.p50, whole.p99),
      ceiling: '',
      ratio: '',
      target: '',
      raw: { p50Ms: whole.p50, p99Ms: whole.p99, terms: rare.length },
    });
  }
  ctx.notes.push(
    `Search terms: ${terms.length} words (or five-letter prefixes) taken from random titles, so frequent words come up as often ` +
      `as they are frequent; matches per term: median ${percentile(matches, 50).toLocaleString('en')}, largest ` +
      `${(matches.at(-1) ?? 0).toLocaleString('en')}. The first request for a term counts its total (X-Total-Count) in the same ` +
      'statement as the page; later pages and repeats take it from a per-table-version cache. Under load, latency is ' +
      'concurrency divided by throughput (a closed loop), so the one-client figure is the one the target is about.',
  );
}

/** Reads a whole response, counting bytes without keeping them. */
function download(url: string): Promise<{ seconds: number; bytes: number; complete: boolean; first: string; last: string }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = http.get(url, { agent: false, timeout: 600_000 }, (res) => {
      let bytes = 0;
      let first = '';
      let last = '';
      res.on('data', (chunk: Buffer) => {
        if (bytes === 0) first = chunk.subarray(0, 1).toString();
        bytes += chunk.length;
        last = chunk.subarray(-1).toString();
      });
      res.on('error', () => undefined);
      res.on('close', () => resolve({ seconds: (performance.now() - t0) / 1000, bytes, complete: res.complete, first, last }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url} within 600 s`)));
    req.on('error', reject);
  });
}

/** The unpaged list at full size: time directly and through the gateway, peak RSS of both services. */
export async function wholeList(ctx: BenchContext): Promise<void> {
  const { log } = ctx;
  const inventoryPid = ctx.inventory.proc.pid;
  const gatewayPid = ctx.gateway.proc.pid;

  let hwm = resetPeak(inventoryPid);
  let sampler = new RssSampler([inventoryPid]);
  const direct = await download(`${ctx.inventory.url}/api/movies`);
  const directPeak = sampler.stop(hwm).get(inventoryPid) ?? NaN;
  if (!direct.complete || direct.first !== '[' || direct.last !== ']') throw new Error('the direct whole list did not arrive complete');
  log(`whole list direct: ${(direct.bytes / 1e6).toFixed(0)} MB in ${direct.seconds.toFixed(2)} s, inventory peak ${directPeak.toFixed(0)} MB`);

  hwm = resetPeak(inventoryPid) && resetPeak(gatewayPid);
  sampler = new RssSampler([inventoryPid, gatewayPid]);
  const proxied = await download(`${ctx.gateway.url}/api/movies`);
  const peaks = sampler.stop(hwm);
  if (!proxied.complete || proxied.bytes !== direct.bytes) throw new Error('the whole list through the gateway did not arrive complete');
  const inventoryPeak = Math.max(directPeak, peaks.get(inventoryPid) ?? NaN);
  const gatewayPeak = peaks.get(gatewayPid) ?? NaN;
  log(`whole list via gateway: ${proxied.seconds.toFixed(2)} s, inventory peak ${inventoryPeak.toFixed(0)} MB, gateway peak ${gatewayPeak.toFixed(0)} MB`);

  const size = ctx.settings.movies.toLocaleString('en');
  const mbps = (d: { bytes: number; seconds: number }) => `${(d.bytes / 1e6 / d.seconds).toFixed(0)} MB/s`;
  ctx.rows.push(
    {
      figure: `GET /api/movies, all ${size} (${(direct.bytes / 1e6).toFixed(0)} MB, streamed), through the gateway`,
      value: `${fmt.s(proxied.seconds)} (${mbps(proxied)})`,
      ceiling: `direct ${fmt.s(direct.seconds)} (${mbps(direct)})`,
      ratio: fmt.ratio(direct.seconds / proxied.seconds),
      target: '',
      raw: { seconds: proxied.seconds, directSeconds: direct.seconds, bytes: direct.bytes },
    },
    {
      figure: 'peak RSS of the inventory while sending the whole list',
      value: fmt.mb(inventoryPeak),
      ceiling: '',
      ratio: '',
      target: fmt.check(inventoryPeak < 200, '< 200 MB:'),
      raw: { mb: inventoryPeak },
    },
    {
      figure: 'peak RSS of the gateway while passing the whole list on',
      value: fmt.mb(gatewayPeak),
      ceiling: '',
      ratio: '',
      target: fmt.check(gatewayPeak < 200, '< 200 MB:'),
      raw: { mb: gatewayPeak },
    },
  );
  if (!hwm) ctx.notes.push('Peak RSS was sampled every 25 ms (VmHWM could not be reset here).');
}
