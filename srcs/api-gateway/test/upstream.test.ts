import assert from 'node:assert/strict';
import http from 'node:http';
import { ConfigError } from '@crud-master/common';
import { readConfig } from '../src/config';
import { classifyFailure, mayRetry, meansDown } from '../src/upstream/failure';
import { createUpstreamPool } from '../src/upstream/pool';
import { silentLogger } from '../../../test/support/silent-logger';

const env = { GATEWAY_PORT: '3000', RABBITMQ_HOST: '127.0.0.1', RABBITMQ_GATEWAY_USER: 'u', RABBITMQ_GATEWAY_PASSWORD: 'p', INVENTORY_PORT: '8080' };
const errno = (code: string): Error => Object.assign(new Error(code), { code });

describe('INVENTORY_HOST: one inventory or a list', () => {
  it('keeps a single entry as it always was, IPv6 included', () => {
    assert.deepEqual(readConfig({ ...env, INVENTORY_HOST: '192.168.56.11' }).inventoryUrls, ['http://192.168.56.11:8080']);
    assert.equal(readConfig({ ...env, INVENTORY_HOST: '192.168.56.11' }).inventoryUrl, 'http://192.168.56.11:8080');
    assert.deepEqual(readConfig({ ...env, INVENTORY_HOST: '::1' }).inventoryUrls, ['http://[::1]:8080']);
  });

  it('reads a comma-separated list of host and host:port entries', () => {
    const config = readConfig({ ...env, INVENTORY_HOST: 'inventory-vm, 10.0.0.2:9000,[::1]:7000', GATEWAY_UPSTREAM_HEALTH_INTERVAL_MS: '250' });
    assert.deepEqual(config.inventoryUrls, ['http://inventory-vm:8080', 'http://10.0.0.2:9000', 'http://[::1]:7000']);
    assert.equal(config.upstreamHealthIntervalMs, 250);
    assert.equal(readConfig({ ...env, INVENTORY_HOST: 'a' }).upstreamHealthIntervalMs, 1000);
  });

  for (const [value, problem] of [
    ['a,,b', /empty entry/],
    ['a,', /empty entry/],
    ['a:0', /"a:0": port/],
    ['a:70000', /port must be an integer/],
    ['a:http', /port must be an integer/],
    ['http://a', /"http:\/\/a"/],
    ['a/b', /without scheme, path/],
    ['a,a:8080', /listed twice/],
  ] as const) {
    it(`stops at start on ${JSON.stringify(value)}, naming the entry`, () => {
      assert.throws(
        () => readConfig({ ...env, INVENTORY_HOST: value }),
        (err: unknown) => err instanceof ConfigError && /INVENTORY_HOST/.test(err.message) && problem.test(err.message),
      );
    });
  }
});

describe('what a failed upstream connection allows', () => {
  it('retries GET/HEAD after a lost connection, a write only when it never connected', () => {
    const refused = classifyFailure(errno('ECONNREFUSED'), false, false);
    const reset = classifyFailure(errno('ECONNRESET'), false, false);
    const connectTimeout = classifyFailure(errno('ECONNRESET'), true, true);
    const slow = classifyFailure(errno('ECONNRESET'), true, false);
    assert.deepEqual([refused, reset, connectTimeout, slow], ['not-connected', 'lost', 'not-connected', 'slow']);
    for (const method of ['GET', 'HEAD', 'POST', 'PUT', 'DELETE']) assert.equal(mayRetry(method, refused), true, method);
    for (const method of ['GET', 'HEAD']) assert.equal(mayRetry(method, reset), true, method);
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) assert.equal(mayRetry(method, reset), false, `${method} after a reset may have been committed`);
    assert.equal(mayRetry('GET', slow), false, 'a slow instance gets 504, not twice the load');
    assert.deepEqual([refused, reset, slow].map(meansDown), [true, true, false]);
  });
});

describe('the upstream pool', () => {
  const agent = new http.Agent();
  const pool = (urls: string[]) => createUpstreamPool({ urls, agent, logger: silentLogger(), intervalMs: 1000, checkTimeoutMs: 100 });

  it('takes the instances that are up in turn, skips one marked down, and has none when all are', () => {
    const p = pool(['http://a:1', 'http://b:1', 'http://c:1']);
    assert.deepEqual([1, 2, 3, 4].map(() => p.pick()?.url), ['http://a:1', 'http://b:1', 'http://c:1', 'http://a:1']);
    p.markDown(p.instances[1], 'test');
    assert.deepEqual([1, 2, 3].map(() => p.pick()?.url), ['http://c:1', 'http://a:1', 'http://c:1']);
    assert.equal(p.pick(p.instances[0])?.url, 'http://c:1', 'a retry never goes back to the instance that failed');
    p.markDown(p.instances[0], 'test');
    p.markDown(p.instances[2], 'test');
    assert.equal(p.pick(), undefined);
  });

  it('never holds a single inventory down: the request itself finds out, as before', () => {
    const p = pool(['http://a:1']);
    p.markDown(p.instances[0], 'test');
    assert.equal(p.pick()?.url, 'http://a:1');
  });
});
