/**
 * GET /api/movies/:id against the issue 12 ceilings, all in one rotation at the same concurrency:
 *
 *   the inventory                vs  bench/minimal-server.ts (Koa + one prepared pg select)
 *   the gateway -> inventory     vs  bench/naive-proxy.ts (Koa + http-proxy-middleware) -> minimal
 *
 * each for the product as the bench starts it (node dist/main.js, stdout to a file) and as
 * deployed (PM2, access logs through its daemon). At one connection, the time the gateway's hop
 * adds (1 / rate through it - 1 / rate direct) against the naive proxy's. Alternatives for the
 * proxy (http-proxy-middleware before Koa, undici) are measured against the naive one.
 */
import { pgQueryLoop } from './ceilings';
import type { BenchContext } from './context';
import { compareSet, describeLoad, type LoadOptions, type LoadResult } from './load';
import { describeCpu } from './memory';
import { startDeployed, type Deployed } from './pm2';
import { fmt, type Row } from './report';
import type { Service } from './stack';

interface Target {
  name: string;
  url: string;
  /** The processes that serve it, by role (proxy, server), for CPU per request. */
  pids: Record<string, () => number[]>;
}

const INVENTORY_TARGET = 0.75;
const GATEWAY_TARGET = 0.75;
const HOP_TARGET = 1.5;

