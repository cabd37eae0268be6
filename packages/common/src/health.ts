import type { Context } from 'koa';
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

/** A Koa handler for `GET /health`: 200 when every check is up, 503 otherwise. */
export function healthHandler(service: string, checks: Record<string, HealthCheck>, timeoutMs?: number) {
  return async (ctx: Context): Promise<void> => {
    const report = await runHealthChecks(service, checks, timeoutMs);
    ctx.status = report.status === 'ok' ? 200 : 503;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = report;
  };
}
