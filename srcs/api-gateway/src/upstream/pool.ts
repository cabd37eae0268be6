import type http from 'node:http';
import { Gauge, type Registry } from 'prom-client';
import type { Logger } from '@crud-master/common';
import { inventoryHealth } from '../inventory-client';

/** One inventory instance: its base URL and whether requests may go to it. */
export interface Upstream {
  readonly url: string;
  up: boolean;
}

export interface UpstreamPoolOptions {
  /** Base URLs of the inventory instances (config's inventoryUrls). */
  urls: readonly string[];
  agent: http.Agent;
  logger: Logger;
  /** Each instance's GET /health this often (ms). */
  intervalMs: number;
  /** A check unanswered this long fails (ms). */
  checkTimeoutMs: number;
  /** Where `gateway_inventory_up{instance}` goes, if anywhere. */
  registry?: Registry;
}

export interface UpstreamPool {
  readonly instances: readonly Upstream[];
  /** The next instance that is up, in turn, other than `not`; undefined when none is. */
  pick(not?: Upstream): Upstream | undefined;
  /** A connection to it failed: no request goes there until one of its checks passes. */
  markDown(upstream: Upstream, reason: string): void;
  /** The gateway's /health check of the inventory. */
  health(): Promise<Record<string, unknown>>;
  /** Starts the periodic checks (none with a single instance); stop() ends them. */
  start(): void;
  stop(): void;
}

/**
 * The inventory instances behind the gateway, taken in turn (round-robin) among those that are
 * up. An instance goes down at once when a connection to it fails (the proxy says so) or when its
 * GET /health fails; it comes back only when a check passes.
 *
 * A single instance is the classic set-up and is left exactly as it was: never marked down, never
 * checked in the background (a dead inventory is found by the request itself, 502), so the
 * common path costs one array read.
 */
export function createUpstreamPool(options: UpstreamPoolOptions): UpstreamPool {
  const { logger, agent, checkTimeoutMs } = options;
  const instances: Upstream[] = options.urls.map((url) => ({ url, up: true }));
  const single = instances.length === 1;
  const gauge = options.registry && !single ? upGauge(options.registry) : undefined;
  let next = 0;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const setUp = (upstream: Upstream, up: boolean, reason?: string): void => {
    gauge?.set({ instance: upstream.url }, up ? 1 : 0);
    if (upstream.up === up) return;
    upstream.up = up;
    if (up) logger.info({ instance: upstream.url }, 'inventory instance up');
    else logger.warn({ instance: upstream.url, reason }, 'inventory instance down');
  };

  const checkAll = async (): Promise<void> => {
    await Promise.all(
      instances.map((u) =>
        inventoryHealth(u.url, agent, checkTimeoutMs).then(
          () => setUp(u, true),
          (err: Error) => setUp(u, false, `health check: ${err.message}`),
        ),
      ),
    );
    // The next round starts after this one ended: checks of a slow instance never pile up.
    if (!stopped) timer = setTimeout(() => void checkAll(), options.intervalMs).unref();
  };

  return {
    instances,
    pick(not?: Upstream): Upstream | undefined {
      if (single) return instances[0];
      for (let i = 0; i < instances.length; i++) {
        const candidate = instances[(next + i) % instances.length];
        if (candidate.up && candidate !== not) {
          next = (next + i + 1) % instances.length;
          return candidate;
        }
      }
      return undefined;
    },
    markDown(upstream: Upstream, reason: string): void {
      if (!single) setUp(upstream, false, reason);
    },
    health(): Promise<Record<string, unknown>> {
      if (single) return inventoryHealth(instances[0].url, agent, checkTimeoutMs);
      const report = { instances: instances.map((u) => ({ url: u.url, up: u.up })) };
      if (instances.some((u) => u.up)) return Promise.resolve(report);
      return Promise.reject(new Error(`no inventory instance is up: ${instances.map((u) => u.url).join(', ')}`));
    },
    start(): void {
      if (single || timer || stopped) return;
      for (const u of instances) gauge?.set({ instance: u.url }, 1);
      void checkAll();
    },
    stop(): void {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

function upGauge(registry: Registry): Gauge<'instance'> {
  return new Gauge({
    name: 'gateway_inventory_up',
    help: 'Whether the gateway sends requests to this inventory instance (1) or holds it down (0)',
    labelNames: ['instance'],
    registers: [registry],
  });
}
