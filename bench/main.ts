/**
 * `npm run bench`: how close every path of crud-master is to what this machine can do.
 *
 * Starts its own PostgreSQL and RabbitMQ (the test harness's private instances, in a temporary
 * directory), seeds movies_db, starts the services from their builds on 127.0.0.1, measures each
 * figure of issues 6 and 12 against its bare ceiling at equal concurrency (the issue 12 ceilings: a
 * minimal Koa + pg program and a naive proxy in front of it, see by-id.ts), prints the table and writes
 * bench/results/latest.md and .json (quick.md and .json with --quick). Everything it started is
 * stopped and removed at the end, also on failure or Ctrl-C. All traffic stays on loopback, and
 * every load run and loop is bounded in time and count; a watchdog ends the run if it overruns.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { billing, billingMissing, drainBacklog, profileOrders } from './billing';
import { unavailable, type BenchContext, type Settings } from './context';
import { getById } from './by-id';
import { search, seedMovies, wholeList } from './movies';
import { cataloguePage } from './page';
import { formatSummary, newestProfile, summarizeProfile } from './profile';
import { describeLoad, runLoad } from './load';
import { loadAverage, machine, textTable, writeReport, type Row } from './report';
import { ROOT, Stack } from './stack';

/** The sections of a run, in order; `--only` picks some. */
const SECTIONS = ['by-id', 'search', 'page', 'list', 'billing'];

const USAGE = `Usage: npm run bench [-- options]

  --quick            small sizes and short runs (a smoke test, about two minutes)
  --movies N         movies to seed (default 1,000,000; quick 20,000)
  --orders N         orders in the backlog (default 100,000; quick 5,000)
  --connections N    concurrency of every load and ceiling loop (default 16)
  --duration S       seconds per measured run (default 10; quick 3)
  --profile          also CPU-profile the services under load and print where their time goes
  --only LIST        run only these sections, comma-separated: by-id, search, page, list, billing
                     (the seed always runs; for iterating on one figure, not for results)
  --keep             keep the run directory (data, logs, profiles) for a post-mortem
`;

function parseSettings(): { settings: Settings; keep: boolean } {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      movies: { type: 'string' },
      orders: { type: 'string' },
      connections: { type: 'string' },
      duration: { type: 'string' },
      profile: { type: 'boolean', default: false },
      only: { type: 'string' },
      keep: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const int = (raw: string | undefined, fallback: number, name: string, min: number, max: number): number => {
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!/^[0-9]+$/.test(raw) || n < min || n > max) throw new Error(`--${name} must be a whole number from ${min} to ${max}`);
    return n;
  };
  const quick = values.quick;
  const only = values.only === undefined ? SECTIONS : values.only.split(',').map((x) => x.trim());
  for (const name of only) if (!SECTIONS.includes(name)) throw new Error(`--only: no section ${name} (${SECTIONS.join(', ')})`);
  const durationS = int(values.duration, quick ? 3 : 10, 'duration', 1, 60);
  return {
    settings: {
      mode: quick ? 'quick' : 'full',
      movies: int(values.movies, quick ? 20_000 : 1_000_000, 'movies', 2_000, 5_000_000),
      orders: int(values.orders, quick ? 5_000 : 100_000, 'orders', 100, 1_000_000),
      connections: int(values.connections, 16, 'connections', 1, 256),
      durationS,
      warmupS: quick ? 2 : 3,
      profile: values.profile,
      only,
    },
    keep: values.keep,
  };
}

const log = (line: string) => process.stdout.write(`[bench] ${line}\n`);

async function section(ctx: BenchContext, name: string, figures: string[], run: () => Promise<void>): Promise<void> {
  log(`--- ${name}`);
  const before = ctx.rows.length;
  try {
    await run();
  } catch (err) {
    const why = `failed: ${err instanceof Error ? err.message : String(err)}`.slice(0, 200);
    log(`${name} ${why}`);
    ctx.rows.splice(before);
    ctx.rows.push(...figures.map((f) => unavailable(f, why)));
  }
}

/** Profiles the services under the loads that matter; the summaries go to the terminal and a file. */
async function profiles(ctx: BenchContext): Promise<string[]> {
  const { stack, settings } = ctx;
  const dir = path.join(stack.runDir, 'profiles');
  const out: string[] = [];
  const id = Math.max(1, Math.floor(settings.movies / 2));
  const common = { connections: settings.connections, durationS: settings.durationS, warmupS: settings.warmupS };

  await stack.stopService(ctx.gateway);
  await stack.stopService(ctx.inventory);
  stack.profileDir = dir;
  const spawned = performance.now();
  let inventory = await stack.startInventory();
  let gateway = await stack.startGateway(inventory);
  stack.profileDir = undefined;
  // Leave the start-up (module loading, migrations) out of the summaries.
  const skipMs = performance.now() - spawned;
  const load = await runLoad({ ...common, url: `${gateway.url}/api/movies/${id}` });
  log(`profiling GET /api/movies/${id} through the gateway: ${describeLoad(load)}`);
  await stack.stopService(gateway);
  await stack.stopService(inventory);
  for (const name of ['gateway', 'inventory']) {
    const file = newestProfile(path.join(dir, name));
    // The warm-up's requests count too: they are in the profile.
    const requests = Math.round(load.requests * (1 + settings.warmupS / settings.durationS));
    if (file) out.push(formatSummary(`${name}, under GET /api/movies/:id through the gateway`, summarizeProfile(file, 12, skipMs), { count: requests, unit: 'request' }));
  }
  // Put the unprofiled services back for whatever runs next.
  inventory = await stack.startInventory();
  gateway = await stack.startGateway(inventory);
  ctx.inventory = inventory;
  ctx.gateway = gateway;
  const orders = await profileOrders(ctx, dir);
  if (orders) out.push(orders);

  if (billingMissing() === undefined && stack.rabbit) {
    let drainStartupMs = 0;
    stack.profileDir = dir;
    try {
      const drained = await drainBacklog(ctx, settings.orders);
      drainStartupMs = drained.startupS * 1000;
      log(`profiling the drain: ${Math.round(drained.rate)} orders/s`);
    } finally {
      stack.profileDir = undefined;
    }
    const file = newestProfile(path.join(dir, 'billing'));
    if (file) out.push(formatSummary('billing, draining the backlog', summarizeProfile(file, 12, drainStartupMs), { count: settings.orders, unit: 'order' }));
  }
  return out;
}

