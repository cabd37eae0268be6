import type { Context, Middleware, Next } from 'koa';
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';
import { routeOf } from './request-context';

/**
 * One Prometheus registry per service instance, never prom-client's global one: two apps in one
 * process (as in the tests) keep separate counts.
 */
export interface HttpMetrics {
  registry: Registry;
  requests: Counter<'method' | 'route' | 'status'>;
  duration: Histogram<'method' | 'route' | 'status'>;
}

export interface MetricsOptions {
  /** Adds process metrics (CPU, memory, event loop lag, GC): entry points want them, tests do not. */
  processMetrics?: boolean;
  /** Added to every metric as the `service` label. */
  service: string;
}

export function createHttpMetrics(options: MetricsOptions): HttpMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ service: options.service });
  if (options.processMetrics) collectDefaultMetrics({ register: registry });
  const labelNames = ['method', 'route', 'status'] as const;
  return {
    registry,
    requests: new Counter({
      name: 'http_requests_total',
      help: 'HTTP requests answered, by method, route template and status',
      labelNames,
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'http_request_duration_seconds',
      help: 'Time from request to the last byte of the response, by method, route template and status',
      labelNames,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
  };
}

/** Counts one answered request and its duration (seconds) under its method, route template and status. */
export function countRequest(metrics: HttpMetrics, method: string, route: string, status: number, seconds: number): void {
  const labels = { method, route, status: String(status) };
  metrics.requests.inc(labels);
  metrics.duration.observe(labels, seconds);
}

/** Counts and times every request once its response is complete (proxied and streamed ones too). */
export function httpMetricsMiddleware(metrics: HttpMetrics): Middleware {
  return function measure(ctx: Context, next: Next): Promise<void> {
    const stop = process.hrtime.bigint();
    ctx.res.once('close', () => {
      if (ctx.path === '/metrics') return;
      countRequest(metrics, ctx.method, routeOf(ctx), ctx.res.statusCode, Number(process.hrtime.bigint() - stop) / 1e9);
    });
    return next();
  };
}

/** `GET /metrics` in Prometheus text format. */
export function metricsHandler(registry: Registry) {
  return async (ctx: Context): Promise<void> => {
    ctx.set('Content-Type', registry.contentType);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = await registry.metrics();
  };
}