export async function getById(ctx: BenchContext): Promise<void> {
  const { settings, stack, log } = ctx;
  const id = Math.max(1, Math.floor(settings.movies / 2));
  const started: Service[] = [];
  let deployed: Deployed | undefined;
  try {
    const minimal = await stack.startMinimal();
    started.push(minimal);
    const naive = await stack.startProxy('naive', minimal);
    started.push(naive);
    const rawHpm = await stack.startProxy('raw-hpm', minimal);
    started.push(rawHpm);
    const undici = await stack.startProxy('undici', minimal);
    started.push(undici);
    try {
      deployed = await startDeployed(stack);
    } catch (err) {
      const why = `PM2 did not start: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`.slice(0, 160);
      log(why);
      ctx.notes.push(why);
    }

    const pid = (s: Service) => () => [s.proc.pid];
    const t = {
      minimal: { name: 'minimal', url: minimal.url, pids: { server: pid(minimal) } },
      naive: { name: 'naive proxy', url: naive.url, pids: { proxy: pid(naive), server: pid(minimal) } },
      rawHpm: { name: 'raw-hpm proxy', url: rawHpm.url, pids: { proxy: pid(rawHpm), server: pid(minimal) } },
      undici: { name: 'undici proxy', url: undici.url, pids: { proxy: pid(undici), server: pid(minimal) } },
      inventory: { name: 'inventory', url: ctx.inventory.url, pids: { server: pid(ctx.inventory) } },
      gateway: { name: 'gateway', url: ctx.gateway.url, pids: { proxy: pid(ctx.gateway), server: pid(ctx.inventory) } },
    } satisfies Record<string, Target>;
    const pm2 = deployed && {
      inventory: { name: 'inventory (PM2)', url: deployed.inventory.url, pids: { server: () => [deployed!.inventory.pid], 'pm2 daemon': () => [deployed!.daemonPid] } },
      gateway: {
        name: 'gateway (PM2)',
        url: deployed.gateway.url,
        pids: { proxy: () => [deployed!.gateway.pid], server: () => [deployed!.inventory.pid], 'pm2 daemon': () => [deployed!.daemonPid] },
      },
    } satisfies Record<string, Target>;

    /** CPU groups: the target's processes by role, PostgreSQL, and the load generator (this process). */
    const load = (target: Target, connections: number): LoadOptions => ({
      url: `${target.url}/api/movies/${id}`,
      connections,
      durationS: settings.durationS,
      warmupS: settings.warmupS,
      cpu: { 'load generator': () => [process.pid], ...target.pids, postgres: () => stack.postgresPids() },
    });

    const run = async (targets: Target[], connections: number): Promise<Map<string, LoadResult>> => {
      const results = await compareSet(targets.map((x) => load(x, connections)));
      const out = new Map<string, LoadResult>();
      for (const [i, target] of targets.entries()) {
        const r = results[i]!;
        out.set(target.name, r);
        log(`${target.name}, ${connections} connection(s): ${describeLoad(r)}`);
        if (r.cpu && connections > 1) {
          const line = `GET /api/movies/:id, ${target.name}, ${connections} connections: ${describeCpu(r.cpu, r.requests)}`;
          log(`  ${line}`);
          ctx.notes.push(`${line}.`);
        }
      }
      return out;
    };

    const many = settings.connections;
    const manyTargets = [t.minimal, t.inventory, ...(pm2 ? [pm2.inventory] : []), t.naive, t.gateway, ...(pm2 ? [pm2.gateway] : []), t.rawHpm, t.undici];
    const loaded = await run(manyTargets, many);
    const oneTargets = [t.minimal, t.inventory, ...(pm2 ? [pm2.inventory] : []), t.naive, t.gateway, ...(pm2 ? [pm2.gateway] : [])];
    const single = await run(oneTargets, 1);

    const rps = (m: Map<string, LoadResult>, name: string) => m.get(name)?.rps ?? NaN;
    const rate = (n: number) => fmt.rate(n, 'req/s');
    const ratioRow = (figure: string, name: string, ceilingName: string, ceilingLabel: string, target?: number): Row => {
      const value = rps(loaded, name);
      const ceiling = rps(loaded, ceilingName);
      const ratio = value / ceiling;
      const r = loaded.get(name);
      return {
        figure,
        value: rate(value),
        ceiling: `${ceilingLabel} ${rate(ceiling)}`,
        ratio: fmt.ratio(ratio),
        target: target === undefined ? '' : fmt.check(ratio >= target, `>= ${target.toFixed(2)}:`),
        raw: { rps: value, ceilingRps: ceiling, ratio, p50Ms: r?.p50Ms, p99Ms: r?.p99Ms, errors: (r?.errors ?? 0) + (r?.non2xx ?? 0) },
      };
    };
    /** Mean time one request takes at one connection (a closed loop: 1 / rate), in ms. */
    const perRequestMs = (name: string) => 1000 / rps(single, name);
    const hopRow = (figure: string, gateway: string, inventory: string): Row => {
      const ours = perRequestMs(gateway) - perRequestMs(inventory);
      const naiveHop = perRequestMs(t.naive.name) - perRequestMs(t.minimal.name);
      const ratio = ours / naiveHop;
      return {
        figure,
        value: fmt.ms(ours),
        ceiling: `naive proxy's hop ${fmt.ms(naiveHop)}`,
        ratio: fmt.ratio(ratio),
        target: fmt.check(ratio <= HOP_TARGET, `<= ${HOP_TARGET}x:`),
        raw: { hopMs: ours, naiveHopMs: naiveHop, ratio, gatewayMs: perRequestMs(gateway), inventoryMs: perRequestMs(inventory) },
      };
    };
    const c = `${many} connections`;
    ctx.rows.push(
      ratioRow(`GET /api/movies/:id, inventory as the bench starts it, ${c}`, t.inventory.name, t.minimal.name, 'minimal Koa + pg', INVENTORY_TARGET),
      ...(pm2 ? [ratioRow(`GET /api/movies/:id, inventory under PM2 (access logs on), ${c}`, pm2.inventory.name, t.minimal.name, 'minimal Koa + pg', INVENTORY_TARGET)] : []),
      ratioRow(`GET /api/movies/:id through the gateway as the bench starts it, ${c}`, t.gateway.name, t.naive.name, 'naive proxy -> minimal', GATEWAY_TARGET),
      ...(pm2 ? [ratioRow(`GET /api/movies/:id through the gateway under PM2 (access logs on), ${c}`, pm2.gateway.name, t.naive.name, 'naive proxy -> minimal', GATEWAY_TARGET)] : []),
      hopRow('time the gateway hop adds at 1 connection, as the bench starts it', t.gateway.name, t.inventory.name),
      ...(pm2 ? [hopRow('time the gateway hop adds at 1 connection, under PM2', pm2.gateway.name, pm2.inventory.name)] : []),
      ratioRow(`GET /api/movies/:id through the gateway vs the inventory directly, ${c}`, t.gateway.name, t.inventory.name, 'direct'),
      ratioRow(`proxy alternative: http-proxy-middleware before Koa -> minimal, ${c}`, t.rawHpm.name, t.naive.name, 'naive proxy'),
      ratioRow(`proxy alternative: undici Pool on node:http -> minimal, ${c}`, t.undici.name, t.naive.name, 'naive proxy'),
    );
    ctx.results.directRps = rps(loaded, t.inventory.name);

    const db = await pgQueryLoop({
      config: stack.movies,
      sql: 'SELECT id, title, description FROM movies WHERE id = $1',
      params: () => [id],
      concurrency: many,
      durationS: settings.durationS,
      warmupS: settings.warmupS,
    });
    log(`bare pg loop (same row): ${Math.round(db.rate)} q/s, p99 ${db.p99Ms.toFixed(2)} ms`);
    ctx.notes.push(
      `A bare pg loop of the same select by id at ${many} clients: ${fmt.rate(db.rate, 'q/s')}; the minimal Koa + pg program ` +
        `answered ${rate(rps(loaded, t.minimal.name))}.`,
    );
  } finally {
    await deployed?.stop();
    for (const s of started.reverse()) await stack.stopService(s).catch(() => undefined);
  }
}
