import type { Context } from 'koa';
import type { Logger } from './logger';
import { withTimeout } from './timeout';

export type CheckState = 'up' | 'down';

export interface CheckResult {
  status: CheckState;
  error?: string;
  [detail: string]: unknown;
}

/** A dependency check: resolves (optionally with details) when the dependency works. */
export type HealthCheck = () => Promise<Record<string, unknown> | void>;

export interface HealthReport {
  status: 'ok' | 'unavailable';
  service: string;
  checks: Record<string, CheckResult>;
}

/** Runs every check concurrently, each bounded by `timeoutMs`, so a dead dependency never hangs /health. */
export async function runHealthChecks(
  service: string,
  checks: Record<string, HealthCheck>,
  timeoutMs = 2000,
): Promise<HealthReport> {
  const entries = await Promise.all(
    Object.entries(checks).map(async ([name, check]): Promise<[string, CheckResult]> => {
      try {
        const details = await withTimeout(check(), timeoutMs, () => new Error(`no answer within ${timeoutMs} ms`));
        return [name, { status: 'up', ...(details ?? {}) }];
      } catch (err) {
        return [name, { status: 'down', error: err instanceof Error ? err.message : String(err) }];
      }
    }),
  );
  const results = Object.fromEntries(entries);
  const ok = entries.every(([, result]) => result.status === 'up');
  return { status: ok ? 'ok' : 'unavailable', service, checks: results };
}

/**
 * What anyone who can reach a public port may see: the overall status and up/down per
 * dependency. No address, no error text, no counters: those are in the detailed report (the
 * gateway's admin listener) and in the log.
 */
export function publicHealthReport(report: HealthReport): HealthReport {
  const checks = Object.fromEntries(Object.entries(report.checks).map(([name, result]) => [name, { status: result.status }]));
  return { status: report.status, service: report.service, checks };
}

export interface HealthHandlerOptions {
  /** Each check's bound (ms; default 2000). */
  timeoutMs?: number;
  /**
   * true: the whole report, error texts and details included (internal listeners only).
   * false (default): the public report; a failing check's error goes to `logger` at warn.
   */
  detailed?: boolean;
  logger?: Pick<Logger, 'warn'>;
}

/** A Koa handler for `GET /health`: 200 when every check is up, 503 otherwise. */
export function healthHandler(service: string, checks: Record<string, HealthCheck>, options: HealthHandlerOptions = {}) {
  return async (ctx: Context): Promise<void> => {
    const report = await runHealthChecks(service, checks, options.timeoutMs);
    ctx.status = report.status === 'ok' ? 200 : 503;
    ctx.set('Cache-Control', 'no-store');
    if (options.detailed) {
      ctx.body = report;
      return;
    }
    for (const [name, result] of Object.entries(report.checks)) {
      if (result.status === 'down') options.logger?.warn({ check: name, err: result.error }, 'health check down');
    }
    ctx.body = publicHealthReport(report);
  };
}
