import { ConfigError } from '@crud-master/common';

// A host name or IPv4 address: letters, digits, dots, dashes, underscores (no scheme, path or user).
const HOST_NAME = /^[A-Za-z0-9._-]+$/;
// A bracketed IPv6 literal with an optional port: [::1] or [::1]:8080.
const BRACKETED = /^\[([0-9A-Fa-f:.]+)\](?::(.*))?$/;

function parsePort(text: string, entry: string): number {
  const port = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(port >= 1 && port <= 65535)) throw new Error(`"${entry}": port must be an integer from 1 to 65535`);
  return port;
}

/** One entry: `host`, `host:port`, `[v6]`, `[v6]:port`, or a bare IPv6 literal (as a single INVENTORY_HOST always was). */
function parseEntry(entry: string, defaultPort: number): string {
  if (entry === '') throw new Error('an empty entry (two commas in a row, or one at an end)');
  const bracketed = BRACKETED.exec(entry);
  if (bracketed) return `http://[${bracketed[1]}]:${bracketed[2] === undefined ? defaultPort : parsePort(bracketed[2], entry)}`;
  const colons = entry.split(':').length - 1;
  if (colons > 1) {
    if (!/^[0-9A-Fa-f:.]+$/.test(entry)) throw new Error(`"${entry}": not an IPv6 address (write [address]:port for one with a port)`);
    return `http://[${entry}]:${defaultPort}`;
  }
  const [host, port] = colons === 1 ? entry.split(':') : [entry, undefined];
  if (!HOST_NAME.test(host)) throw new Error(`"${entry}": a host is a name or an address, without scheme, path or spaces`);
  return `http://${host}:${port === undefined ? defaultPort : parsePort(port, entry)}`;
}

/**
 * INVENTORY_HOST as base URLs: a comma-separated list of inventory instances, each `host` or
 * `host:port` (port INVENTORY_PORT when left out). One entry is the classic single inventory.
 * Throws a ConfigError naming the bad entry, so the gateway stops at start instead of proxying to it.
 */
export function inventoryUrlsFrom(value: string, defaultPort: number): string[] {
  const problems: string[] = [];
  const urls: string[] = [];
  for (const raw of value.split(',')) {
    try {
      const url = parseEntry(raw.trim(), defaultPort);
      if (urls.includes(url)) throw new Error(`"${raw.trim()}" is listed twice`);
      urls.push(url);
    } catch (err) {
      problems.push(`INVENTORY_HOST: ${(err as Error).message}`);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return urls;
}
