/**
 * Recognises the errors that mean "the database cannot be reached right now", as opposed to a
 * bug in a query: connection refused or reset, a pool that could not hand out a connection in
 * time, and PostgreSQL's own connection-exception and shutdown codes.
 * https://www.postgresql.org/docs/current/errcodes-appendix.html (classes 08 and 57P)
 */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EPIPE']);
const PG_UNAVAILABLE = /^(08...|57P01|57P02|57P03|53300)$/;

export function isDatabaseUnavailable(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { name?: unknown; code?: unknown; message?: unknown; errors?: unknown };
  if (e.name === 'KnexTimeoutError') return true;
  if (typeof e.code === 'string' && (NETWORK_CODES.has(e.code) || PG_UNAVAILABLE.test(e.code))) return true;
  if (typeof e.message === 'string' && /Connection terminated|timeout exceeded when trying to connect/i.test(e.message)) {
    return true;
  }
  // pg reports "connect ECONNREFUSED" on each address of a host as an AggregateError.
  return Array.isArray(e.errors) && e.errors.some(isDatabaseUnavailable);
}

/** PostgreSQL cancelled the statement: `statement_timeout` ran out (SQLSTATE 57014, query_canceled). */
export function isQueryTimeout(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === '57014';
}
