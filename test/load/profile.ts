/**
 * How hard the load suite pushes. `npm test` runs the short profile (seconds per case, hundreds of
 * connections, shorter server timeouts so that slow sockets are cut within the case) so CI guards
 * the crash; `npm run test:load` runs the full one (CM_LOAD_PROFILE=full) with the shipped
 * defaults. Single figures can be overridden: LOAD_CONNECTIONS, LOAD_DURATION_S,
 * LOAD_SLOW_SOCKETS, LOAD_SOAK_S, LOAD_SOAK_RATE.
 */
export interface LoadProfile {
  name: 'short' | 'full';
  /** Whether time limits (p99, recovery, memory growth) fail the run; the short profile only reports them. */
  enforceTiming: boolean;
  movies: number;
  mixed: { connections: number; durationMs: number };
  slow: { senders: number; readers: number; normalConnections: number };
  soak: { durationMs: number; ratePerSec: number; connections: number; sampleEveryMs: number };
  faults: { connections: number; downMs: number; recoveryLimitMs: number };
  /** The gateway's timeouts the stack runs with (what cuts slow sockets). */
  timeouts: { headersMs: number; bodyMs: number; keepAliveMs: number; idleMs: number };
  /** Extra environment for the services. */
  env: Record<string, string>;
}

function num(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, not ${raw}`);
  return n;
}

export function loadProfile(): LoadProfile {
  const full = process.env.CM_LOAD_PROFILE === 'full';
  // The shipped defaults (srcs/api-gateway/src/config.ts) in the full run; short ones otherwise.
  const timeouts = full
    ? { headersMs: 10_000, bodyMs: 10_000, keepAliveMs: 5_000, idleMs: 30_000 }
    : { headersMs: 2_000, bodyMs: 2_000, keepAliveMs: 2_000, idleMs: 8_000 };
  return {
    name: full ? 'full' : 'short',
    enforceTiming: full,
    movies: 2_000,
    mixed: { connections: num('LOAD_CONNECTIONS', full ? 2_000 : 300), durationMs: num('LOAD_DURATION_S', full ? 60 : 5) * 1000 },
    slow: {
      senders: num('LOAD_SLOW_SOCKETS', full ? 1_000 : 100),
      readers: num('LOAD_SLOW_SOCKETS', full ? 1_000 : 100),
      normalConnections: 20,
    },
    soak: {
      durationMs: num('LOAD_SOAK_S', full ? 600 : 10) * 1000,
      ratePerSec: num('LOAD_SOAK_RATE', full ? 100 : 50),
      connections: 20,
      sampleEveryMs: full ? 10_000 : 1_000,
    },
    faults: { connections: full ? 50 : 20, downMs: full ? 5_000 : 2_000, recoveryLimitMs: 10_000 },
    timeouts,
    env: full
      ? {}
      : {
          GATEWAY_HEADERS_TIMEOUT_MS: String(timeouts.headersMs),
          GATEWAY_BODY_TIMEOUT_MS: String(timeouts.bodyMs),
          GATEWAY_KEEP_ALIVE_TIMEOUT_MS: String(timeouts.keepAliveMs),
          GATEWAY_IDLE_TIMEOUT_MS: String(timeouts.idleMs),
          // Fewer inventory connections than clients, so requests queue and some are shed even
          // in a few seconds (and a slot leaked by a client that hung up would show).
          GATEWAY_UPSTREAM_MAX_SOCKETS: '64',
        },
  };
}
