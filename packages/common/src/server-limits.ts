import type http from 'node:http';
import { z } from 'zod';
import { envPositiveInt } from './config';

/**
 * What one HTTP server tolerates from its clients. Each service picks its own values for its role
 * (the public gateway: short; the internal inventory hop: long keep-alive for the gateway's
 * agent) and reads them from the environment; `listen()` applies them.
 */
export interface ServerLimits {
  /** Request line and headers must arrive within this (ms); else Node answers 408 and closes. */
  headersTimeoutMs: number;
  /**
   * The whole request, body included, must arrive within this (ms) of its first byte; else Node
   * answers 408 and closes. A backstop: the gateway cuts slow bodies sooner itself.
   */
  requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this (ms). */
  keepAliveTimeoutMs: number;
  /** A connection on which nothing moves either way for this long is cut (ms); 0: never. */
  idleTimeoutMs: number;
  /** Connections beyond this are closed as they are accepted: a last resort that keeps file descriptors. */
  maxConnections: number;
}

/** Node checks headers/request deadlines on a timer (30 s by default): check every second instead. */
const DEADLINE_CHECK_INTERVAL_MS = 1000;

/**
 * What a socket buffers in the process before a writer must wait: 64 kB instead of 16 kB, so a
 * typical answer (a page of movies) is taken whole from the inventory even when the client reads
 * slowly, and the inventory connection is free again at once.
 */
const SOCKET_HIGH_WATER_MARK = 64 * 1024;

/** Options for `http.createServer` that must be given at creation. */
export function serverOptions(limits: ServerLimits): http.ServerOptions {
  return {
    highWaterMark: SOCKET_HIGH_WATER_MARK,
    headersTimeout: limits.headersTimeoutMs,
    // Node insists on requestTimeout >= headersTimeout.
    requestTimeout: Math.max(limits.requestTimeoutMs, limits.headersTimeoutMs),
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    connectionsCheckingInterval: DEADLINE_CHECK_INTERVAL_MS,
  };
}

/** The limits that are properties of a running server. */
export function applyServerLimits(server: http.Server, limits: ServerLimits): void {
  server.headersTimeout = limits.headersTimeoutMs;
  server.requestTimeout = Math.max(limits.requestTimeoutMs, limits.headersTimeoutMs);
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  server.maxConnections = limits.maxConnections;
  // Without a 'timeout' listener on the server, Node destroys the socket when this fires.
  server.timeout = limits.idleTimeoutMs;
}

const envMs = z.coerce.number().int().min(0);

/**
 * The environment variables of a server's limits, `<PREFIX>_HEADERS_TIMEOUT_MS` and so on, with
 * the role's defaults. Spread into a service's config schema; `serverLimitsFrom` reads them back.
 */
export function serverLimitsEnvShape<P extends string>(prefix: P, defaults: ServerLimits) {
  return {
    [`${prefix}_HEADERS_TIMEOUT_MS`]: envPositiveInt.default(defaults.headersTimeoutMs),
    [`${prefix}_REQUEST_TIMEOUT_MS`]: envPositiveInt.default(defaults.requestTimeoutMs),
    [`${prefix}_KEEP_ALIVE_TIMEOUT_MS`]: envPositiveInt.default(defaults.keepAliveTimeoutMs),
    [`${prefix}_IDLE_TIMEOUT_MS`]: envMs.default(defaults.idleTimeoutMs),
    [`${prefix}_MAX_CONNECTIONS`]: envPositiveInt.default(defaults.maxConnections),
  } as Record<`${P}_${'HEADERS_TIMEOUT_MS' | 'REQUEST_TIMEOUT_MS' | 'KEEP_ALIVE_TIMEOUT_MS' | 'IDLE_TIMEOUT_MS' | 'MAX_CONNECTIONS'}`, z.ZodDefault<z.ZodCoercedNumber<unknown>>>;
}

export function serverLimitsFrom(prefix: string, vars: Record<string, unknown>): ServerLimits {
  const n = (name: string): number => vars[`${prefix}_${name}`] as number;
  return {
    headersTimeoutMs: n('HEADERS_TIMEOUT_MS'),
    requestTimeoutMs: n('REQUEST_TIMEOUT_MS'),
    keepAliveTimeoutMs: n('KEEP_ALIVE_TIMEOUT_MS'),
    idleTimeoutMs: n('IDLE_TIMEOUT_MS'),
    maxConnections: n('MAX_CONNECTIONS'),
  };
}
