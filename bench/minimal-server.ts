/**
 * Ceiling for GET /api/movies/:id: the least our own stack can do for it. One Koa app, no router,
 * no middleware, one prepared `pg` select by id per request from a plain pool (as large as the
 * inventory's), the body written as JSON. Not product code: what the inventory is compared with.
 * Reads PG* connection settings and PORT from its environment; listens on 127.0.0.1:$PORT.
 */
import http from 'node:http';
import Koa from 'koa';
import pg from 'pg';

const pool = new pg.Pool({ max: Number(process.env.POOL_MAX ?? 10) });
pool.on('error', () => undefined);
const PATH = /^\/api\/movies\/(\d+)\/?$/;

const app = new Koa();
app.use(async (ctx) => {
  const match = PATH.exec(ctx.path);
  if (!match) {
    ctx.status = 404;
    return;
  }
  const { rows } = await pool.query({ name: 'movie_by_id', text: 'SELECT id, title, description FROM movies WHERE id = $1', values: [Number(match[1])] });
  if (rows.length === 0) {
    ctx.status = 404;
    return;
  }
  ctx.body = rows[0];
});
const server = http.createServer(app.callback());
server.keepAliveTimeout = 65_000;
server.listen(Number(process.env.PORT), '127.0.0.1');
process.on('SIGTERM', () => {
  server.close();
  server.closeIdleConnections();
  void pool.end().finally(() => process.exit(0));
});
