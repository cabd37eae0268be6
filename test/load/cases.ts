/**
 * The load suite's four cases. Each drives the PM2 stack and returns rows of the results table:
 * a figure, its value, its limit and whether the limit held.
 */
import { randomUUID } from 'node:crypto';
import type { LoadProfile } from './profile';
import { slowClient, type SlowKind, type SlowResult } from './slow';
import { APPS, sampleProcess, type AppName, type LoadStack, type ProcessSample } from './stack';
import { percentile, runTraffic, type Outcome, type RequestSpec } from './traffic';

export interface Row {
  figure: string;
  value: string;
  limit: string;
  /** undefined: a figure reported without a limit. */
  held: boolean | undefined;
  /** A time or growth limit: enforced only when the profile says so. */
  timing?: boolean;
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function countRow(figure: string, value: number, limit = 0): Row {
  return { figure, value: fmt(value), limit: `${fmt(limit)}`, held: value <= limit };
}

function infoRow(figure: string, value: string): Row {
  return { figure, value, limit: '', held: undefined };
}

function timingRow(figure: string, value: number, limit: number, unit = 'ms'): Row {
  return { figure, value: `${fmt(value)} ${unit}`, limit: `< ${fmt(limit)} ${unit}`, held: value < limit, timing: true };
}

async function restartsDelta(stack: LoadStack, before: Record<AppName, number>): Promise<Record<AppName, number>> {
  const after = await stack.restarts();
  const out = {} as Record<AppName, number>;
  for (const app of APPS) out[app] = after[app] - before[app];
  return out;
}

function restartRows(label: string, delta: Record<AppName, number>, expected: Partial<Record<AppName, number>> = {}): Row[] {
  return APPS.map((app) => {
    const want = expected[app] ?? 0;
    return { figure: `${label}: PM2 restarts of ${app}`, value: fmt(delta[app]), limit: fmt(want), held: delta[app] === want };
  });
}

/** A deliberate overload answer: 503 with Retry-After and a JSON error code. */
const isShed = (o: Outcome): boolean => o.status === 503 && o.retryAfter !== undefined && o.errorCode !== undefined && o.errorCode !== '(not JSON)';
/** A clear dependency failure: 502/503/504 with a JSON error code. */
const isClearFailure = (o: Outcome): boolean => [502, 503, 504].includes(o.status) && o.errorCode !== undefined && o.errorCode !== '(not JSON)';

function describeStatuses(outcomes: Outcome[]): string {
  const counts = new Map<string, number>();
  for (const o of outcomes) {
    const key = o.status === 0 ? `no answer to ${o.kind} (${o.failure})` : `${o.status}${o.errorCode ? ` ${o.errorCode}` : ''}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].map(([k, n]) => `${k}: ${fmt(n)}`).join(', ');
}

/** The request mix: GET by id, a paged search, a new movie, an order (2:1:1:1). */
function mixedRequests(ids: number[]): (i: number) => RequestSpec {
  const words = ['alpha', 'bravo', 'charlie', 'delta'];
  return (i) => {
    switch (i % 5) {
      case 0:
      case 1:
        return { kind: 'get', method: 'GET', path: `/api/movies/${ids[i % ids.length]}` };
      case 2:
        return { kind: 'search', method: 'GET', path: `/api/movies?title=${words[i % 4]}&limit=20&offset=${(i * 7) % 200}` };
      case 3:
        return { kind: 'movie', method: 'POST', path: '/api/movies', body: JSON.stringify({ title: `Load ${i}`, description: 'posted under load' }) };
      default:
        return {
          kind: 'order',
          method: 'POST',
          path: '/api/billing',
          body: JSON.stringify({ user_id: String((i % 1000) + 1), number_of_items: String((i % 7) + 1), total_amount: `${i % 1000}.50` }),
        };
    }
  };
}

/**
 * Waits until billing has written what the queue held (bounded), then checks that every 200 order
 * is stored exactly once, and that nothing else is, beyond orders whose confirm was lost (503
 * order_not_queued) and may be stored all the same.
 */
async function orderRows(label: string, stack: LoadStack, outcomes: Outcome[], storedBefore: Set<string>, abandoned: Outcome[] = []): Promise<Row[]> {
  const confirmed = outcomes.filter((o) => o.kind === 'order' && o.status === 200).map((o) => o.messageId ?? '(none)');
  const notQueued = outcomes.filter((o) => o.kind === 'order' && o.errorCode === 'order_not_queued').length;
  const hungUp = abandoned.filter((o) => o.kind === 'order').length;
  const maybe = notQueued + hungUp;
  const deadline = Date.now() + 120_000;
  let rows = await stack.storedOrders();
  while (Date.now() < deadline) {
    const depth = await stack.queueDepth();
    rows = await stack.storedOrders();
    if (depth === 0 && confirmed.every((id) => rows.has(id))) break;
    await sleep(500);
  }
  const missing = confirmed.filter((id) => (rows.get(id) ?? 0) === 0).length;
  const doubled = [...rows.values()].filter((n) => n > 1).length;
  const unconfirmed = [...rows.keys()].filter((id) => !storedBefore.has(id)).length - (confirmed.length - missing);
  return [
    { figure: `${label}: confirmed (200) orders stored exactly once`, value: `${fmt(confirmed.length - missing)} of ${fmt(confirmed.length)}`, limit: 'all', held: missing === 0 && doubled === 0 && confirmed.length > 0 },
    { figure: `${label}: orders stored without a 200`, value: fmt(unconfirmed), limit: `<= ${fmt(maybe)} (503 order_not_queued, or hung up on)`, held: unconfirmed >= 0 && unconfirmed <= maybe },
  ];
}

/** (a) Many keep-alive connections on the request mix: no restart, no connection error, only 2xx or a deliberate 503. */
export async function mixedCase(stack: LoadStack, profile: LoadProfile, ids: number[]): Promise<Row[]> {
  const { connections, durationMs } = profile.mixed;
  const label = `(a) ${fmt(connections)} connections, ${durationMs / 1000} s`;
  const before = await stack.restarts();
  const storedBefore = new Set((await stack.storedOrders()).keys());
  const result = await runTraffic({
    baseUrl: stack.gatewayUrl,
    connections,
    durationMs,
    maxRequests: 5_000_000,
    next: mixedRequests(ids),
    hangUpAtDeadline: true,
  });
  const outcomes = result.outcomes;
  // The clients hung up on whatever was still in flight or queued: nothing of it may stay held.
  const after = await runTraffic({
    baseUrl: stack.gatewayUrl,
    connections: 1,
    durationMs: 30_000,
    maxRequests: 20,
    next: (i) => ({ kind: 'get', method: 'GET', path: `/api/movies/${ids[i % ids.length]}` }),
  });
  const noAnswer = outcomes.filter((o) => o.status === 0);
  const wrong = outcomes.filter((o) => o.status !== 0 && o.status !== 200 && !isShed(o));
  const shed = outcomes.filter(isShed);
  const ok = outcomes.filter((o) => o.status === 200);
  const rows: Row[] = [
    infoRow(
      `${label}: answers`,
      `${fmt(outcomes.length)} (${fmt(ok.length / (durationMs / 1000))} 200/s; ${describeStatuses(outcomes)}); ${fmt(result.abandoned.length)} hung up on at the end`,
    ),
    infoRow(`${label}: latency of 200s p50 / p99`, `${fmt(percentile(ok.map((o) => o.latencyMs), 50))} / ${fmt(percentile(ok.map((o) => o.latencyMs), 99))} ms`),
    countRow(`${label}: connection errors (no answer)`, noAnswer.length),
    countRow(`${label}: answers neither the right 2xx nor 503 + Retry-After`, wrong.length),
    countRow(`${label}: of 20 GETs after the clients hung up mid-request, not 200`, after.outcomes.filter((o) => o.status !== 200).length),
    infoRow(`${label}: shed (503 + Retry-After)`, `${fmt(shed.length)} (${((100 * shed.length) / Math.max(1, outcomes.length)).toFixed(1)} %)`),
    ...restartRows(label, await restartsDelta(stack, before)),
    ...(await orderRows(label, stack, outcomes, storedBefore, result.abandoned)),
  ];
  return rows;
}

/** (b) Slow senders and slow readers beside normal traffic: normal requests stay fast, slow sockets are cut. */
export async function slowCase(stack: LoadStack, profile: LoadProfile, ids: number[]): Promise<Row[]> {
  const t = profile.timeouts;
  const { senders, readers, normalConnections } = profile.slow;
  const label = `(b) ${fmt(senders)} slow senders + ${fmt(readers)} slow readers`;
  const limits: Record<SlowKind, number> = {
    headers: t.headersMs + 2_000,
    body: t.bodyMs + 2_000,
    reader: t.idleMs + t.keepAliveMs + 5_000,
  };
  const port = stack.gatewayPort;
  const before = await stack.restarts();
  const slow: Array<Promise<SlowResult & { kind: SlowKind }>> = [];
  const open = (kind: SlowKind, n: number, path = '/api/movies/1'): void => {
    for (let i = 0; i < n; i++) {
      slow.push(slowClient({ port, kind, path, intervalMs: 1000, maxMs: limits[kind] + 5_000 }).then((r) => ({ ...r, kind })));
    }
  };
  open('headers', Math.floor(senders / 2));
  open('body', senders - Math.floor(senders / 2));
  open('reader', readers, '/api/movies?limit=1000');
  // The readers' 1,000 page requests arrive as one burst, which the gateway sheds like any other;
  // the normal traffic starts once they are answered and only their slow reading goes on.
  await sleep(3_000);
  // Normal traffic for as long as the slowest socket may legitimately live.
  const normal = await runTraffic({
    baseUrl: stack.gatewayUrl,
    connections: normalConnections,
    durationMs: Math.max(...Object.values(limits)),
    maxRequests: 1_000_000,
    next: (i) => ({ kind: 'get', method: 'GET', path: `/api/movies/${ids[i % ids.length]}` }),
  });
  const results = await Promise.all(slow);
  const rows: Row[] = [];
  const notOk = normal.outcomes.filter((o) => o.status !== 200);
  rows.push(
    countRow(
      `${label}: normal GETs not answered 200 (of ${fmt(normal.outcomes.length)}${notOk.length ? `; ${describeStatuses(notOk)}` : ''})`,
      notOk.length,
    ),
  );
  rows.push(timingRow(`${label}: normal GET latency p99`, percentile(normal.outcomes.map((o) => o.latencyMs), 99), 1000));
  for (const kind of ['headers', 'body', 'reader'] as const) {
    const mine = results.filter((r) => r.kind === kind);
    const failed = mine.filter((r) => r.error !== undefined);
    const uncut = mine.filter((r) => r.error === undefined && (r.cutAfterMs === undefined || r.cutAfterMs > limits[kind]));
    const worst = Math.max(0, ...mine.map((r) => r.cutAfterMs ?? 0));
    const name = { headers: 'slow header senders', body: 'slow body senders', reader: 'slow readers' }[kind];
    const statuses = [...new Set(mine.map((r) => r.statusLine?.split(' ')[1] ?? 'none'))].join('/');
    rows.push(countRow(`${label}: ${name} that could not connect`, failed.length));
    rows.push({
      figure: `${label}: ${name} not cut within ${fmt(limits[kind])} ms (answers: ${statuses}; last cut after ${fmt(worst)} ms)`,
      value: fmt(uncut.length),
      limit: '0',
      held: uncut.length === 0,
    });
  }
  rows.push(...restartRows(label, await restartsDelta(stack, before)));
  return rows;
}

/** (c) A steady rate for a long time: memory and file descriptors of every service stay flat. */
export async function soakCase(stack: LoadStack, profile: LoadProfile, ids: number[]): Promise<Row[]> {
  const { durationMs, ratePerSec, connections, sampleEveryMs } = profile.soak;
  const label = `(c) soak ${durationMs / 1000} s at ${ratePerSec} req/s`;
  const before = await stack.restarts();
  const pids = await stack.pids();
  const storedBefore = new Set((await stack.storedOrders()).keys());
  const samples: Record<AppName, ProcessSample[]> = { inventory_app: [], billing_app: [], api_gateway: [] };
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      for (const app of APPS) {
        const s = sampleProcess(pids[app]);
        if (s) samples[app].push(s);
      }
      await sleep(sampleEveryMs);
    }
  })();
  const result = await runTraffic({
    baseUrl: stack.gatewayUrl,
    connections,
    durationMs,
    ratePerSec,
    maxRequests: Math.ceil((durationMs / 1000) * ratePerSec) + 1,
    next: mixedRequests(ids),
  });
  sampling = false;
  await sampler;
  const bad = result.outcomes.filter((o) => o.status !== 200);
  const rows: Row[] = [
    infoRow(`${label}: answers`, `${fmt(result.outcomes.length)} (${describeStatuses(result.outcomes)})`),
    countRow(`${label}: answers other than 200`, bad.length),
  ];
  // Growth: the high-water mark (highest sample) of the last third against that of the first third
  // after a warm-up of one fifth. A leak raises every sample, the highest included; what it does
  // not do is make a garbage-collected process's RSS saw up and down: V8's memory reducer gives
  // pages back after a major collection and takes them again later (billing's RSS went 77-105 MB
  // and back in a 10-minute soak, then stayed at 103-106 MB), so medians or floors of thirds
  // compare GC phases and read the sawtooth stopping as growth. Below a noise floor (16 MB of RSS,
  // 16 descriptors: the agent's pooled connections come and go with the traffic) a change is not
  // growth, whatever its percentage.
  const growth = (values: number[]): { percent: number; absolute: number } => {
    const warm = values.slice(Math.floor(values.length / 5));
    const third = Math.max(1, Math.floor(warm.length / 3));
    const highest = (xs: number[]) => (xs.length === 0 ? 0 : Math.max(...xs));
    const first = highest(warm.slice(0, third));
    const last = highest(warm.slice(-third));
    return { percent: first > 0 ? (last / first - 1) * 100 : 0, absolute: last - first };
  };
  const MB = 2 ** 20;
  for (const app of APPS) {
    const s = samples[app];
    if (process.env.LOAD_DEBUG === '1') console.error(`${app} RSS samples (MB): ${s.map((x) => (x.rssBytes / MB).toFixed(0)).join(' ')}`);
    const rss = growth(s.map((x) => x.rssBytes));
    const fds = growth(s.map((x) => x.fds));
    rows.push({
      figure: `${label}: ${app} RSS growth after warm-up (${fmt((s[0]?.rssBytes ?? 0) / MB)} -> ${fmt((s.at(-1)?.rssBytes ?? 0) / MB)} MB)`,
      value: `${rss.percent.toFixed(1)} % (${(rss.absolute / MB).toFixed(1)} MB)`,
      limit: '< 10 % or < 16 MB',
      held: rss.percent < 10 || rss.absolute < 16 * MB,
      timing: true,
    });
    rows.push({
      figure: `${label}: ${app} open file descriptors growth (${s[0]?.fds ?? 0} -> ${s.at(-1)?.fds ?? 0})`,
      value: `${fds.percent.toFixed(1)} % (${fds.absolute})`,
      limit: '< 10 % or < 16',
      held: fds.percent < 10 || fds.absolute < 16,
      timing: true,
    });
  }
  rows.push(...restartRows(label, await restartsDelta(stack, before)));
  rows.push(...(await orderRows(label, stack, result.outcomes, storedBefore)));
  return rows;
}

interface Phase {
  name: string;
  faultAt: number;
  backAt: number;
  endAt: number;
  /** The kind of request the dependency serves. */
  kind: 'get' | 'order';
}

/** (d) Faults under load: the inventory SIGKILLed, PostgreSQL restarted, RabbitMQ restarted. */
export async function faultCase(stack: LoadStack, profile: LoadProfile, ids: number[]): Promise<Row[]> {
  const { connections, downMs, recoveryLimitMs } = profile.faults;
  const label = '(d) faults under load';
  const before = await stack.restarts();
  const storedBefore = new Set((await stack.storedOrders()).keys());
  let t0 = 0;
  let stopTraffic!: () => void;
  const stop = new Promise<void>((resolve) => (stopTraffic = resolve));
  const traffic = runTraffic({
    baseUrl: stack.gatewayUrl,
    connections,
    durationMs: 600_000,
    maxRequests: 5_000_000,
    stop,
    requestTimeoutMs: 15_000,
    next: (i) =>
      i % 2 === 0
        ? { kind: 'get', method: 'GET', path: `/api/movies/${ids[i % ids.length]}` }
        : {
            kind: 'order',
            method: 'POST',
            path: '/api/billing',
            // A retry would reuse the key; this test never retries, it counts.
            headers: { 'Idempotency-Key': randomUUID() },
            body: JSON.stringify({ user_id: '7', number_of_items: '1', total_amount: '9.99' }),
          },
  });
  t0 = Date.now();
  const now = () => Date.now() - t0;
  const healthy = async (port: number): Promise<boolean> =>
    (await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(2000) }).catch(() => undefined))?.status === 200;
  const waitHealthy = async (): Promise<void> => {
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      if ((await healthy(stack.inventoryPort)) && (await healthy(stack.billingPort)) && (await healthy(stack.gatewayPort))) return;
      await sleep(200);
    }
  };
  const phases: Phase[] = [];
  const settle = recoveryLimitMs + 2_000;
  try {
    await sleep(2_000);
    // The inventory, killed: PM2 starts it again by itself.
    {
      const pid = (await stack.pids()).inventory_app;
      const faultAt = now();
      process.kill(pid, 'SIGKILL');
      await sleep(200);
      await waitHealthy();
      const backAt = now();
      await stack.track();
      await sleep(settle);
      phases.push({ name: 'inventory SIGKILL', faultAt, backAt: faultAt, endAt: now(), kind: 'get' });
      void backAt;
    }
    // PostgreSQL (movies_db and orders_db): stopped, down for downMs, started again.
    {
      const faultAt = now();
      await stack.pg.stop();
      await sleep(downMs);
      await stack.pg.start();
      const backAt = now();
      await sleep(settle);
      phases.push({ name: 'PostgreSQL restart', faultAt, backAt, endAt: now(), kind: 'get' });
    }
    // RabbitMQ: stopped, down for downMs, started again.
    {
      const faultAt = now();
      await stack.rabbit.stop();
      await sleep(downMs);
      await stack.rabbit.start();
      const backAt = now();
      await sleep(settle + 5_000);
      phases.push({ name: 'RabbitMQ restart', faultAt, backAt, endAt: now(), kind: 'order' });
    }
  } finally {
    stopTraffic();
  }
  const { outcomes } = await traffic;
  const rows: Row[] = [
    infoRow(`${label}: answers`, `${fmt(outcomes.length)} (${describeStatuses(outcomes)})`),
    countRow(`${label}: connection errors (no answer from the gateway)`, outcomes.filter((o) => o.status === 0).length),
    countRow(
      `${label}: answers neither 2xx nor a JSON 502/503/504`,
      outcomes.filter((o) => o.status !== 0 && o.status !== 200 && !isClearFailure(o)).length,
    ),
  ];
  for (const phase of phases) {
    const mine = outcomes.filter((o) => o.kind === phase.kind && o.at >= phase.faultAt && o.at + o.latencyMs < phase.endAt);
    const failing = mine.filter((o) => o.status !== 200);
    // Recovered once the last failing request of the phase had its answer.
    const lastFailure = Math.max(phase.backAt, ...failing.map((o) => o.at + o.latencyMs));
    const tail = mine.filter((o) => o.at > lastFailure);
    rows.push(infoRow(`${label}, ${phase.name}: ${phase.kind === 'get' ? 'GETs' : 'orders'} during the fault`, describeStatuses(mine)));
    rows.push(
      timingRow(
        `${label}, ${phase.name}: full recovery after the dependency was back${phase.name.startsWith('inventory') ? ' (from the kill; PM2 restarts it)' : ''}`,
        lastFailure - phase.backAt,
        recoveryLimitMs,
      ),
    );
    rows.push({
      figure: `${label}, ${phase.name}: recovered without a manual restart (200s after the last failure)`,
      value: fmt(tail.length),
      limit: '> 0',
      held: tail.length > 0,
    });
  }
  await waitHealthy();
  rows.push(...restartRows(label, await restartsDelta(stack, before), { inventory_app: 1 }));
  rows.push(...(await orderRows(label, stack, outcomes, storedBefore)));
  return rows;
}
