#!/usr/bin/env node
/*
 * Writes the Postman environments from the repository's .env, the one place addresses live:
 *   postman/environments/local.postman_environment.json  http://127.0.0.1:GATEWAY_PORT (npm start)
 *   postman/environments/vms.postman_environment.json    http://GATEWAY_VM_IP:GATEWAY_PORT (Vagrant)
 *
 *   node postman/make-environments.js          write both files
 *   node postman/make-environments.js --check  exit 1 if a file differs from what .env gives
 *
 * test/e2e/postman.test.ts runs --check, so a change to .env without a new run fails the tests.
 * CM_ENV_FILE (an absolute path) names another .env, as for the services.
 */
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const dotenv = require('dotenv');

const ROOT = path.resolve(__dirname, '..');
const OUT = path.join(__dirname, 'environments');

function environment(id, name, gatewayUrl) {
  return {
    id,
    name,
    values: [{ key: 'gateway_url', value: gatewayUrl, type: 'default', enabled: true }],
    _postman_variable_scope: 'environment',
  };
}

/** File name -> content, from the variables of an .env file. */
function environments(envFile) {
  const env = dotenv.parse(fs.readFileSync(envFile));
  for (const name of ['GATEWAY_PORT', 'GATEWAY_VM_IP']) {
    if (!env[name]) throw new Error(`${envFile}: ${name} is missing`);
  }
  const files = {
    'local.postman_environment.json': environment(
      '3a0e6f43-5d1c-4b8e-9f2a-6c7d8e9f0a1b',
      'crud-master local',
      `http://127.0.0.1:${env.GATEWAY_PORT}`,
    ),
    'vms.postman_environment.json': environment(
      '7b2c9d10-4e3f-4a5b-8c6d-1e2f3a4b5c6d',
      'crud-master VMs',
      `http://${env.GATEWAY_VM_IP}:${env.GATEWAY_PORT}`,
    ),
  };
  return Object.fromEntries(Object.entries(files).map(([file, json]) => [file, `${JSON.stringify(json, null, 2)}\n`]));
}

function main() {
  const check = process.argv.includes('--check');
  const envFile = process.env.CM_ENV_FILE || path.join(ROOT, '.env');
  let stale = 0;
  for (const [file, content] of Object.entries(environments(envFile))) {
    const target = path.join(OUT, file);
    const current = fs.existsSync(target) ? fs.readFileSync(target, 'utf8') : undefined;
    if (current === content) continue;
    if (check) {
      stale += 1;
      process.stderr.write(`postman/environments/${file} does not match ${envFile}: run node postman/make-environments.js\n`);
    } else {
      fs.mkdirSync(OUT, { recursive: true });
      fs.writeFileSync(target, content);
      process.stdout.write(`wrote postman/environments/${file}\n`);
    }
  }
  process.exitCode = stale > 0 ? 1 : 0;
}

if (require.main === module) main();

module.exports = { environments };
