/**
 * The HTTP ceiling: a bare Koa app that answers a small JSON body, no router, no database. What
 * this machine's Node.js does per request with nothing to compute. Listens on 127.0.0.1:$PORT.
 */
import http from 'node:http';
import Koa from 'koa';

const app = new Koa();
app.use((ctx) => {
  ctx.body = { id: 1, title: 'Hello', description: 'world' };
});
const server = http.createServer(app.callback());
server.keepAliveTimeout = 65_000;
server.listen(Number(process.env.PORT), '127.0.0.1');
process.on('SIGTERM', () => server.close(() => process.exit(0)));
