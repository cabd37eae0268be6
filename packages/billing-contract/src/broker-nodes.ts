/*
 * RABBITMQ_HOST as a list of nodes: `host`, `host:port`, `[v6]` or `[v6]:port`, comma-separated.
 * One value is today's single broker; several are the nodes of one RabbitMQ cluster, tried in
 * order (README, "Scaling out: RabbitMQ").
 */
import { z } from 'zod';
import { ConfigError } from '@crud-master/common';

/** One RabbitMQ node: where to open a connection. */
export interface BrokerNode {
  host: string;
  port: number;
}

/** A node as written in RABBITMQ_HOST; `port` absent means RABBITMQ_PORT. */
export interface BrokerNodeEntry {
  host: string;
  port?: number;
}

const HOST = /^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$/;
const V6 = /^[0-9A-Fa-f:.]+$/;
const PORT = /^[0-9]{1,5}$/;

/** One entry of the list, or a sentence saying what is wrong with it. */
export function parseBrokerNode(text: string): BrokerNodeEntry | string {
  const entry = text.trim();
  let host: string;
  let port: string | undefined;
  const bracketed = /^\[([^\]]*)\](?::(.*))?$/.exec(entry);
  if (bracketed) {
    host = bracketed[1] ?? '';
    port = bracketed[2];
    if (!V6.test(host)) return `"${entry}": not an IPv6 address in brackets`;
  } else {
    const parts = entry.split(':');
    if (parts.length > 2) return `"${entry}": an IPv6 address needs brackets, as [::1]:5672`;
    host = parts[0] ?? '';
    port = parts[1];
    if (!HOST.test(host)) return `"${entry}": not a host name or address`;
  }
  if (port === undefined) return { host };
  const n = Number(port);
  if (!PORT.test(port) || n < 1 || n > 65535) return `"${entry}": port must be 1 to 65535`;
  return { host, port: n };
}

/** The RABBITMQ_HOST schema: a non-empty, comma-separated list of nodes, each named once. */
export const envBrokerNodes = z.string().transform((value, ctx): BrokerNodeEntry[] => {
  const entries = value.split(',').map((part) => part.trim());
  const nodes: BrokerNodeEntry[] = [];
  entries.forEach((entry, index) => {
    if (entry === '') {
      ctx.addIssue({ code: 'custom', message: entries.length === 1 ? 'must not be empty' : `entry ${index + 1} is empty (a stray comma?)` });
      return;
    }
    const node = parseBrokerNode(entry);
    if (typeof node === 'string') {
      ctx.addIssue({ code: 'custom', message: `entry ${index + 1} ${node}; expected host or host:port, comma-separated` });
    } else nodes.push(node);
  });
  return nodes;
});

/** The nodes with their ports: an entry without one gets `defaultPort` (RABBITMQ_PORT). */
export function withPorts(entries: readonly BrokerNodeEntry[], defaultPort: number): BrokerNode[] {
  const nodes = entries.map((e) => ({ host: e.host, port: e.port ?? defaultPort }));
  const seen = new Set<string>();
  for (const { host, port } of nodes) {
    const key = `${host.toLowerCase()}:${port}`;
    if (seen.has(key)) throw new ConfigError([`RABBITMQ_HOST: ${host}:${port} is listed twice`]);
    seen.add(key);
  }
  return nodes;
}

/** The order to try `count` nodes in, starting at `startIndex` and wrapping around. */
export function rotation(count: number, startIndex: number): number[] {
  return Array.from({ length: count }, (_, i) => (startIndex + i) % count);
}
