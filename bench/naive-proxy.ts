/**
 * Ceilings for the gateway's proxy hop, in front of bench/minimal-server.ts. Not product code.
 * PROXY_VARIANT picks what forwards each request to TARGET (listens on 127.0.0.1:$PORT):
 *
 *   naive      Koa with a bare http-proxy-middleware and a keep-alive agent: the ceiling
 *   raw-hpm    the same http-proxy-middleware on a plain node:http server, before any Koa stack
 *   undici     a plain node:http server forwarding with an undici Pool (keep-alive, pipelined off)
 *
 * The last two are the alternatives the gateway could adopt; the bench reports each as a ratio to
 * the naive one.
 */
import http from 'node:http';
import Koa from 'koa';
import { createProxyMiddleware } from 'http-proxy-middleware';
import { Pool } from 'undici';

const target = process.env.TARGET as string;
const variant = process.env.PROXY_VARIANT ?? 'naive';
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

function handler(): http.RequestListener {
  if (variant === 'undici') return undiciHandler();
  const proxy = createProxyMiddleware<http.IncomingMessage, http.ServerResponse>({ target, agent });
  if (variant === 'raw-hpm') return (req, res) => void proxy(req, res, () => undefined);
  const app = new Koa();
  app.use(async (ctx, next) => {
    ctx.respond = false;
    await proxy(ctx.req, ctx.res, next);
  });
  return app.callback();
}

/** Hop-by-hop headers (RFC 9110 section 7.6.1) are not forwarded. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer']);

function undiciHandler(): http.RequestListener {
  const pool = new Pool(target, { connections: 256, pipelining: 1, keepAliveTimeout: 60_000 });
  return (req, res) => {
    const headers: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(req.headers)) if (value !== undefined && !HOP_BY_HOP.has(name) && name !== 'host') headers[name] = value;
    const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
    pool.stream(
      { path: req.url ?? '/', method: req.method as 'GET', headers, ...(hasBody ? { body: req } : {}) },
      ({ statusCode, headers: upstream }) => {
        for (const [name, value] of Object.entries(upstream)) if (value !== undefined && !HOP_BY_HOP.has(name)) res.setHeader(name, value);
        res.statusCode = statusCode;
        return res;
      },
      (err) => {
        if (!err) return;
        if (res.headersSent) res.destroy();
        else {
          res.statusCode = 502;
          res.end();
        }
      },
    );
  };
}

const server = http.createServer(handler());
server.keepAliveTimeout = 65_000;
server.listen(Number(process.env.PORT), '127.0.0.1');
process.on('SIGTERM', () => {
  server.close();
  server.closeIdleConnections();
  agent.destroy();
  process.exit(0);
});
