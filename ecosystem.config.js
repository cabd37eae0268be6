/*
 * PM2 process file for crud-master's three services (process names fixed by the contract).
 *
 *   everything on one machine:  npm start   (scripts/start-local.sh)
 *   one service per VM:         pm2 start ecosystem.config.js --only billing_app
 *
 * No configuration value lives here: each service reads its env file itself, and a variable set
 * in the environment of the `pm2` command that starts it wins over the file (start-local.sh sets
 * the addresses to 127.0.0.1 that way).
 *  - `npm start`: CM_ENV_DIR unset; the apps run as root (like PM2) and read the repository's .env.
 *  - On the VMs provisioning sets CM_ENV_DIR=/etc/crud-master in the environment of `pm2 start`:
 *    each app then runs as its own system user cm-<service> (PM2's daemon stays root, so
 *    `sudo pm2 list|stop|start` work as before; PM2 resolves the names to numeric ids, which
 *    `pm2 save` keeps and `pm2 resurrect` reuses at boot) and reads only
 *    CM_ENV_DIR/<service>.env (CM_ENV_FILE), a file no other service can read.
 * Build first (`npx tsc -b`): the scripts are the compiled dist/main.js files.
 */
'use strict';

const fs = require('node:fs');
const path = require('node:path');

const ROOT = __dirname;
const ENV_DIR = process.env.CM_ENV_DIR;

/** Options every service shares. */
const defaults = {
  cwd: ROOT,
  interpreter: 'node',
  // V8's young generation at its 64-bit maximum (two 16 MB semi-spaces) from the start, instead of
  // growing from 1 MB by doubling under traffic: each service's memory is what it will be from the
  // first minutes on (the gateway's RSS otherwise climbed 94 -> 103 -> 117 MB in a 10-minute soak
  // while its live heap stayed flat), and bursts cost fewer scavenges.
  node_args: ['--enable-source-maps', '--min-semi-space-size=16', '--max-semi-space-size=16'],
  exec_mode: 'fork',
  instances: 1,
  watch: false,

  // Restart whatever way the process ends (a crash, or billing exiting because RabbitMQ or
  // PostgreSQL is not up yet), with exponential backoff: 200 ms, then x1.5 per restart up to
  // PM2's cap of 15 s, back to 200 ms once the app has stayed up 30 s.
  autorestart: true,
  exp_backoff_restart_delay: 200,
  // PM2 gives up ("errored") after max_restarts exits that each came less than min_uptime after
  // the start, counted only during the first min_uptime * max_restarts ms (10,000 s here). With
  // the backoff above at most ~700 restarts fit in that window, so a service waiting for a
  // dependency keeps retrying instead of being abandoned.
  min_uptime: 10_000,
  max_restarts: 1_000,

  // PM2 stops an app with SIGINT (its daemon-wide PM2_KILL_SIGNAL; there is no per-app signal)
  // and sends SIGKILL kill_timeout ms later. The services close their server, consumer and pool
  // on SIGINT or SIGTERM within 10 s (packages/common/src/http-server.ts), so give them 15 s
  // instead of PM2's default 1.6 s.
  kill_timeout: 15_000,

  // No PM2 agent inside the services: by default PM2 loads @pm2/io into each app, which wraps
  // http.Server's emit to meter every request (a 'finish' listener and a histogram update per
  // request) and samples the event loop and V8 for `pm2 monit`. The services have their own
  // metrics (GET /metrics); `pm2 list` (CPU, memory, restarts) comes from the daemon and stays.
  pmx: false,

  // Logs in PM2's log folder (~/.pm2/logs), one file per stream. The services' JSON lines carry
  // their own ISO time; PM2's `time: true` would prefix each line with another, at the price of
  // splitting every chunk into lines and formatting a date per line in PM2's daemon (19-21 us of
  // its CPU per access line with it; 7 us without it and with the services' 16 kB log chunks).
  merge_logs: true,
  time: false,
};

/**
 * On the VMs (CM_ENV_DIR set): the service's own user and group, and its own env file.
 * @param {string} role gateway, inventory or billing
 */
function hostIdentity(role) {
  if (!ENV_DIR) return {};
  return {
    uid: `cm-${role}`,
    gid: `cm-${role}`,
    env: { CM_ENV_FILE: path.join(ENV_DIR, `${role}.env`) },
  };
}

/**
 * @param {string} name PM2 process name  @param {string} dir folder under srcs/
 * @param {string} role the service's short name (its user cm-<role>, its file <role>.env)
 */
function service(name, dir, role) {
  return {
    ...defaults,
    name,
    script: path.join(ROOT, 'srcs', dir, 'dist', 'main.js'),
    ...hostIdentity(role),
  };
}

const apps = [
  service('inventory_app', 'inventory-app', 'inventory'),
  service('billing_app', 'billing-app', 'billing'),
  service('api_gateway', 'api-gateway', 'gateway'),
];

module.exports = {
  // On a VM only the apps whose env file provisioning wrote there: PM2 resolves the uid of every
  // app of the file, even with --only, and the other services' users do not exist on this VM.
  apps: ENV_DIR ? apps.filter((app) => fs.existsSync(app.env.CM_ENV_FILE)) : apps,
};