async function main(): Promise<void> {
  const { settings, keep } = parseSettings();
  if (keep) process.env.TEST_KEEP_RUN_DIR = '1';
  const startedAt = Date.now();
  const loadAtStart = loadAverage();
  const stack = new Stack(log);
  const rows: Row[] = [];
  const notes: string[] = [];
  let profileText: string[] = [];
  let versions = { postgres: 'PostgreSQL ?', rabbitmq: '?' };

  let cleaning: Promise<void> | undefined;
  const cleanup = () => (cleaning ??= stack.destroy(keep));
  const limitMs = (settings.mode === 'quick' ? 8 : 25) * 60_000;
  const watchdog = setTimeout(() => {
    log(`watchdog: still running after ${limitMs / 60_000} min, stopping`);
    void cleanup().finally(() => process.exit(3));
  }, limitMs);
  watchdog.unref();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      log(`${signal}: stopping everything`);
      void cleanup().finally(() => process.exit(130));
    });
  }

  try {
    if (Number(loadAtStart.split(' ')[0]) > 0.5) log(`warning: load average ${loadAtStart}: other work on this machine will skew the figures`);
    log(`${settings.mode} run: ${settings.movies.toLocaleString('en')} movies, ${settings.orders.toLocaleString('en')} orders, ` +
      `${settings.connections} connections, ${settings.durationS} s per run; working in ${stack.runDir}`);
    await stack.start(true);
    const pgVersion = await stack.pg.query<{ v: string }>(`SELECT current_setting('server_version') AS v`);
    versions = { postgres: `PostgreSQL ${pgVersion[0]?.v ?? '?'}`, rabbitmq: await rabbitVersion(stack) };

    rows.push(await seedMovies(stack, settings.movies, log));
    const inventory = await stack.startInventory();
    const gateway = await stack.startGateway(inventory);
    const ctx: BenchContext = { settings, stack, inventory, gateway, rows, notes, log, results: {} };

    const run = (name: string) => settings.only.includes(name);
    if (run('by-id')) await section(ctx, 'GET /api/movies/:id', ['GET /api/movies/:id on the inventory', 'GET /api/movies/:id through the gateway'], () => getById(ctx));
    if (run('search')) await section(ctx, 'search', ['search ?title= at full size'], () => search(ctx));
    if (run('page')) await section(ctx, 'catalogue page', ['catalogue page in Chromium'], () => cataloguePage(ctx));
    if (run('list')) await section(ctx, 'whole list', ['GET /api/movies, whole list', 'peak RSS of the inventory', 'peak RSS of the gateway'], () => wholeList(ctx));
    if (run('billing')) await section(ctx, 'billing', ['POST /api/billing', 'backlog drain into orders_db'], () => billing(ctx));
    if (settings.profile) {
      await section(ctx, 'profiles', [], async () => {
        profileText = await profiles(ctx);
      });
    }
  } finally {
    clearTimeout(watchdog);
    log('stopping the stack');
    await cleanup();
  }

  const durationS = (Date.now() - startedAt) / 1000;
  process.stdout.write(`\n${textTable(rows)}\n\n`);
  for (const note of notes) process.stdout.write(`- ${note}\n`);
  if (profileText.length > 0) process.stdout.write(`\n${profileText.join('\n\n')}\n`);
  // A partial run never replaces the results of a complete one.
  const partial = settings.only.length < SECTIONS.length;
  const file = writeReport(path.join(ROOT, 'bench', 'results'), partial ? 'partial' : settings.mode === 'quick' ? 'quick' : 'latest', {
    date: new Date(startedAt).toISOString(),
    mode: settings.mode,
    durationS,
    settings: {
      movies: settings.movies,
      orders: settings.orders,
      connections: settings.connections,
      'seconds per run': settings.durationS,
    },
    machine: machine(versions.postgres, versions.rabbitmq, loadAtStart),
    rows,
    notes,
    profiles: profileText,
  });
  log(`wrote ${path.relative(ROOT, file)} (${durationS.toFixed(0)} s in all)`);
}

async function rabbitVersion(stack: Stack): Promise<string> {
  if (!stack.rabbit) return 'not running';
  const amqp = await import('amqplib');
  const connection = await amqp.connect(stack.amqpUrl());
  try {
    const props = (connection as unknown as { connection: { serverProperties?: { version?: string } } }).connection.serverProperties;
    return props?.version ?? '?';
  } finally {
    await connection.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`[bench] failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
